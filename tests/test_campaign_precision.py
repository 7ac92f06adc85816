"""Campaign suggestions rounded to the space's precision: on the grid, exact, scored as rounded,
never twice, and the precision kept in the stored campaign."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import matforge.design.campaign as campaign_module
from matforge.datasets import load_dataset
from matforge.design.campaign import Campaign, CampaignError
from matforge.design.spaces import (
    Continuous,
    DiscretePool,
    FormulationSpace,
    Group,
    Ingredient,
    Integer,
    ParameterSpace,
)
from matforge.design.strategy import Strategy
from matforge.errors import DesignSpaceError
from matforge.store import Store

INGREDIENTS = ["mat_1", "mat_2", "mat_3", "mat_4"]
FAST = Strategy(model_params={"n_estimators": 16}, name="test")


@pytest.fixture(scope="module")
def photo():
    return load_dataset("photo_pce10").drop(columns=["flag"])


def _nearest_degradation(photo: pd.DataFrame, batch: pd.DataFrame) -> np.ndarray:
    d = ((photo[INGREDIENTS].to_numpy()[None] - batch[INGREDIENTS].to_numpy()[:, None]) ** 2).sum(
        -1
    )
    return photo["degradation"].to_numpy()[d.argmin(1)]


def _exact_blends(batch: pd.DataFrame, step: str, columns=INGREDIENTS) -> None:
    """Every amount as printed is a multiple of ``step`` and they sum to exactly 1."""
    for row in batch[columns].itertuples(index=False):
        printed = [Decimal(repr(float(v))) for v in row]
        assert all(v % Decimal(step) == 0 for v in printed), printed
        assert sum(printed) == 1, printed


def test_mixture_suggestions_are_on_the_grid_and_scored_as_rounded(tmp_path, photo, monkeypatch):
    space = FormulationSpace(
        [Ingredient("mat_1", max=0.6), "mat_2", Ingredient("mat_3", min=0.1), "mat_4"],
        max_components=3,
        groups=[Group("donors", ("mat_1", "mat_2"), min=0.2, max=0.7)],
    )
    past = photo[space.contains(photo[INGREDIENTS])].iloc[:12]
    seen = {}
    real_propose = campaign_module.propose

    def spy(strategy, Z, *args, **kwargs):
        seen["Z"] = Z
        proposal = real_propose(strategy, Z, *args, **kwargs)
        seen["proposal"] = proposal
        return proposal

    monkeypatch.setattr(campaign_module, "propose", spy)
    c = Campaign.create(
        tmp_path / "lab.db", "blends", space, "degradation min", initial=past, strategy=FAST
    )
    for n, step in ((6, "0.001"), (5, "0.001")):
        batch = c.suggest(n)
        assert len(batch) == n
        _exact_blends(batch, step)
        assert space.contains(batch[INGREDIENTS]).all()
        assert (batch[INGREDIENTS].gt(0).sum(axis=1) <= 3).all()
        # the model scored the rounded blends: the features of the chosen candidates are
        # those of the suggestions as written, and so are the predictions reported
        idx = seen["proposal"].indices
        np.testing.assert_allclose(seen["Z"][idx], c.features(batch[INGREDIENTS]))
        np.testing.assert_allclose(batch["degradation_mean"], seen["proposal"].mean[:, 0])
        keys = batch[INGREDIENTS].round(9).apply(tuple, axis=1)
        assert keys.is_unique
        res = batch[["suggestion_id"]].assign(degradation=_nearest_degradation(photo, batch))
        assert c.observe(res).matched == n


def test_grid_points_are_suggested_once_and_never_again(tmp_path):
    """A coarse grid: 3 × 3 × 2 points. Each is suggested at most once; measured and pending
    ones are not proposed again; the batch is refilled from the other grid points."""
    space = ParameterSpace([Continuous("x", 0, 1), Continuous("y", 0, 1), Integer("n", 1, 2)])
    past = pd.DataFrame(
        {
            "x": [0.0, 1.0, 0.5, 0.0, 1.0, 0.5],
            "y": [0.0, 0.5, 1.0, 1.0, 0.0, 0.5],
            "n": [1, 2, 1, 2, 1, 2],
        }
    )
    past["z"] = past["x"] - past["y"] + 0.1 * past["n"]
    c = Campaign.create(
        tmp_path / "lab.db", "grid", space, "z max", initial=past, precision=0.5, strategy=FAST
    )
    seen = {tuple(r) for r in past[["x", "y", "n"]].itertuples(index=False)}
    for n in (5, 5, 2):
        batch = c.suggest(n)  # model-based: 6 results
        assert batch["z_mean"].notna().all()
        points = [tuple(r) for r in batch[["x", "y", "n"]].itertuples(index=False)]
        assert len(points) == n and len(set(points)) == n
        assert not set(points) & seen
        assert set(batch["x"]) <= {0.0, 0.5, 1.0} and set(batch["y"]) <= {0.0, 0.5, 1.0}
        seen |= set(points)
    assert len(seen) == 18
    with pytest.raises(CampaignError, match="only 0 candidate"):
        c.suggest(1)


def test_precision_is_kept_in_the_stored_config_and_old_campaigns_get_the_default(tmp_path):
    db = tmp_path / "lab.db"
    space = FormulationSpace(["a", "b", "c"], parameters=[Continuous("T", 20, 80)])
    past = pd.DataFrame(
        {"a": [0.2, 0.5], "b": [0.3, 0.5], "c": [0.5, 0.0], "T": [25.0, 60.0], "y": [1.0, 2.0]}
    )
    c = Campaign.create(db, "p", space, "y max", initial=past, precision={"amounts": 0.05, "T": 5})
    assert c.config["space"]["step"] == 0.05
    again = Campaign.load(db, "p")
    assert again.space.precision == {"amounts": "0.05", "T": "5"}
    batch = again.suggest(3)
    _exact_blends(batch, "0.05", columns=["a", "b", "c"])
    assert set(batch["T"] % 5) == {0.0}
    # a campaign stored before precisions existed (no "step" in its space): the defaults
    Campaign.create(
        db, "old", FormulationSpace(["a", "b", "c"]), "y max", initial=past[["a", "b", "c", "y"]]
    )
    from matforge.store import campaigns as tables

    with Store(db) as store, store.engine.begin() as conn:
        row = conn.execute(
            sa.select(tables.campaigns.c.id, tables.campaigns.c.config).where(
                tables.campaigns.c.name == "old"
            )
        ).one()
        config = dict(row.config)
        config["space"] = {k: v for k, v in config["space"].items() if k != "step"}
        conn.execute(
            tables.campaigns.update().where(tables.campaigns.c.id == row.id).values(config=config)
        )
    old = Campaign.load(db, "old")
    assert "step" not in old.config["space"]
    assert old.space.precision == {"amounts": "0.001"}
    _exact_blends(old.suggest(2), "0.001", columns=["a", "b", "c"])


def test_a_pool_campaign_refuses_a_precision(tmp_path):
    pool = DiscretePool(pd.DataFrame({"x": [0.1, 0.2, 0.3]}))
    with pytest.raises(DesignSpaceError, match="candidates are proposed as they are"):
        Campaign.create(tmp_path / "lab.db", "pool", pool, "y max", precision=0.01)
