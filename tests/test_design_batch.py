"""Batch selection: distinct picks, diversity on duplicate-rich pools, pending experiments."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel

from matforge.design.acquisition import ExpectedImprovement, UpperConfidenceBound
from matforge.design.batch_selection import select_batch
from matforge.design.objectives import Constraint
from matforge.errors import DesignSpaceError


class TinyGP(RegressorMixin, BaseEstimator):
    """Stand-in surrogate: a fixed-kernel GP (no hyperparameter search, so fits are instant)."""

    def __init__(self, length_scale: float = 0.15):
        self.length_scale = length_scale

    def fit(self, X, y):
        kernel = RBF(self.length_scale, length_scale_bounds="fixed") + WhiteKernel(
            1e-4, noise_level_bounds="fixed")
        self.gp_ = GaussianProcessRegressor(kernel, optimizer=None, normalize_y=True).fit(X, y)
        return self

    def predict(self, X, return_std: bool = False):
        return self.gp_.predict(X, return_std=return_std)


class TinyForest(RegressorMixin, BaseEstimator):
    """Stand-in surrogate without length scales: std = spread of the trees."""

    def __init__(self, n_estimators: int = 30, random_state: int = 0):
        self.n_estimators = n_estimators
        self.random_state = random_state

    def fit(self, X, y):
        self.rf_ = RandomForestRegressor(self.n_estimators, random_state=self.random_state,
                                         min_samples_leaf=2).fit(X, y)
        return self

    def predict(self, X, return_std: bool = False):
        trees = np.stack([t.predict(X) for t in self.rf_.estimators_])
        return (trees.mean(0), trees.std(0) + 1e-3) if return_std else trees.mean(0)


def f(X):
    return np.sin(6 * X[:, 0]) + np.cos(4 * X[:, 1])


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    distinct = rng.uniform(0, 1, (25, 2))
    pool = np.repeat(distinct, 8, axis=0)  # every candidate 8 times: a duplicate-rich pool
    X_obs = rng.uniform(0, 1, (10, 2))
    y_obs = f(X_obs)
    return pool, X_obs, y_obs


def spread(X):
    """Mean pairwise distance and number of distinct rows of a batch."""
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    return D[np.triu_indices(len(X), 1)].mean(), len(np.unique(X, axis=0))


@pytest.mark.parametrize("model", [TinyGP, TinyForest])
@pytest.mark.parametrize("strategy, refit", [("kriging_believer", True),
                                             ("kriging_believer", False),
                                             ("local_penalization", False)])
def test_batches_are_distinct_and_more_diverse_than_top_q(problem, model, strategy, refit):
    pool, X_obs, y_obs = problem
    surrogate = model().fit(X_obs, y_obs)
    q = 5
    data = dict(X_observed=X_obs, y_observed=y_obs) if refit else dict(best=y_obs.max())
    # the same data for both (ties between equally scored candidates go to the one farthest
    # from the measurements, when they are given)
    top = select_batch(pool, surrogate, "ei", q, strategy="top", **data)
    batch = select_batch(pool, surrogate, ExpectedImprovement(), q, strategy=strategy, **data)
    assert len(batch.indices) == q and len(set(batch.indices.tolist())) == q
    assert len(batch.values) == q and np.isfinite(batch.values).all()
    assert batch.indices[0] == top.indices[0]  # the first pick is the plain arg-max
    top_spread, top_distinct = spread(pool[top.indices])
    spread_, distinct = spread(pool[batch.indices])
    assert top_distinct == 1  # plain top-q spends the batch on copies of one candidate
    assert distinct == q and spread_ > top_spread + 0.1


def test_pending_experiments_count_as_already_chosen(problem):
    pool, X_obs, y_obs = problem
    gp = TinyGP().fit(X_obs, y_obs)
    first = select_batch(pool, gp, "ucb", 1, strategy="local_penalization").indices[0]
    copies = np.flatnonzero((pool == pool[first]).all(axis=1))
    for strategy in ("local_penalization", "kriging_believer"):
        # pending as a pool position: neither it nor its copies are picked
        batch = select_batch(pool, gp, "ucb", 4, pending=np.array([first]), strategy=strategy)
        assert not set(batch.indices.tolist()) & set(copies.tolist())
        # pending as a feature row (an experiment outside the pool): same effect
        batch = select_batch(pool, gp, "ucb", 4, pending=pool[[first]] + 1e-9, strategy=strategy)
        assert not set(batch.indices.tolist()) & set(copies.tolist())


def test_excluded_candidates_are_never_chosen(problem):
    pool, X_obs, y_obs = problem
    gp = TinyGP().fit(X_obs, y_obs)
    exclude = np.arange(0, len(pool), 2)
    batch = select_batch(pool, gp, UpperConfidenceBound(), 10, exclude=exclude,
                         strategy="local_penalization")
    assert not set(batch.indices.tolist()) & set(exclude.tolist())
    mask = np.zeros(len(pool), dtype=bool)
    mask[exclude] = True
    again = select_batch(pool, gp, UpperConfidenceBound(), 10, exclude=mask,
                         strategy="local_penalization")
    assert again.indices.tolist() == batch.indices.tolist()
    with pytest.raises(DesignSpaceError, match="asked for 201 candidates, only 200 available"):
        select_batch(pool, gp, "ucb", len(pool) + 1)


def test_constraints_weight_the_scores(problem):
    pool, X_obs, y_obs = problem
    gp = TinyGP().fit(X_obs, y_obs)
    # density (g/cm³) grows with the first feature and is well known: feasible iff x0 < 0.3
    X_dense = np.random.default_rng(1).uniform(0, 1, (80, 2))
    density = TinyGP(length_scale=0.5).fit(X_dense, 10 * X_dense[:, 0])
    free = select_batch(pool, gp, "ei", 3, best=y_obs.max())
    assert (pool[free.indices, 0] > 0.35).any()  # unconstrained, some picks are too dense
    batch = select_batch(pool, gp, "ei", 3, best=y_obs.max(),
                         constraints=[(Constraint("density", "<", 3.0), density)])
    assert (pool[batch.indices, 0] < 0.35).all()


def test_multi_objective_batches(problem):
    pool, X_obs, y_obs = problem
    y2 = np.cos(5 * X_obs[:, 0] * X_obs[:, 1])
    models = [TinyGP().fit(X_obs, y_obs), TinyGP().fit(X_obs, y2)]
    Y = np.column_stack([y_obs, y2])
    for acq in ("ehvi", "parego"):
        batch = select_batch(pool, models, acq, 4, X_observed=X_obs, y_observed=Y,
                             objective=["a max", "b min"])
        assert len(set(batch.indices.tolist())) == 4
        assert spread(pool[batch.indices])[1] == 4
    with pytest.raises(DesignSpaceError, match="one surrogate per objective"):
        select_batch(pool, models[0], "ehvi", 2)
    with pytest.raises(DesignSpaceError, match="scores one objective; got 2 surrogates"):
        select_batch(pool, models, "ei", 2, best=0.0)


def test_target_objective_batch(problem):
    pool, X_obs, y_obs = problem
    gp = TinyGP().fit(X_obs, y_obs)
    batch = select_batch(pool, gp, "mli", 3, objective="y = 0.5 ± 0.1", y_observed=y_obs)
    mean, _ = gp.predict(pool[batch.indices], return_std=True)
    assert np.abs(mean[0] - 0.5) < 0.5 and len(set(batch.indices.tolist())) == 3


class Flat(RegressorMixin, BaseEstimator):
    """A surrogate that cannot tell the candidates apart (as a forest fitted on two results
    predicts the same for whole regions): every candidate gets the same mean and std."""

    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X, return_std: bool = False):
        mean = np.full(len(X), self.mean_)
        return (mean, np.ones(len(X))) if return_std else mean


@pytest.mark.parametrize("strategy", ["kriging_believer", "local_penalization", "top"])
@pytest.mark.parametrize("acq", ["ei", "mli"])
def test_ties_go_to_the_most_novel_candidate_not_the_first_row(strategy, acq):
    rng = np.random.default_rng(3)
    pool = rng.uniform(0, 1, (200, 3))
    X_obs = pool[:2] + 0.01
    y_obs = np.array([0.0, 1.0])
    model = Flat().fit(X_obs, y_obs)

    def picks(perm):
        sel = select_batch(pool[perm], model, acq, 3, strategy=strategy, objective="y in [2, 3]",
                           X_observed=X_obs, y_observed=y_obs)
        return perm[sel.indices]  # rows of the unpermuted pool

    first = picks(np.arange(len(pool)))
    assert not set(first.tolist()) & {0, 1, 2}  # not the table's first rows
    # the same experiments whatever the order of the table
    for seed in range(3):
        assert picks(np.random.default_rng(seed).permutation(len(pool))).tolist() == first.tolist()
    # the first pick is the candidate farthest from both measurements (unit-std features)
    Z, Zo = pool / pool.std(0), X_obs / pool.std(0)
    dist = np.min(((Z[:, None, :] - Zo[None]) ** 2).sum(-1), axis=1)
    assert first[0] == int(np.argmax(dist))
