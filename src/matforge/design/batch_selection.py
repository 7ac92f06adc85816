"""Batch proposals: choose ``q`` experiments at once from a pool of candidates.

Scoring every candidate once and taking the top ``q`` wastes a batch on near-duplicates (they
share a high score). :func:`select_batch` picks greedily, one candidate at a time, and after
each pick makes its neighbourhood less attractive:

* ``"kriging_believer"`` (Ginsbourger et al. 2010): pretend the pick was measured and came out
  at its predicted mean, refit the surrogate on that fake observation (when the training data
  are given) and re-score. Without training data the update is cheap and approximate: the
  means stay, predictive variances shrink as ``σ²(x)·(1 − ρ(x, x*)²)`` with the correlation
  ``ρ = exp(−‖x − x*‖² / 2r²)``. After a refit the standard deviations are capped by that
  cheap update too, because a forest's uncertainty does not collapse at its training points
  (without the cap, kriging believer on a forest re-picks copies of the same candidate). The
  best-so-far includes the fake observations.
* ``"local_penalization"``: multiply the scores by ``1 − exp(−‖x − x*‖² / 2r²)`` for every
  pick ``x*`` (a simplified form of González et al. 2016).
* ``"top"``: plain top-q, the baseline.

Distances are measured in the surrogate's length scales when it exposes them (a fitted
Gaussian process: ``r = 1`` length scale), otherwise on features scaled to unit standard deviation
over the pool, with ``r`` the 10 % quantile of the non-zero pairwise distances.

Pending experiments (submitted, not yet measured) are treated exactly like picks made before
this batch: not chosen again, fantasised or penalised around.

Ties: when several candidates share the best score (a forest fitted on two results predicts
the same for whole regions; an acquisition can be zero everywhere), the one farthest from every
measured, pending or already chosen experiment wins (features scaled to unit standard deviation
over the pool), never the first in the table's order: a replay whose pool happens to be sorted
would otherwise find its targets by reading the table from the top.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from matforge.design.acquisition import (
    Acquisition,
    make_acquisition,
    per_unit_cost,
    weight_by_feasibility,
)
from matforge.design.objectives import Constraint, Maximize, Objective, parse_objective
from matforge.errors import DesignSpaceError

__all__ = ["STRATEGIES", "BatchSelection", "TieBreak", "select_batch"]

STRATEGIES = ("kriging_believer", "local_penalization", "top")


class BatchSelection(NamedTuple):
    """Pool positions of the chosen candidates, in the order chosen, and the acquisition value
    of each at the moment it was chosen (after the updates for earlier picks)."""

    indices: np.ndarray
    values: np.ndarray


def _predict(surrogates, X) -> tuple[np.ndarray, np.ndarray]:
    means, stds = [], []
    for s in surrogates:
        mean, std = s.predict(X, return_std=True)
        means.append(np.asarray(mean, dtype=float).reshape(-1))
        stds.append(np.maximum(np.asarray(std, dtype=float).reshape(-1), 0.0))
    return np.column_stack(means), np.column_stack(stds)


def _refit(surrogate, X, y):
    """A fresh copy of ``surrogate`` fitted on (X, y) (rows with NaN targets left out).

    Convergence warnings are silenced: fake observations at the predicted mean routinely push
    noise hyperparameters to their bounds, and the user did not ask for this fit.
    """
    import warnings

    try:
        from sklearn.base import clone

        fresh = clone(surrogate)
    except (TypeError, ImportError):
        fresh = copy.deepcopy(surrogate)
    ok = ~np.isnan(y)
    with warnings.catch_warnings():
        try:
            from sklearn.exceptions import ConvergenceWarning

            warnings.simplefilter("ignore", ConvergenceWarning)
        except ImportError:  # pragma: no cover
            pass
        return fresh.fit(X[ok], y[ok])


def _length_scales(surrogate, d: int) -> np.ndarray | None:
    """Per-feature length scales of a fitted GP surrogate, in raw feature units, if any."""
    gp = getattr(surrogate, "gp_", surrogate)
    kernel = getattr(gp, "kernel_", None)
    if kernel is None or not hasattr(kernel, "get_params"):
        return None
    for key, value in kernel.get_params(deep=True).items():
        if key.endswith("length_scale"):
            try:
                ls = np.broadcast_to(np.asarray(value, dtype=float), (d,)).copy()
            except ValueError:
                return None
            x_scale = getattr(surrogate, "x_scale_", None)
            if x_scale is not None and np.shape(x_scale) == (d,):
                ls = ls * np.asarray(x_scale, dtype=float)
            return ls if np.isfinite(ls).all() and (ls > 0).all() else None
    return None


def _unit_std_scale(X: np.ndarray) -> np.ndarray:
    """Per-column divisor that scales the pool to unit standard deviation (1 for constant
    columns)."""
    std = X.std(axis=0)
    return np.where(std > 0, std, 1.0)


def _scaling(X: np.ndarray, surrogates, radius) -> tuple[np.ndarray, float]:
    d = X.shape[1]
    for s in surrogates:
        ls = _length_scales(s, d)
        if ls is not None:
            return ls, float(radius) if radius is not None else 1.0
    scale = _unit_std_scale(X)
    if radius is not None:
        return scale, float(radius)
    Z = X / scale
    if len(Z) > 1000:
        Z = Z[np.random.default_rng(0).choice(len(Z), 1000, replace=False)]
    sq = np.sum(Z**2, axis=1)
    D2 = np.maximum(sq[:, None] + sq[None, :] - 2 * Z @ Z.T, 0.0)
    dist = np.sqrt(D2[np.triu_indices(len(Z), k=1)])
    dist = dist[dist > 1e-12]
    return scale, float(np.quantile(dist, 0.1)) if len(dist) else 1.0


class TieBreak:
    """Which of several equally scored candidates to take: the one farthest (features scaled
    to unit standard deviation over the pool) from every row in ``seen`` (measured, pending
    and chosen experiments). Distances are computed for the tied candidates only."""

    def __init__(self, X: np.ndarray, seen: list[np.ndarray]):
        self.X = X
        self.seen = [r for r in seen if len(r)]
        self._scale = None  # computed at the first tie: most selections have none

    @property
    def scale(self) -> np.ndarray:
        if self._scale is None:
            self._scale = _unit_std_scale(self.X)
        return self._scale

    def add(self, rows: np.ndarray) -> None:
        self.seen.append(rows)

    def novelty(self, idx: np.ndarray) -> np.ndarray:
        if not self.seen:
            return np.zeros(len(idx))
        Z = self.X[idx] / self.scale
        S = np.vstack(self.seen) / self.scale
        d2 = np.sum(Z**2, axis=1)[:, None] + np.sum(S**2, axis=1)[None, :] - 2 * Z @ S.T
        return np.min(d2, axis=1)

    def best(self, s: np.ndarray) -> int:
        """Position of the best score; among exact ties (up to 1e-9 of the score), the most
        novel candidate, then the first."""
        top = float(np.max(s))
        if not np.isfinite(top):
            return int(np.argmax(s))
        tied = np.flatnonzero(s >= top - 1e-9 * abs(top))
        if len(tied) == 1:
            return int(tied[0])
        return int(tied[np.argmax(self.novelty(tied))])

    def order(self, s: np.ndarray, q: int) -> np.ndarray:
        """The ``q`` best positions (no updates between picks); candidates with exactly equal
        scores are ordered by novelty."""
        order = np.argsort(-s, kind="stable")
        cand = order[s[order] >= s[order[q - 1]]]  # the first q and everything tied with them
        if len(np.unique(s[cand])) == len(cand):
            return cand[:q]
        return cand[np.lexsort((-self.novelty(cand), -s[cand]))][:q]


def _objectives(objective, m: int) -> list[Objective]:
    if objective is None:
        return [Maximize(f"y{j}") for j in range(m)] if m > 1 else [Maximize("y")]
    objs = list(objective) if isinstance(objective, Sequence) and not isinstance(
        objective, str) else [objective]
    objs = [parse_objective(o) for o in objs]
    if len(objs) != m:
        raise DesignSpaceError(f"{len(objs)} objective(s) for {m} surrogate(s)")
    return objs


def select_batch(
    pool_features,
    surrogate,
    acquisition: Acquisition | str,
    q: int,
    pending=None,
    strategy: str = "kriging_believer",
    *,
    objective=None,
    best=None,
    X_observed=None,
    y_observed=None,
    exclude=None,
    constraints: Sequence[tuple[Constraint, object]] | None = None,
    feasibility=None,
    cost=None,
    radius: float | None = None,
    refit: bool | None = None,
) -> BatchSelection:
    """Choose ``q`` distinct candidates from a pool.

    Parameters
    ----------
    pool_features : (n, d) array
        Candidates as the surrogate sees them (e.g. ``space.to_features(candidates)``).
    surrogate : fitted estimator with ``predict(X, return_std=True)``, or a list of them (one
        per objective, for multi-objective acquisitions).
    acquisition : Acquisition or its short name (``"ei"``, ``"ucb"``, ``"ehvi"``, ...).
    q : int
        Batch size.
    pending : pool positions (1-D ints) or feature rows (2-D) of experiments under way.
    strategy : {"kriging_believer", "local_penalization", "top"}
    objective : Objective or spec string (a list, one per surrogate); default ``Maximize``.
    best : best utility observed so far (multi-objective: the (n_obs, m) observed utilities);
        default computed from ``y_observed``.
    X_observed, y_observed : the surrogates' training data ((n_obs,) or (n_obs, m) targets).
        With them, kriging believer refits clones of the surrogates on the fake observations
        (``refit=False`` keeps the cheap update).
    exclude : pool positions (or a boolean mask) that may not be chosen (e.g. already measured).
    constraints : ``(Constraint, fitted surrogate)`` pairs; scores are weighted by the
        probability of satisfying all of them (:func:`weight_by_feasibility`).
    feasibility : (n,) probability that each candidate's experiment succeeds at all (see
        :mod:`matforge.design.feasibility`); scores are weighted by it too.
    cost : (n,) cost of each candidate (> 0); scores are divided by it
        (:func:`~matforge.design.acquisition.per_unit_cost`), after the weighting.
    radius : distance scale of the updates, in the scaled feature units described in the
        module docstring (default: 1 length scale, or the 10 % distance quantile).

    Returns
    -------
    BatchSelection(indices, values)
    """
    acq = make_acquisition(acquisition)
    if strategy not in STRATEGIES:
        raise DesignSpaceError(f"unknown batch strategy {strategy!r}; use one of {STRATEGIES}")
    X = np.asarray(pool_features, dtype=float)
    if X.ndim != 2:
        raise DesignSpaceError(f"pool_features must be (n, d), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise DesignSpaceError(
            f"pool_features has non-finite values in row {int(np.flatnonzero(~np.isfinite(X).all(1))[0])}"
        )
    n, d = X.shape
    if isinstance(q, bool) or int(q) != q or q < 1:
        raise DesignSpaceError(f"q must be a positive integer, got {q!r}")
    q = int(q)
    surrogates = list(surrogate) if isinstance(surrogate, list | tuple) else [surrogate]
    m = len(surrogates)
    if acq.multi_objective and m < 2:
        raise DesignSpaceError(f"{type(acq).__name__} needs one surrogate per objective (≥ 2)")
    if not acq.multi_objective and m != 1:
        raise DesignSpaceError(f"{type(acq).__name__} scores one objective; got {m} surrogates")
    objectives = _objectives(objective, m)

    available = np.ones(n, dtype=bool)
    if exclude is not None and len(np.atleast_1d(exclude)):
        exclude = np.asarray(exclude)
        if exclude.dtype == bool:
            if exclude.shape != (n,):
                raise DesignSpaceError(f"a boolean exclude mask needs {n} entries")
            exclude = np.flatnonzero(exclude)
        available[exclude.astype(int)] = False
    pend_idx = np.zeros(0, dtype=int)
    pend_X = np.zeros((0, d))
    if pending is not None:
        arr = np.asarray(pending)
        if arr.size == 0:
            pass
        elif arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
            pend_idx = arr.astype(int)
            available[pend_idx] = False
        elif arr.ndim == 2 and arr.shape[1] == d:
            pend_X = arr.astype(float)
        else:
            raise DesignSpaceError(
                f"pending must be pool positions (1-D ints) or (k, {d}) feature rows, "
                f"got shape {arr.shape}"
            )
    if available.sum() < q:
        raise DesignSpaceError(f"asked for {q} candidates, only {int(available.sum())} available")

    Xo = Yo = None
    if y_observed is not None:
        Yo = np.asarray(y_observed, dtype=float).reshape(len(y_observed), -1)
        if Yo.shape[1] != m:
            raise DesignSpaceError(f"y_observed has {Yo.shape[1]} column(s) for {m} surrogate(s)")
    if X_observed is not None:
        Xo = np.asarray(X_observed, dtype=float)
        if Yo is None or len(Xo) != len(Yo) or Xo.ndim != 2 or Xo.shape[1] != d:
            raise DesignSpaceError("X_observed must be (n_obs, d) and come with y_observed")
    if best is None and Yo is not None:
        if acq.multi_objective:
            best = np.column_stack([o.utility(Yo[:, j]) for j, o in enumerate(objectives)])
        else:
            best = objectives[0].best_utility(Yo[:, 0])
    if acq.multi_objective and best is not None:
        best = np.asarray(best, dtype=float).reshape(-1, m)

    mean, std = _predict(surrogates, X)
    pof = None
    for c, model in constraints or ():
        cm, cs = model.predict(X, return_std=True)
        p = c.probability(cm, cs)
        pof = p if pof is None else pof * p
    if feasibility is not None:
        p = np.asarray(feasibility, dtype=float).reshape(-1)
        if p.shape != (n,) or not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
            raise DesignSpaceError(f"feasibility must be {n} probabilities in [0, 1]")
        pof = p if pof is None else pof * p
    if cost is not None:
        cost = np.asarray(cost, dtype=float).reshape(-1)
        if cost.shape != (n,):
            raise DesignSpaceError(f"cost must have one value per candidate ({n}), got {cost.shape}")

    def scores() -> np.ndarray:
        dists = [o.utility_distribution(mean[:, j], std[:, j]) for j, o in enumerate(objectives)]
        s = np.asarray(acq.score(dists if acq.multi_objective else dists[0], best), dtype=float)
        if pof is not None:
            s = weight_by_feasibility(s, pof)
        if strategy == "local_penalization":
            s = weight_by_feasibility(s, penalty)
        if cost is not None:
            s = per_unit_cost(s, cost)
        s = np.where(np.isnan(s), -np.inf, s)
        return np.where(available, s, -np.inf)

    ties = TieBreak(X, [] if Xo is None else [Xo])
    if len(pend_idx) or len(pend_X):
        ties.add(np.vstack([X[pend_idx], pend_X]))
    if strategy == "top":
        s = scores()
        order = ties.order(s, q)
        return BatchSelection(order, s[order])

    scale, r = _scaling(X, surrogates, radius)
    Z = X / scale
    penalty = np.ones(n)
    shrink = np.ones(n)  # cheap update: σ(x) ← σ₀(x)·Π sqrt(1 − ρ(x, x*)²)
    std0 = std.copy()
    refitting = strategy == "kriging_believer" and Xo is not None and refit is not False
    fake_X, fake_Y = [np.zeros((0, d))], [np.zeros((0, m))]

    def update(rows: np.ndarray, rows_mean: np.ndarray) -> None:
        """Account for picks (or pending experiments) at feature rows ``rows``."""
        nonlocal best, mean, std, penalty, shrink
        if not len(rows):
            return
        zr = rows / scale
        d2 = (np.sum(Z**2, axis=1)[:, None] + np.sum(zr**2, axis=1)[None, :]
              - 2 * Z @ zr.T)
        rho = np.exp(-np.maximum(d2, 0.0) / (2 * r * r))  # (n, k)
        if strategy == "local_penalization":
            penalty = penalty * np.prod(1.0 - rho, axis=1)
            return
        utilities = np.column_stack([o.utility(rows_mean[:, j]) for j, o in enumerate(objectives)])
        if acq.multi_objective:
            best = utilities if best is None else np.vstack([best, utilities])
        elif best is not None:
            best = max(float(best), float(np.max(utilities)))
        shrink = shrink * np.sqrt(np.prod(1.0 - rho**2, axis=1))
        if refitting:
            fake_X.append(rows)
            fake_Y.append(rows_mean)
            Xa = np.vstack([Xo, *fake_X])
            Ya = np.vstack([Yo, *fake_Y])
            models = [_refit(s, Xa, Ya[:, j]) for j, s in enumerate(surrogates)]
            mean, std = _predict(models, X)
            # Forests' uncertainty does not collapse at training points: cap it by the cheap
            # update so that copies of a pick stop looking promising (a GP's refit is tighter).
            std = np.minimum(std, std0 * shrink[:, None])
        else:
            std = std0 * shrink[:, None]

    if len(pend_idx) or len(pend_X):
        rows = np.vstack([X[pend_idx], pend_X])
        rows_mean = mean[pend_idx]
        if len(pend_X):
            rows_mean = np.vstack([rows_mean, _predict(surrogates, pend_X)[0]])
        update(rows, rows_mean)

    chosen, values = [], []
    for k in range(q):
        s = scores()
        i = ties.best(s)
        chosen.append(i)
        values.append(float(s[i]))
        available[i] = False
        ties.add(X[[i]])
        if k < q - 1:
            update(X[[i]], mean[[i]])
    return BatchSelection(np.array(chosen, dtype=int), np.array(values))
