"""A campaign is a domain object (issue #19 section 2): it runs ask/tell in memory with no
store, saved and reloaded it proposes the same next experiments, it takes a surrogate of one's
own, and a CompositionPool round-trips through the one deserialiser of every space."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import BayesianRidge

from matforge.datasets import load_dataset
from matforge.design.campaign import Campaign, CampaignError
from matforge.design.spaces import (
    CompositionPool,
    DesignSpace,
    DiscretePool,
    FormulationSpace,
    space_from_dict,
)
from matforge.design.strategy import Strategy
from matforge.errors import DesignSpaceError
from matforge.store import Store

INGREDIENTS = ["mat_1", "mat_2", "mat_3", "mat_4"]
FAST = Strategy(model_params={"n_estimators": 16}, name="test")


@pytest.fixture(scope="module")
def photo():
    """The photo_pce10 blends (real data): four ingredient fractions and the degradation."""
    return load_dataset("photo_pce10").drop(columns=["flag"])


@pytest.fixture
def no_database(monkeypatch):
    """Any attempt to reach a store fails the test."""
    import matforge.store
    import matforge.store.campaigns

    def refuse(*args, **kwargs):
        raise AssertionError("an in-memory campaign reached the store")

    monkeypatch.setattr(matforge.store.campaigns.CampaignRepository, "__init__", refuse)
    monkeypatch.setattr(matforge.store.Store, "__init__", refuse)


def _measure(pool: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The real degradation of the blends ``rows`` name (by id)."""
    truth = pool.set_index("blend_id")["degradation"]
    return pd.DataFrame({"suggestion_id": rows["suggestion_id"],
                         "degradation": truth.loc[rows["blend_id"]].to_numpy()})


def _pool(photo: pd.DataFrame) -> pd.DataFrame:
    pool = photo.iloc[:80].reset_index(drop=True)
    pool.insert(0, "blend_id", [f"b{i:03d}" for i in range(len(pool))])
    return pool


def _campaign(pool: pd.DataFrame, **kw) -> Campaign:
    space = DiscretePool(pool.drop(columns=["degradation"]), id_column="blend_id",
                         feature_columns=INGREDIENTS)
    kw.setdefault("strategy", FAST)
    return Campaign(space, "degradation min", initial=pool.iloc[:6], **kw)


def test_a_campaign_runs_ask_tell_in_memory_without_a_store(photo, no_database):
    pool = _pool(photo)
    c = _campaign(pool)
    assert c.store is None and c.id is None
    assert len(c.history()) == 6 and c.pending().empty
    first = c.suggest(3)
    assert first["suggestion_id"].tolist() == [1, 2, 3] and first["batch"].eq(1).all()
    assert first["degradation_std"].gt(0).all()  # 6 results: the surrogate already proposes
    assert c.pending()["blend_id"].tolist() == first["blend_id"].tolist()
    report = c.observe(_measure(pool, first))
    assert (report.matched, report.unplanned, report.duplicates) == (3, 0, 0)
    assert c.observe(_measure(pool, first)).duplicates == 3  # told twice: recorded once
    second = c.suggest(2)
    assert second["batch"].eq(2).all()
    assert not set(second["blend_id"]) & (set(first["blend_id"]) | set(pool["blend_id"][:6]))
    assert c.cancel([int(second["suggestion_id"].iloc[0])]) == 1
    status = c.status()
    assert status["observations"] == 9 and status["answered"] == 3
    assert status["pending"] == 1 and status["cancelled"] == 1 and status["batches"] == 2
    best = c.best()
    assert best["degradation"].iloc[0] == c.history()["degradation"].min()
    # the model that chose each batch is on record, as in a store
    assert c.batches()["model"].iloc[0]["class"] == "RandomForestUQ"


def test_a_saved_and_reloaded_campaign_proposes_the_same_next_experiments(photo, store_url):
    pool = _pool(photo)
    store = Store(store_url)
    c = _campaign(pool, seed=3)
    first = c.suggest(3)
    c.observe(_measure(pool, first.iloc[:2]))  # one suggestion still pending
    saved = c.save(store, "blends")
    assert saved.store is store and saved.name == "blends" and c.store is None
    reloaded = Campaign.load(store, "blends")
    columns = ["suggestion_id", "batch", "blend_id", *INGREDIENTS, "degradation", "failed"]
    kept = reloaded.history()[columns].reset_index(drop=True)
    assert kept.drop(columns="suggestion_id").equals(
        c.history()[columns].drop(columns="suggestion_id").reset_index(drop=True))
    assert reloaded.pending()["blend_id"].tolist() == c.pending()["blend_id"].tolist()
    in_memory, from_store = c.suggest(4), reloaded.suggest(4)
    assert from_store["blend_id"].tolist() == in_memory["blend_id"].tolist()
    np.testing.assert_allclose(from_store["degradation_mean"], in_memory["degradation_mean"])
    np.testing.assert_allclose(from_store["acquisition"], in_memory["acquisition"])
    # the store's copy is the campaign: another process sees the batch just proposed
    with Store(store_url) as other:
        assert len(Campaign.load(other, "blends").batches()) == 2
    with pytest.raises(CampaignError, match="already exists"):
        c.save(store, "blends")
    store.close()


def test_a_continuous_campaign_saved_and_reloaded_proposes_the_same(photo, tmp_path):
    # a formulation space: candidates are drawn at random, seeded by the campaign
    space = FormulationSpace(INGREDIENTS)
    c = Campaign(space, "degradation min", initial=photo.iloc[:8], strategy=FAST, seed=5)
    c.suggest(2)
    with Store(tmp_path / "lab.db") as store:
        reloaded = Campaign.load(store, c.save(store, "f").name)
        a, b = c.suggest(3), reloaded.suggest(3)
    np.testing.assert_allclose(a[INGREDIENTS].to_numpy(), b[INGREDIENTS].to_numpy())


class CountingRidge(RegressorMixin, BaseEstimator):
    """A surrogate of one's own: Bayesian ridge regression, counting its fits."""

    fits = 0

    def __init__(self, alpha_1: float = 1e-6):
        self.alpha_1 = alpha_1

    def fit(self, X, y):
        type(self).fits += 1
        self.model_ = BayesianRidge(alpha_1=self.alpha_1).fit(X, y)
        return self

    def predict(self, X, return_std: bool = False):
        return self.model_.predict(X, return_std=return_std)


def test_a_surrogate_of_ones_own_follows_the_sklearn_contract(photo, tmp_path):
    pool = _pool(photo)
    CountingRidge.fits = 0
    c = _campaign(pool, strategy=None, model=CountingRidge(alpha_1=1e-5))
    batch = c.suggest(2)
    assert CountingRidge.fits >= 1
    assert np.isfinite(batch["degradation_std"]).all() and (batch["degradation_std"] > 0).all()
    model = c.batches()["model"].iloc[0]
    assert model["class"] == "CountingRidge" and model["params"]["alpha_1"] == 1e-5
    # saved, it is described by its import path and parameters, and rebuilt on loading
    with Store(tmp_path / "lab.db") as store:
        c.save(store, "ridge")
        again = Campaign.load(store, "ridge")
        assert isinstance(again.strategy.model, CountingRidge)
        assert again.strategy.model.alpha_1 == 1e-5
        assert again.suggest(1)["degradation_std"].gt(0).all()
    # scikit-learn's own estimators with predict(X, return_std=True) work as they are
    sk = _campaign(pool, strategy=None, model=BayesianRidge())
    assert sk.suggest(1)["degradation_std"].gt(0).all()
    assert sk.batches()["model"].iloc[0]["class"] == "BayesianRidge"
    # one whose parameters are objects (a kernel) is given again when its campaign is loaded
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel

    gp = GaussianProcessRegressor(kernel=RBF(0.3) + WhiteKernel(0.1), normalize_y=True)
    with Store(tmp_path / "lab.db") as store:
        _campaign(pool, strategy=None, model=gp).save(store, "gp")
        with pytest.raises(CampaignError, match="not plain values"):
            Campaign.load(store, "gp")
        again = Campaign.load(store, "gp", model=gp)
        assert again.suggest(1)["degradation_std"].gt(0).all()
        assert again.batches()["model"].iloc[0]["class"] == "GaussianProcessRegressor"
    with pytest.raises(DesignSpaceError, match="scikit-learn contract"):
        _campaign(pool, strategy=None, model=object())
    with pytest.raises(DesignSpaceError, match="unknown surrogate"):
        _campaign(pool, strategy=None, model="xgb")


def test_composition_pool_round_trips_through_the_spaces_from_dict():
    df = pd.DataFrame({"id": ["a", "b", "c", "d"],
                       "formula": ["Fe2O3", "FeO", "Fe3O4", "Fe2O3"],
                       "route": ["sol-gel", "solid", "solid", "solid"],
                       "T": [600, 800, 900, 700]})
    pool = CompositionPool(df, id_column="id", feature_columns=["route", "T"],
                           featurizer=["element_fraction"], categorical={"route": None})
    d = pool.as_dict()
    for load in (space_from_dict, DesignSpace.from_dict, CompositionPool.from_dict):
        again = load(d)
        assert isinstance(again, CompositionPool) and again == pool
        assert again.as_dict() == d
        np.testing.assert_array_equal(again.to_features(), pool.to_features())
        assert again.keys(df).tolist() == pool.keys(df).tolist()
    # one deserialiser dispatches on the class, and refuses the wrong kind
    with pytest.raises(DesignSpaceError, match="got a serialised CompositionPool"):
        DiscretePool.from_dict(d)
    # what the pools share behaves the same (drawing, excluding, matching)
    assert pool.positions(["b", "d"]).tolist() == [1, 3]
    assert pool.available(df.iloc[[0]]).tolist() == [False, True, True, True]
    assert len(pool.sample(3, rng=0, exclude=df.iloc[[0]])) == 3
    with pytest.raises(DesignSpaceError, match="asked for 5 candidates, 4 available"):
        pool.sample(5)
