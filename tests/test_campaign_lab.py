"""What a lab needs around the loop (issue #20 section 3): categorical and ordinal inputs, failed
experiments learned from, costs, and the stopping estimate."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from matforge.datasets import load_dataset
from matforge.design.acquisition import per_unit_cost
from matforge.design.campaign import Campaign, CampaignError, CompositionPool, infer_space
from matforge.design.costs import CostModel, parse_ingredient_costs
from matforge.design.feasibility import fit_feasibility
from matforge.design.objectives import Maximize, Minimize, Target
from matforge.design.spaces import (
    Categorical,
    Continuous,
    DiscretePool,
    FormulationSpace,
    Integer,
    Ordinal,
    ParameterSpace,
)
from matforge.design.stopping import probability_better_remains
from matforge.design.strategy import Strategy
from matforge.errors import DesignSpaceError

PRINT = ["prime_delay", "print_speed", "x_offset_correction", "y_offset_correction"]
FAST = Strategy(model_params={"n_estimators": 16}, name="test")


@pytest.fixture(scope="module")
def autoam():
    """Deneault et al.'s 100 direct-write prints (Liang et al. 2021): 16 failed (score 0)."""
    df = load_dataset("liang2021_autoam").drop(columns=["flag"]).reset_index(drop=True)
    df.insert(0, "print_id", [f"p{i:03d}" for i in range(len(df))])
    return df


def _prints_pool(autoam, **kw) -> DiscretePool:
    return DiscretePool(
        autoam.drop(columns=["score"]), id_column="print_id", feature_columns=PRINT, **kw
    )


def _as_results(rows: pd.DataFrame) -> pd.DataFrame:
    """Prints as a lab reports them: a failed print has no score, only 'did not print'."""
    out = rows[["print_id", *PRINT]].copy()
    failed = rows["score"].to_numpy() == 0
    out["score"] = np.where(failed, np.nan, rows["score"])
    out["failed"] = np.where(failed, "did not print", "")
    return out


# -- categorical and ordinal inputs -----------------------------------------------------------


def test_ordinal_parameter_is_ranked_and_proposals_are_levels():
    grade = Ordinal("grade", ("low", "medium", "high"))
    passes = Ordinal("passes", (1, 2, 4, 8))
    space = ParameterSpace(
        [Continuous("T", 300, 900), grade, passes, Categorical("solvent", ["water", "ethanol"])]
    )
    df = space.sample(200, 0)
    assert set(df["grade"]) == {"low", "medium", "high"} and set(df["passes"]) <= {1, 2, 4, 8}
    F = space.to_features(
        pd.DataFrame(
            {
                "T": [300, 900],
                "grade": ["low", "high"],
                "passes": [2, 8],
                "solvent": ["water", "ethanol"],
            }
        )
    )
    assert F.tolist() == [[0, 0, 1 / 3, 1, 0], [1, 1, 1, 0, 1]]  # rank / (levels − 1)
    back = space.from_features(np.array([[0.5, 0.45, 0.3, 0.2, 0.9]]))
    assert back.iloc[0].tolist() == [600, "medium", 2, "ethanol"]
    # numbers between numeric levels are repaired to the nearest; words are not guessed
    fixed = space.project(
        pd.DataFrame({"T": [1000], "grade": ["high"], "passes": [7], "solvent": ["water"]})
    )
    assert fixed.iloc[0].tolist() == [900, "high", 8, "water"]
    with pytest.raises(DesignSpaceError, match="cannot repair grade = 'top'"):
        space.project(
            pd.DataFrame({"T": [500], "grade": ["top"], "passes": [1], "solvent": ["water"]})
        )
    assert ParameterSpace.from_dict(space.as_dict()) == space
    with pytest.raises(DesignSpaceError, match="lowest first; 2 follows 4"):
        Ordinal("passes", (1, 4, 2))
    with pytest.raises(DesignSpaceError, match="mix numbers and text"):
        Ordinal("grade", ("low", 2))
    with pytest.raises(DesignSpaceError, match="duplicate level"):
        Ordinal("grade", ("low", "low"))


def test_infer_space_keeps_integers_and_reads_levels_from_text():
    data = pd.DataFrame(
        {
            "T": [300.0, 450.0, 600.0],
            "passes": [1, 3, 2],
            "ph": [7.0, 8.0, 9.0],
            "solvent": ["water", "ethanol", "water"],
            "catalyst": [2, 1, 2],
            "grade": ["low", "high", "low"],
            "y": [1.0, 2.0, 3.0],
        }
    )
    space = infer_space(
        data,
        features=["T", "passes", "ph", "solvent", "catalyst"],
        categorical={"catalyst": ["1", "2", "3"]},
        ordinal={"grade": ["low", "medium", "high"]},
        continuous=["ph"],
        targets=["y"],
    )
    assert space["T"] == Integer("T", 300, 600)  # whole numbers stay integers
    assert space["passes"] == Integer("passes", 1, 3)
    assert space["ph"] == Continuous("ph", 7, 9)  # --continuous
    assert space["solvent"] == Categorical("solvent", ("ethanol", "water"))
    assert space["catalyst"] == Categorical("catalyst", (1, 2, 3))  # typed like the column
    assert space["grade"] == Ordinal("grade", ("low", "medium", "high"))  # added as a feature
    with pytest.raises(CampaignError, match="'grade' holds text: give its ordinal levels"):
        infer_space(data, features=["grade"], ordinal=["grade"], targets=["y"])
    with pytest.raises(CampaignError, match="level 'x' of column 'catalyst' is not a number"):
        infer_space(data, features=["catalyst"], categorical={"catalyst": ["x"]})
    blends = pd.DataFrame({"a": [0.5, 0.2], "b": [0.5, 0.8], "solvent": ["water", "dmf"]})
    form = infer_space(blends, formulation=["a", "b"], features=["solvent"])
    assert isinstance(form, FormulationSpace)
    assert form.parameters["solvent"] == Categorical("solvent", ("dmf", "water"))


def test_a_level_never_declared_is_refused_by_column_row_and_levels(tmp_path):
    space = ParameterSpace(
        [
            Continuous("T", 300, 900),
            Categorical("solvent", ["water", "ethanol"]),
            Ordinal("grade", ("low", "high")),
        ]
    )
    past = pd.DataFrame(
        {
            "T": [300, 500, 700, 800],
            "solvent": ["water", "ethanol", "DMSO", "water"],
            "grade": ["low", "high", "low", "high"],
            "y": [1.0, 2.0, 3.0, 4.0],
        }
    )
    with pytest.raises(
        CampaignError,
        match=r"column 'solvent', row 3: 'DMSO' is not one of the "
        r"declared levels .*\['water', 'ethanol'\]",
    ):
        Campaign.create(tmp_path / "lab.db", "c", space, "y max", initial=past)
    c = Campaign.create(tmp_path / "lab.db", "c", space, "y max", initial=past.drop(index=2))
    with pytest.raises(CampaignError, match="column 'grade', row 2: 'medium'"):
        c.observe(
            pd.DataFrame(
                {
                    "T": [400, 410],
                    "solvent": ["water", "water"],
                    "grade": ["low", "medium"],
                    "y": [1.5, 1.6],
                }
            )
        )
    assert len(c.history()) == 3  # nothing written
    pool = DiscretePool(
        pd.DataFrame({"id": ["a", "b"], "x": [0.1, 0.2], "cat": [1, 3]}),
        id_column="id",
        categorical={"cat": [1, 2, 3]},
    )
    assert pool.feature_names == ["x", "cat=1", "cat=2", "cat=3"]
    with pytest.raises(DesignSpaceError, match="column 'cat', row 2: 4 is not one of"):
        pool.check_levels(pd.DataFrame({"cat": [2, 4]}), "past.csv")
    with pytest.raises(DesignSpaceError, match="'cat', row 2: 3 is not one of the declared"):
        DiscretePool(pd.DataFrame({"x": [0.1, 0.2], "cat": [1, 3]}), categorical={"cat": [1, 2]})


def test_categorical_parameters_in_a_formulation_campaign_round_trip(tmp_path):
    photo = load_dataset("photo_pce10")
    past = photo[photo.mat_4 == 0].sample(12, random_state=0)[
        ["mat_1", "mat_2", "mat_3", "degradation"]
    ]
    past["anneal"] = ["none", "80C", "120C"] * 4  # the real blends, tagged with a process step
    space = FormulationSpace(
        ["mat_1", "mat_2", "mat_3"],
        parameters=[
            Ordinal("anneal", ("none", "80C", "120C")),
            Categorical("solvent", ["cb", "dcb"]),
        ],
    )
    past["solvent"] = "cb"
    c = Campaign.create(
        tmp_path / "lab.db", "opv", space, "degradation min", initial=past, strategy=FAST
    )
    batch = Campaign.load(tmp_path / "lab.db", "opv").suggest(4)
    assert set(batch["anneal"]) <= {"none", "80C", "120C"} and set(batch["solvent"]) <= {
        "cb",
        "dcb",
    }
    assert np.allclose(batch[["mat_1", "mat_2", "mat_3"]].sum(axis=1), 1.0)
    assert c.space.contains(batch).all()
    # the surrogate sees the ordinal as one ranked column and the solvent one-hot
    assert c.space.feature_names[-3:] == ["anneal", "solvent=cb", "solvent=dcb"]


def test_composition_pool_with_a_categorical_column_matches_by_both(tmp_path):
    gaps = load_dataset("matbench_expt_gap").iloc[:40][["formula", "gap_expt"]]
    pool = pd.concat(
        [gaps.assign(route=r) for r in ("solid-state", "sol-gel")], ignore_index=True
    ).drop(columns="gap_expt")
    space = CompositionPool(pool, feature_columns=["route"], featurizer=["element_fraction"])
    assert space.feature_names[-2:] == ["route=sol-gel", "route=solid-state"]
    assert len(set(space.keys(space.df))) == 80  # one formula, two routes: two candidates
    past = gaps.iloc[:8].assign(route="sol-gel")
    c = Campaign.create(
        tmp_path / "lab.db", "g", space, "gap_expt max", initial=past, strategy=FAST
    )
    batch = c.suggest(3)
    taken = set(zip(past["formula"], past["route"], strict=True))
    assert not taken & set(zip(batch["formula"], batch["route"], strict=True))
    again = Campaign.load(tmp_path / "lab.db", "g")
    assert again.space.as_dict() == space.as_dict()
    with pytest.raises(CampaignError, match="column 'route', row 1: 'flux'"):
        c.observe(pd.DataFrame({"formula": ["NaCl"], "route": ["flux"], "gap_expt": [8.5]}))


# -- failed experiments -----------------------------------------------------------------------


def test_failed_experiments_are_recorded_with_their_reason(tmp_path, autoam):
    space = _prints_pool(autoam)
    initial = _as_results(autoam.iloc[:12])
    n_failed = int((autoam["score"].iloc[:12] == 0).sum())
    c = Campaign.create(
        tmp_path / "lab.db", "am", space, "score max", initial=initial, strategy=FAST
    )
    h = c.history()
    assert h["failed"].sum() == n_failed > 0
    assert set(h.loc[h["failed"], "failure"]) == {"did not print"}
    assert h.loc[h["failed"], "score"].isna().all() and c.status()["failed"] == n_failed
    batch = c.suggest(4)
    ids = batch["suggestion_id"].tolist()
    res = pd.DataFrame(
        {
            "suggestion_id": ids,
            "score": [0.5, None, None, None],
            "failed": ["no", "yes", 1, "nozzle clogged"],
        }
    )
    report = c.observe(res)
    assert (report.matched, report.failed) == (4, 3) and len(c.pending()) == 0
    h = c.history()
    assert h["failure"].tail(3).tolist() == ["failed", "failed", "nozzle clogged"]
    assert c.observe(res).duplicates == 4  # the same file again records nothing twice
    # a blank result is still refused unless it is said to be a failure
    more = c.suggest(2)
    blank = pd.DataFrame({"suggestion_id": more["suggestion_id"], "score": [None, 0.7]})
    with pytest.raises(CampaignError, match=r"row\(s\) \[1\] have no measured value.*'failed' col"):
        c.observe(blank)
    assert c.observe(blank, blank_means_failed=True).failed == 1
    assert c.history()["failure"].iloc[-2] == "no result"
    n = len(c.history())
    with pytest.raises(CampaignError, match="row 1 is marked failed .* has a value for"):
        c.observe(pd.DataFrame({"print_id": ["p050"], "score": [0.3], "failed": ["yes"]}))
    with pytest.raises(CampaignError, match="column 'failed', row 1: 2; write yes or no"):
        c.observe(pd.DataFrame({"print_id": ["p050"], "score": [None], "failed": [2]}))
    assert len(c.history()) == n


def test_the_success_classifier_predicts_held_out_failed_prints(autoam):
    """Judged on prints it never saw: AUC of P(success) against the 16 real failures."""
    from sklearn.metrics import roc_auc_score

    X = DiscretePool(autoam, feature_columns=PRINT).to_features()
    X = (X - X.min(0)) / (X.max(0) - X.min(0))
    failed = autoam["score"].to_numpy() == 0
    aucs = []
    for seed in range(5):
        idx = np.random.default_rng(seed).permutation(len(X))
        train, test = idx[:40], idx[40:]
        model = fit_feasibility(X[train], failed[train], kind="gp", seed=seed)
        aucs.append(roc_auc_score(~failed[test], model.p_success(X[test])))
    assert np.mean(aucs) >= 0.85, aucs  # 0.5: no better than chance (measured: 0.97)
    assert fit_feasibility(X[:10], np.zeros(10, bool)) is None  # nothing failed: no weighting


def test_suggestions_weigh_the_chance_of_success(tmp_path, autoam):
    space = _prints_pool(autoam)
    initial = _as_results(autoam.iloc[:40])
    c = Campaign.create(tmp_path / "lab.db", "am", space, "score max", initial=initial)
    batch = c.suggest(5)
    info = c.batches()["model"].iloc[-1]["feasibility"]
    assert info["n_failed"] == int((autoam["score"].iloc[:40] == 0).sum())
    assert info["class"] == "GaussianProcessClassifier"
    assert batch["p_success"].between(0, 1).all()
    # The same state with the failures dropped (all a campaign could do before): its batch is
    # one the classifier trusts less, and more of its prints really failed.
    dropped = Campaign.create(
        tmp_path / "lab.db", "dropped", space, "score max", initial=initial[initial["failed"] == ""]
    ).suggest(5)
    model = fit_feasibility(c.features(c.history()), c.history()["failed"], kind="gp")
    rows = space.df.set_index("print_id")
    p = {
        k: model.p_success(c.features(rows.loc[b["print_id"]].reset_index())).mean()
        for k, b in (("learned", batch), ("dropped", dropped))
    }
    assert p["learned"] > p["dropped"], p  # measured: 0.79 vs 0.56
    truth = autoam.set_index("print_id")["score"] == 0
    assert truth[batch["print_id"]].sum() <= truth[dropped["print_id"]].sum()  # 0 vs 2


@pytest.mark.slow
def test_replay_with_failures_wastes_fewer_prints_than_dropping_them(autoam):
    """Closed-loop replay on the 100 prints: 10 random, then 20 proposals one at a time. Failed
    prints learned from by the classifier vs. dropped (all a campaign could do before)."""
    from matforge.design.strategy import default_strategy, propose

    X = DiscretePool(autoam, feature_columns=PRINT).to_features()
    X = (X - X.min(0)) / (X.max(0) - X.min(0))
    y = autoam["score"].to_numpy()
    failed = y == 0
    wasted = {"learned": [], "dropped": []}
    for mode in wasted:
        for seed in range(6):
            done = list(np.random.default_rng(seed).choice(len(X), 10, replace=False))
            for _ in range(20):
                d = np.array(done)
                avail = np.setdiff1d(np.arange(len(X)), d)
                f = failed[d]
                p = propose(
                    default_strategy(),
                    X[avail],
                    X[d],
                    np.where(f, np.nan, y[d])[:, None],
                    [Maximize("score")],
                    1,
                    seed=seed,
                    failed=f if mode == "learned" and f.any() else None,
                )
                done.append(int(avail[p.indices[0]]))
            wasted[mode].append(int(failed[np.array(done[10:])].sum()))
    assert np.mean(wasted["learned"]) < np.mean(wasted["dropped"]), wasted  # 6.3 vs 9.8


# -- costs ------------------------------------------------------------------------------------


def test_cost_model_refuses_bad_costs_by_name(autoam):
    with pytest.raises(DesignSpaceError, match="cost per experiment: -1.0 is negative"):
        CostModel(per_experiment=-1.0)
    with pytest.raises(DesignSpaceError, match="not a finite number"):
        CostModel(per_experiment=float("inf"))
    with pytest.raises(DesignSpaceError, match="ingredient cost 'pcbm=abc': 'abc' is not a num"):
        parse_ingredient_costs(["pcbm=abc"])
    with pytest.raises(DesignSpaceError, match="expected NAME=PRICE"):
        parse_ingredient_costs(["pcbm"])
    pool = autoam.drop(columns="score").assign(minutes=10.0)
    pool.loc[7, "minutes"] = -3.0
    space = DiscretePool(pool, id_column="print_id", feature_columns=PRINT)
    with pytest.raises(DesignSpaceError, match="cost column 'minutes', row 8: -3.0 is negative"):
        CostModel(column="minutes").check(space)
    pool.loc[7, "minutes"] = np.nan
    with pytest.raises(DesignSpaceError, match="row 8: nan is missing"):
        CostModel(column="minutes").check(DiscretePool(pool, "print_id", PRINT))
    with pytest.raises(DesignSpaceError, match="needs a pool of candidates"):
        CostModel(column="minutes").check(ParameterSpace([Continuous("x", 0, 1)]))
    blends = FormulationSpace(["pcbm", "p3ht", "water"])
    with pytest.raises(DesignSpaceError, match=r"\['water'\] cost nothing"):
        CostModel(ingredients={"pcbm": 120, "p3ht": 80}).check(blends)
    with pytest.raises(DesignSpaceError, match=r"prices for \['pce10'\], which are not ingr"):
        CostModel(ingredients={"pce10": 1}, per_experiment=1).check(blends)
    assert per_unit_cost([2.0, 1.0], [2.0, 0.5]).tolist() == [1.0, 2.0]
    assert per_unit_cost([-1.0, 1.0], [1.0, 2.0]).tolist() == [0.0, 1.0]  # signed: shifted


def test_costs_steer_suggestions_towards_cheap_prints(tmp_path, autoam):
    """Machine time of a print (prime delay + a 10 mm line at the print speed) as its cost."""
    pool = autoam.drop(columns="score").copy()
    pool["minutes"] = (pool["prime_delay"] + 10.0 / pool["print_speed"]) / 60.0
    space = DiscretePool(pool, id_column="print_id", feature_columns=PRINT)
    initial = _as_results(autoam.iloc[:30])
    plain = Campaign.create(tmp_path / "lab.db", "plain", space, "score max", initial=initial)
    priced = Campaign.create(
        tmp_path / "lab.db",
        "priced",
        space,
        "score max",
        initial=initial,
        costs=CostModel(column="minutes", per_experiment=0.5, unit="min"),
    )
    a, b = plain.suggest(5), priced.suggest(5)
    assert "cost" in b.columns and "cost" not in a.columns
    cost = pool.set_index("print_id")["minutes"] + 0.5
    assert np.allclose(b["cost"], cost.loc[b["print_id"]].to_numpy())
    assert cost.loc[b["print_id"]].mean() < cost.loc[a["print_id"]].mean()
    assert Campaign.load(tmp_path / "lab.db", "priced").costs == priced.costs
    priced.observe(b[["suggestion_id"]].assign(score=0.5))
    assert priced.status()["cost"]["spent"] == pytest.approx(b["cost"].sum())


def test_ingredient_prices_give_each_blend_its_cost(tmp_path):
    photo = load_dataset("photo_pce10")
    past = photo[photo.mat_4 == 0].sample(10, random_state=2)[
        ["mat_1", "mat_2", "mat_3", "degradation"]
    ]
    space = FormulationSpace(["mat_1", "mat_2", "mat_3"])
    prices = {"mat_1": 300.0, "mat_2": 80.0, "mat_3": 120.0}
    c = Campaign.create(
        tmp_path / "lab.db",
        "opv",
        space,
        "degradation min",
        initial=past,
        costs={"ingredients": prices},
        strategy=FAST,
    )
    batch = c.suggest(3)
    expected = batch[list(prices)].to_numpy() @ np.array(list(prices.values()))
    assert np.allclose(batch["cost"], expected) and (batch["cost"] > 0).all()


# -- stopping -----------------------------------------------------------------------------------


def test_stopping_estimate_is_bounded_and_says_what_it_assumes(tmp_path, autoam):
    space = _prints_pool(autoam)
    c = Campaign.create(
        tmp_path / "lab.db", "am", space, "score max", initial=_as_results(autoam.iloc[:4])
    )
    early = c.stopping()
    assert early.probability is None and "fewer than 5 results" in early.reason
    c.observe(_as_results(autoam.iloc[4:30]))
    est = c.stopping()
    assert 0 <= est.lower <= est.probability <= est.upper <= 1
    assert est.n_candidates == 70 and est.best == pytest.approx(autoam["score"].iloc[:30].max())
    assert "Gaussian process" in est.assumption and "not a guarantee" in est.assumption
    assert "successes and constraints independent" in est.assumption  # failures learned from
    assert c.stopping(margin=0.2).probability < est.probability  # a bigger step is less likely


def test_stopping_estimate_falls_once_the_best_candidate_is_measured(tmp_path):
    """Perovskite films (Sun et al. 2021, 94 compositions): the chance the model gives that a
    better composition remains, before and after the most stable one is measured."""
    df = load_dataset("liang2021_perovskite")
    cols = ["cs_pbi3", "fa_pbi3", "ma_pbi3"]
    g = df.groupby(cols, as_index=False)["instability_index"].mean()
    space = DiscretePool(g.drop(columns="instability_index"), feature_columns=cols)
    best = int(g["instability_index"].idxmin())
    others = np.setdiff1d(np.arange(len(g)), [best])
    seen = np.random.default_rng(0).choice(others, 59, replace=False)
    margin = 0.02 * float(np.ptp(g["instability_index"]))
    before = Campaign.create(
        tmp_path / "lab.db", "before", space, "instability_index min", initial=g.iloc[seen]
    ).stopping(margin)
    after = Campaign.create(
        tmp_path / "lab.db",
        "after",
        space,
        "instability_index min",
        initial=g.iloc[np.r_[seen, best]],
    ).stopping(margin)
    assert after.probability < before.probability, (before, after)


def test_joint_estimate_counts_identical_candidates_once():
    """Two copies of one candidate are one chance, not two (the correlation is used)."""
    from matforge.models import GaussianProcessUQ

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (12, 1))
    y = np.sin(6 * X[:, 0])
    with warnings.catch_warnings():  # noise at its lower bound: the data are noise-free
        warnings.simplefilter("ignore")
        gp = GaussianProcessUQ(n_restarts_optimizer=0, random_state=0).fit(X, y)
    one = probability_better_remains([gp], [[0.95]], [Maximize("y")], y[:, None], X_observed=X)
    two = probability_better_remains(
        [gp], [[0.95], [0.95]], [Maximize("y")], y[:, None], X_observed=X
    )
    assert two.probability == pytest.approx(one.probability, abs=0.03)
    assert two.upper == pytest.approx(min(1.0, 2 * one.lower))  # the union bound double-counts
    # on target already: nothing can be better
    on = probability_better_remains([gp], X, [Target("y", float(y[0]))], y[:, None])
    assert on.probability == 0.0
    down = probability_better_remains([gp], X[:3] + 0.01, [Minimize("y")], y[:, None])
    assert "predictive distribution" in down.assumption  # without X_observed: noise included


# -- command line -------------------------------------------------------------------------------


def test_cli_lab_features_end_to_end(tmp_path):
    from matforge.cli.campaign import app

    runner = CliRunner()
    rng = np.random.default_rng(0)
    n = 14
    past = pd.DataFrame(
        {
            "T": rng.integers(300, 900, n),
            "time_h": rng.uniform(0.5, 4, n).round(2),
            "solvent": rng.choice(["water", "ethanol"], n),
            "grade": rng.choice(["low", "mid", "high"], n),
        }
    )
    past["yield"] = (
        1
        - ((past["T"] - 650) / 300) ** 2
        + 0.2 * (past["solvent"] == "ethanol")
        + 0.1 * past["time_h"]
    ).round(3)
    past["failed"] = ""
    past.loc[[2, 9], ["yield", "failed"]] = [np.nan, "did not form"]
    data = tmp_path / "past.csv"
    past.to_csv(data, index=False)
    db = tmp_path / "lab.db"

    def run(*args, code=0):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == code, result.output
        return result

    out = run(
        "new",
        "rx",
        "--from",
        data,
        "-t",
        "yield max",
        "--features",
        "T,time_h,solvent",
        "--categorical",
        "solvent=water,ethanol,dmso",
        "--ordinal",
        "grade=low,mid,high",
        "--experiment-cost",
        "2",
        "--db",
        db,
    ).output
    assert "14 past experiment(s) (2 failed)" in out
    assert "T ∈ {" in out and "'dmso'" in out and "'low' < 'mid' < 'high'" in out
    assert "cost of an experiment: 2 per experiment" in out
    nxt = tmp_path / "next.csv"
    run("suggest", "rx", "-n", "3", "-o", nxt, "--db", db)
    batch = pd.read_csv(nxt)
    assert set(batch["solvent"]) <= {"water", "ethanol", "dmso"} and "p_success" in batch
    assert (batch["T"] == batch["T"].round()).all()  # an integer column stays integer
    batch["yield"] = [0.9, np.nan, np.nan]
    batch.to_csv(nxt, index=False)
    run("observe", "rx", nxt, "--db", db, code=1)  # blanks without --failed: refused
    out = run("observe", "rx", nxt, "--failed", "--db", db).output
    assert "3 result(s) recorded (3 answering suggestions, 0 unplanned, 2 of them failed" in out
    out = run("status", "rx", "--db", db).output
    assert "4 failed" in out and "spent on experiments since the start: 6" in out
    assert "stopping: chance that a better candidate remains: " in out
    bad = tmp_path / "bad.csv"
    past.iloc[:1].assign(solvent="toluene").to_csv(bad, index=False)
    result = run("observe", "rx", bad, "--db", db, code=1)
    assert "column 'solvent', row 1: 'toluene' is not one of the declared levels" in str(
        result.exception
    )
    costs = tmp_path / "pool.csv"
    past.drop(columns=["yield", "failed"]).assign(cost=[-1.0] + [1.0] * (n - 1)).to_csv(
        costs, index=False
    )
    result = run(
        "new",
        "pooled",
        "--pool",
        costs,
        "-t",
        "yield max",
        "--features",
        "T,time_h",
        "--cost-column",
        "cost",
        "--db",
        db,
        code=1,
    )
    assert "cost column 'cost', row 1: -1.0 is negative" in str(result.exception)
