"""Campaigns: state in the store, restart safety (SIGKILL), matching, constraints."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from matforge.datasets import load_dataset
from matforge.design.campaign import Campaign, CampaignError, CompositionPool, infer_space
from matforge.design.spaces import DiscretePool, FormulationSpace, Group, Ingredient
from matforge.design.strategy import Strategy
from matforge.store import Store

INGREDIENTS = ["mat_1", "mat_2", "mat_3", "mat_4"]
# The default strategy with a smaller forest: the same code paths, faster tests.
FAST = Strategy(model_params={"n_estimators": 16}, name="test")


@pytest.fixture(scope="module")
def photo():
    """The photo_pce10 blends (real data): four ingredient fractions and the degradation."""
    return load_dataset("photo_pce10").drop(columns=["flag"])


def _pool_campaign(store, photo, name="pool", n_initial=8, **kw):
    pool = photo.iloc[:80].reset_index(drop=True)
    pool.insert(0, "blend_id", [f"b{i:03d}" for i in range(len(pool))])
    space = DiscretePool(pool.drop(columns=["degradation"]), id_column="blend_id",
                         feature_columns=INGREDIENTS)
    initial = pool.iloc[:n_initial]
    kw.setdefault("strategy", FAST)
    return Campaign.create(store, name, space, "degradation min", initial=initial, **kw), pool


def test_campaign_state_survives_reopening(tmp_path, photo):
    url = tmp_path / "lab.db"
    c, pool = _pool_campaign(url, photo)
    batch = c.suggest(3)
    assert list(batch.columns[:2]) == ["suggestion_id", "batch"]
    assert batch["batch"].eq(1).all() and batch["degradation_std"].gt(0).all()
    # Another process (here: another Store) sees the same state.
    with Store(url) as store:
        again = Campaign.load(store, "pool")
        assert again.objectives == c.objectives
        assert again.space.as_dict() == c.space.as_dict()
        pend = again.pending()
        assert pend["suggestion_id"].tolist() == batch["suggestion_id"].tolist()
        assert (pend["blend_id"] == batch["blend_id"]).all()
        assert len(again.history()) == 8
        assert again.batches()["model"].iloc[0]["class"] == "RandomForestUQ"
        assert again.batches()["model"].iloc[0]["params"]["n_estimators"] == 16
        assert again.batches()["model"].iloc[0]["n_train"] == [8]
    with pytest.raises(CampaignError, match="already exists"):
        _pool_campaign(url, photo)
    with pytest.raises(CampaignError, match="no campaign named 'nope'.*pool"):
        Campaign.load(url, "nope")


def test_pending_experiments_are_never_suggested_again(tmp_path, photo):
    c, pool = _pool_campaign(tmp_path / "lab.db", photo)
    first = c.suggest(4)
    second = Campaign.load(tmp_path / "lab.db", "pool").suggest(4)
    assert not set(first["blend_id"]) & set(second["blend_id"])
    measured = set(pool["blend_id"].iloc[:8])
    assert not (set(first["blend_id"]) | set(second["blend_id"])) & measured
    # Results for the first batch, given by design values only (no ids): matched.
    res = pool.set_index("blend_id").loc[first["blend_id"], INGREDIENTS + ["degradation"]]
    report = c.observe(res.reset_index(drop=True))
    assert (report.matched, report.unplanned, report.duplicates) == (4, 0, 0)
    assert len(c.pending()) == 4
    third = c.suggest(4)
    assert not set(third["blend_id"]) & (set(first["blend_id"]) | set(second["blend_id"]))
    # The same file again records nothing twice.
    assert c.observe(res.reset_index(drop=True)).duplicates == 4
    assert len(c.history()) == 12


def test_observe_matches_by_id_and_records_unplanned(tmp_path, photo):
    c, pool = _pool_campaign(tmp_path / "lab.db", photo)
    s = c.suggest(2)
    res = pd.DataFrame({"suggestion_id": s["suggestion_id"], "degradation": [0.5, 0.01]})
    extra = pool.iloc[[70]][INGREDIENTS + ["degradation"]]
    report = c.observe(pd.concat([res, extra], ignore_index=True))
    assert (report.matched, report.unplanned) == (2, 1)
    h = c.history()
    assert h["suggestion_id"].notna().sum() == 2 and h["batch"].max() == 1
    assert c.best()["degradation"].iloc[0] == pytest.approx(min(0.01, pool["degradation"].iloc[
        list(range(8)) + [70]].min()))
    # Bad inputs are refused and nothing is written.
    n = len(c.history())
    with pytest.raises(CampaignError, match="suggestion_id.*999"):
        c.observe(pd.DataFrame({"suggestion_id": [999], "degradation": [0.1]}))
    with pytest.raises(CampaignError, match="row 1.*'abc' is not a number"):
        c.observe(pd.DataFrame({"suggestion_id": [1], "degradation": ["abc"]}))
    with pytest.raises(CampaignError, match="no measured value"):
        c.observe(pd.DataFrame({"suggestion_id": [1], "degradation": [None]}))
    with pytest.raises(CampaignError, match="missing design column"):
        c.observe(pd.DataFrame({"mat_1": [0.5], "degradation": [0.1]}))
    assert len(c.history()) == n


def test_formulation_suggestions_satisfy_the_constraints(tmp_path, photo):
    space = FormulationSpace(
        [Ingredient("mat_1", max=0.6), "mat_2", Ingredient("mat_3", min=0.1), "mat_4"],
        max_components=3, groups=[Group("donors", ("mat_1", "mat_2"), min=0.2, max=0.7)],
    )
    past = photo[space.contains(photo[INGREDIENTS])].iloc[:12]
    assert len(past) == 12
    c = Campaign.create(tmp_path / "lab.db", "blends", space, "degradation min", initial=past,
                        strategy=FAST)
    for n in (4, 3):
        batch = c.suggest(n)
        assert space.contains(batch[INGREDIENTS]).all()
        assert (batch[INGREDIENTS].gt(1e-9).sum(axis=1) <= 3).all()
        assert np.allclose(batch[INGREDIENTS].sum(axis=1), 1.0)
        # results for this batch: the nearest real blend's degradation (a stand-in lab)
        d = ((photo[INGREDIENTS].to_numpy()[None] - batch[INGREDIENTS].to_numpy()[:, None]) ** 2
             ).sum(-1)
        res = batch[["suggestion_id"]].assign(
            degradation=photo["degradation"].to_numpy()[d.argmin(1)])
        assert c.observe(res).matched == n
    assert c.status()["answered"] == 7 and c.status()["pending"] == 0


def test_composition_pool_campaign_with_candidates_from_the_data(tmp_path):
    steels = load_dataset("matbench_steels")[["formula", "yield_strength"]].iloc[:60].copy()
    steels.loc[steels.index[15:], "yield_strength"] = np.nan  # unmeasured rows = candidates
    space = infer_space(steels, formula="formula", targets=["yield_strength"])
    assert isinstance(space, CompositionPool) and len(space) == 45
    c = Campaign.create(tmp_path / "lab.db", "steel", space, "yield_strength max",
                        initial=steels.iloc[:15], strategy=FAST)
    s = c.suggest(3)
    assert set(s["formula"]) <= set(steels["formula"].iloc[15:])
    # A result quoting the formula in another order of elements still matches.
    from matforge.chem.batch import CompositionBatch

    comp = CompositionBatch.from_formulas([s["formula"].iloc[0]]).to_compositions()[0]
    reordered = " ".join(f"{el}{amt:.10g}" for el, amt in
                         sorted(comp.get_el_amt_dict().items(), reverse=True))
    r = c.observe(pd.DataFrame({"formula": [reordered], "yield_strength": [2000.0]}))
    assert r.matched == 1


def test_two_objectives_and_a_constraint(tmp_path):
    from matforge.design.spaces import Continuous, ParameterSpace

    space = ParameterSpace([Continuous("t", 0, 1), Continuous("p", 0, 1)])

    def lab(df):  # a smooth stand-in process: two competing properties and a cost
        t, p = df["t"].to_numpy(), df["p"].to_numpy()
        return pd.DataFrame({"a": np.sin(3 * t) + p, "b": (t - 0.3) ** 2 + p**2, "cost": 10 * t})

    past = space.sample(12, np.random.default_rng(0))
    c = Campaign.create(tmp_path / "lab.db", "mo", space, ["a max", "b min"],
                        constraints=["cost < 6"], initial=pd.concat([past, lab(past)], axis=1),
                        strategy=FAST)
    batch = c.suggest(3)
    assert {"a_mean", "a_std", "b_mean", "b_std"} <= set(batch.columns)
    assert c.batches()["acquisition"].iloc[0]["name"] == "ehvi"
    c.observe(pd.concat([batch[["suggestion_id"]], lab(batch)], axis=1))
    front = c.best()
    assert len(front) >= 2 and (front["cost"] < 6).all()
    h = c.history()
    U = np.column_stack([h["a"], -h["b"]])
    ok = (h["cost"] < 6).to_numpy()
    for _, row in front.iterrows():  # nothing feasible dominates a front member
        better = (U[ok] >= [row["a"], -row["b"]]).all(1) & (U[ok] > [row["a"], -row["b"]]).any(1)
        assert not better.any()


def test_campaign_tables_match_their_migration(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from matforge.store import campaigns as tables
    from matforge.store.schema import metadata

    ours = {t.name for t in (tables.campaigns, tables.campaign_batches,
                             tables.campaign_suggestions, tables.campaign_observations)}
    with Store(tmp_path / "x.db") as store, store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)

    def table_of(d):
        item = d[0] if isinstance(d, list) else d
        obj = item[-1] if item[0] in ("add_table", "remove_table") else item[1]
        return getattr(obj, "name", None) if item[0].endswith("table") else getattr(
            getattr(obj, "table", None), "name", None)

    assert [d for d in diff if table_of(d) in ours] == []


# --- restart safety: SIGKILL at arbitrary points ------------------------------------------------


def _worker(db: str, truth_csv: str, done_log: str, events) -> None:
    """A lab loop in its own process: suggest 2, measure them, record, repeat. ``events``
    (a pipe) tells the test where it is, so it can kill it in the middle of a step."""
    truth = pd.read_csv(truth_csv).set_index("blend_id")["degradation"]
    c = Campaign.load(db, "kill")
    while True:
        pend = c.pending()
        if len(pend) == 0:
            events.send("suggest-start")
            c.suggest(2)
            events.send("suggest-end")
            continue
        res = pd.DataFrame({"suggestion_id": pend["suggestion_id"],
                            "degradation": truth.loc[pend["blend_id"]].to_numpy()})
        events.send("observe-start")
        c.observe(res)
        with open(done_log, "a") as f:  # written only once observe has returned
            f.write(" ".join(str(i) for i in pend["suggestion_id"]) + "\n")
        events.send("observe-end")


def _kill_at(args: tuple, event: str, occurrence: int, delay: float) -> None:
    """Start a worker process, SIGKILL it ``delay`` s after its ``occurrence``-th ``event``."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")  # forked from the test: no minutes of imports per restart
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=(*args, send), daemon=True)
    proc.start()
    send.close()
    seen = 0
    try:
        while seen < occurrence:
            if not receive.poll(120):
                pytest.fail(f"worker silent for 120 s (exit code {proc.exitcode})")
            if receive.recv() == event:
                seen += 1
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    assert proc.exitcode == -signal.SIGKILL


def test_sigkill_while_suggesting_or_observing_loses_nothing(tmp_path, photo):
    db = tmp_path / "lab.db"
    c, pool = _pool_campaign(db, photo, name="kill", n_initial=6)
    truth = tmp_path / "truth.csv"
    pool[["blend_id", "degradation"]].to_csv(truth, index=False)
    done = tmp_path / "done.log"
    args = (str(db), str(truth), str(done))
    import matforge.models.forest  # noqa: F401  (imported once here, not in every worker)

    rng = np.random.default_rng(0)
    # (event, occurrence, delay in s): suggest takes ~0.1-1 s, observe ~10-50 ms
    plan = [("suggest-start", 2, 0.05), ("observe-start", 2, 0.0), ("suggest-start", 1, 0.2),
            ("observe-start", 1, 0.005)]
    for event, k, delay in plan:
        _kill_at(args, event, k, delay * rng.uniform(0.5, 1.5))
        c = Campaign.load(db, "kill")
        s = c.suggestions()
        h = c.history()
        # every result the worker saw recorded is in the store, each once
        logged = [int(i) for i in done.read_text().split()] if done.exists() else []
        answered = h["suggestion_id"].dropna().astype(int)
        assert set(logged) <= set(answered)
        assert not answered.duplicated().any()
        assert set(answered) == set(s.loc[s["status"] == "observed", "suggestion_id"])
        # nothing pending is measured, nothing is pending twice
        pend = s[s["status"] == "pending"]
        assert not pend["blend_id"].duplicated().any()
        assert not set(pend["blend_id"]) & set(h["blend_id"].dropna())
        # whole batches only: a killed suggest leaves no partial batch
        b = c.batches()
        assert (s.groupby("batch").size().reindex(b["number"]) == 2).all()
    assert len(c.batches()) >= 3
    # A restarted campaign proposes none of the pending experiments.
    pend_ids = set(c.pending()["blend_id"])
    new = c.suggest(3)
    assert not set(new["blend_id"]) & (pend_ids | set(c.history()["blend_id"]))
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        n_obs = conn.execute(sa.text("SELECT count(*) FROM campaign_observations")).scalar()
    assert n_obs == len(c.history())
