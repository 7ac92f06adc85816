"""When to stop: how likely it is that a candidate better than the best so far remains.

:func:`probability_better_remains` answers, for the candidates not measured yet, "if we
measured every one of them once, what is the chance that at least one beats the best result so
far (by more than ``margin``)?", under the campaign's fitted surrogate. Three numbers:

* ``lower`` = max_i p_i, where p_i is candidate i's own probability of beating the best (the
  probability of improvement, times its probability of succeeding and of meeting the
  constraints): a floor whatever the dependence between candidates;
* ``upper`` = min(1, Σ_i p_i), the union bound: a ceiling whatever the dependence;
* ``probability``, the estimate between them: Monte Carlo over the joint predictive
  distribution of the ``max_joint`` most promising candidates — marginals N(mean, std²) as the
  surrogate predicts them (calibrated, measurement noise included), correlations between
  candidates from the surrogate itself (a Gaussian process: its posterior covariance; a random
  forest: the correlation of its trees' predictions; other surrogates: none, i.e. independent
  candidates, which errs high). Success (failed experiments) and constraints are drawn
  independently per candidate. The other candidates can add at most the sum of their p_i,
  which is included in ``upper``.

For several objectives, "better" means a result that no observed Pareto-optimal result
dominates (it would extend the front); the per-candidate p_i are then Monte Carlo too.

The estimate is only as good as the surrogate: it says what the model believes, not what is
true, and a model that has not seen a region (a continuous space is scored on a random sample
of candidates) can miss a better candidate it never scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from matforge.design.objectives import Objective, pareto_front
from matforge.errors import DesignSpaceError

__all__ = ["StoppingEstimate", "probability_better_remains"]

#: Candidates whose joint distribution is sampled (the most promising ones).
MAX_JOINT = 512
#: Monte Carlo draws of the joint distribution.
N_SAMPLES = 2000


@dataclass
class StoppingEstimate:
    """See the module docstring. ``probability`` is None when there is no model yet (``reason``
    says why); ``best`` is the best result so far in the objective's units (one objective)."""

    probability: float | None
    lower: float | None = None
    upper: float | None = None
    n_candidates: int = 0
    n_joint: int = 0
    margin: float = 0.0
    best: float | None = None
    correlation: str = ""
    assumption: str = ""
    reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line for people."""
        if self.probability is None:
            return f"no estimate yet: {self.reason}"
        margin = f" by more than {self.margin:g}" if self.margin else ""
        return (
            f"chance that a better candidate remains{margin}: {self.probability:.0%} (at least "
            f"{self.lower:.0%}, at most {self.upper:.0%}; {self.n_candidates:,} unmeasured "
            f"candidates scored; correlations: {self.correlation})"
        )


class _LatentGP:
    """The noise-free posterior of a fitted :class:`~matforge.models.GaussianProcessUQ`: means,
    variances and covariances of the property itself (not of a new measurement of it), scaled
    by the model's calibration factor, in the property's units."""

    def __init__(self, surrogate):
        from sklearn.gaussian_process.kernels import Sum, WhiteKernel

        gp = surrogate.gp_
        kernel = gp.kernel_
        if not (isinstance(kernel, Sum) and isinstance(kernel.k2, WhiteKernel)):
            raise TypeError("not a signal + white-noise kernel")
        self.gp, self.signal = gp, kernel.k1
        self.surrogate = surrogate
        self.scale = float(surrogate.std_scale_) * float(surrogate.y_scale_)

    def _std(self, X: np.ndarray) -> np.ndarray:
        s = self.surrogate
        return (np.asarray(X, dtype=float) - s.x_mean_) / s.x_scale_

    def _v(self, Xs: np.ndarray) -> np.ndarray:
        from scipy.linalg import solve_triangular

        return solve_triangular(self.gp.L_, self.signal(self.gp.X_train_, Xs), lower=True)

    def mean(self, X) -> np.ndarray:
        return np.asarray(self.surrogate.predict(X), dtype=float)

    def var_and_cov(self, X, x_ref) -> tuple[np.ndarray, np.ndarray]:
        """Variance of each row of ``X`` and its covariance with the single row ``x_ref``."""
        Xs, rs = self._std(X), self._std(np.atleast_2d(x_ref))
        vr = self._v(rs)
        var, cov = np.empty(len(Xs)), np.empty(len(Xs))
        for start in range(0, len(Xs), 2048):
            sl = slice(start, start + 2048)
            V = self._v(Xs[sl])
            var[sl] = self.signal.diag(Xs[sl]) - np.sum(V**2, axis=0)
            cov[sl] = self.signal(Xs[sl], rs)[:, 0] - V.T @ vr[:, 0]
        return np.clip(var, 0.0, None) * self.scale**2, cov * self.scale**2

    def cov(self, X) -> np.ndarray:
        Xs = self._std(X)
        V = self._v(Xs)
        return (self.signal(Xs, Xs) - V.T @ V) * self.scale**2


def _correlation(surrogate, X: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Correlation matrix of the surrogate's predictions at rows ``X``, and where it is from."""
    gp = getattr(surrogate, "gp_", None)
    if gp is not None and hasattr(surrogate, "x_mean_"):
        Xs = (X - surrogate.x_mean_) / surrogate.x_scale_
        _, cov = gp.predict(Xs, return_cov=True)
        return _to_correlation(cov), "the Gaussian process's posterior covariance"
    forest = getattr(surrogate, "forest_", None)
    if forest is not None and hasattr(forest, "estimators_"):
        from matforge.models.jackknife import tree_predictions

        T = tree_predictions(forest.estimators_, np.ascontiguousarray(X, dtype=np.float32))
        return _to_correlation(
            np.cov(T, rowvar=False).reshape(len(X), len(X))
        ), "the random forest's trees"
    return None, "none (candidates assumed independent, which errs high)"


def _to_correlation(cov: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    ok = d > 1e-12
    R = np.eye(len(cov))
    R[np.ix_(ok, ok)] = cov[np.ix_(ok, ok)] / np.outer(d[ok], d[ok])
    return np.clip((R + R.T) / 2, -1.0, 1.0)


def _joint_normal(
    mean: np.ndarray, std: np.ndarray, R: np.ndarray | None, n: int, rng: np.random.Generator
) -> np.ndarray:
    """(n, k) draws with marginals N(mean, std²) and correlation R (None: independent)."""
    z = rng.standard_normal((n, len(mean)))
    if R is not None:
        w, V = np.linalg.eigh(R)
        z = z @ (V * np.sqrt(np.clip(w, 0.0, None))).T
    return mean + std * z


def _not_dominated(U: np.ndarray, front: np.ndarray) -> np.ndarray:
    """(..., m) utilities → bool (...): no row of ``front`` is ≥ them in every objective."""
    dominated = np.zeros(U.shape[:-1], dtype=bool)
    for f in front:
        dominated |= (f >= U).all(axis=-1)
    return ~dominated


def probability_better_remains(
    surrogates: Sequence,
    X_candidates,
    objectives: Sequence[Objective],
    Y_observed,
    *,
    X_observed=None,
    p_feasible=None,
    margin: float = 0.0,
    max_joint: int = MAX_JOINT,
    n_samples: int = N_SAMPLES,
    seed: int = 0,
) -> StoppingEstimate:
    """How likely a better candidate remains among ``X_candidates`` (see the module docstring).

    ``surrogates``: one fitted model per objective (``predict(X, return_std=True)``);
    ``Y_observed``: (n_obs, m) measured values (NaN: not measured, or failed) and
    ``X_observed`` their features (needed for the noise-free comparison with the incumbent);
    ``p_feasible``: (n,) probability that each candidate succeeds and meets the constraints;
    ``margin``: how much better counts (in the objective's units: a distance to the target for
    target and range objectives).
    """
    objectives = list(objectives)
    surrogates = list(surrogates)
    X = np.asarray(X_candidates, dtype=float)
    Y = np.asarray(Y_observed, dtype=float).reshape(-1, len(objectives))
    if len(surrogates) != len(objectives):
        raise DesignSpaceError(f"{len(surrogates)} surrogates for {len(objectives)} objectives")
    margin = float(margin)
    if not np.isfinite(margin) or margin < 0:
        raise DesignSpaceError(f"margin must be a number ≥ 0, got {margin!r}")
    n, m = len(X), len(objectives)
    if n == 0:
        return StoppingEstimate(
            0.0, 0.0, 0.0, margin=margin, reason="every candidate has been measured"
        )
    complete = np.isfinite(Y).all(axis=1)
    U_obs = np.column_stack([o.utility(Y[:, j]) for j, o in enumerate(objectives)])[complete]
    if not len(U_obs):
        return StoppingEstimate(None, margin=margin, reason="no complete result yet")
    rng = np.random.default_rng(seed)
    pf = np.ones(n) if p_feasible is None else np.clip(np.asarray(p_feasible, float), 0, 1)
    obj = objectives[0]
    best = None
    if m == 1:
        best_u = float(U_obs[:, 0].max())
        best = float(-best_u if obj.kind != "max" else best_u)
    latent = None
    if m == 1 and obj.kind in ("max", "min") and X_observed is not None:
        try:
            latent = _LatentGP(surrogates[0])
        except (AttributeError, TypeError):
            latent = None
    if latent is not None:
        return _latent_estimate(
            latent,
            X,
            np.asarray(X_observed, float)[complete],
            obj,
            pf,
            margin,
            max_joint,
            n_samples,
            rng,
            best,
        )
    preds = [s.predict(X, return_std=True) for s in surrogates]
    mean = np.column_stack([np.asarray(p[0], float) for p in preds])
    std = np.column_stack([np.maximum(np.asarray(p[1], float), 0.0) for p in preds])
    front = U_obs[pareto_front(U_obs)] + margin
    if m == 1:
        if obj.kind in ("target", "range") and best_u + margin >= 0:
            p = np.zeros(n)  # on target already: a utility cannot exceed 0
        else:
            dist = obj.utility_distribution(mean[:, 0], std[:, 0])
            p = np.asarray(dist.probability_of_improvement(best_u + margin), dtype=float)
    else:  # Monte Carlo per candidate: independent objectives, as the acquisitions assume
        p = np.empty(n)
        z = rng.standard_normal((256, m))
        for start in range(0, n, 4096):
            sl = slice(start, start + 4096)
            Ys = mean[sl][None] + std[sl][None] * z[:, None, :]
            U = np.stack([o.utility(Ys[..., j]) for j, o in enumerate(objectives)], axis=-1)
            p[sl] = _not_dominated(U, front).mean(axis=0)
    p = np.nan_to_num(p, nan=0.0) * pf
    top, rest = _top(p, max_joint)
    Rs, source = [], ""
    for s in surrogates:
        R, source = _correlation(s, X[top])
        Rs.append(R)
    draws = [_joint_normal(mean[top, j], std[top, j], Rs[j], n_samples, rng) for j in range(m)]
    U = np.stack([o.utility(draws[j]) for j, o in enumerate(objectives)], axis=-1)
    better = _not_dominated(U, front)
    better &= rng.random((n_samples, len(top))) < pf[top]
    what = (
        "a new measurement of it beats the best result measured so far"
        if m == 1
        else "a new measurement of it is dominated by no Pareto-optimal result so far"
    )
    basis = (
        f"the surrogate's predictive distribution (marginals N(mean, std²) as predicted, "
        f"measurement noise included, so noisy measurements make it err high), correlations "
        f"between the {len(top)} most promising candidates from {source}"
    )
    return _estimate(p, better, top, rest, n, margin, best, source, what, basis, p_feasible)


def _top(p: np.ndarray, max_joint: int) -> tuple[np.ndarray, float]:
    """The ``max_joint`` most promising candidates, and the summed p of the others."""
    order = np.argsort(-p, kind="stable")
    top = order[: max(1, int(max_joint))]
    return top, float(p[order[len(top) :]].sum())


def _estimate(p, better, top, rest, n, margin, best, source, what, basis, p_feasible):
    lower = float(p.max())
    upper = float(min(1.0, p.sum()))
    joint = float(better.any(axis=1).mean())
    estimate = float(np.clip(joint, lower, max(upper, lower)))
    assumption = (
        f"Of the {n:,} unmeasured candidates scored, the chance that for at least one {what}"
        + (f" by more than {margin:g}" if margin else "")
        + f", under {basis}"
        + (
            f"; the other {n - len(top):,} could add at most {rest:.2g} (in the upper bound)"
            if n > len(top)
            else ""
        )
        + (
            "; successes and constraints independent per candidate"
            if p_feasible is not None
            else ""
        )
        + ". It is what the model believes, not a guarantee: a region it has not seen can hide "
        "a better candidate."
    )
    return StoppingEstimate(
        probability=estimate,
        lower=lower,
        upper=max(upper, estimate),
        n_candidates=n,
        n_joint=len(top),
        margin=margin,
        best=best,
        correlation=source,
        assumption=assumption,
    )


def _latent_estimate(latent: _LatentGP, X, X_obs, obj, pf, margin, max_joint, n_samples, rng, best):
    """One objective to maximise or minimise with a Gaussian process: the true values of the
    candidates against the true value at the incumbent (the measured experiment with the best
    posterior mean), jointly, without measurement noise."""
    from scipy.stats import norm

    sign = 1.0 if obj.kind == "max" else -1.0
    mean_obs = latent.mean(X_obs)
    inc = X_obs[[int(np.argmax(sign * mean_obs))]]
    mean_inc = float(latent.mean(inc)[0])
    var_inc = float(latent.var_and_cov(inc, inc[0])[0][0])
    mean = latent.mean(X)
    var, cov = latent.var_and_cov(X, inc[0])
    sd = np.sqrt(np.clip(var + var_inc - 2 * cov, 1e-24, None))
    p = norm.sf((margin - sign * (mean - mean_inc)) / sd) * pf
    top, rest = _top(p, max_joint)
    Z = np.vstack([inc, X[top]])
    C = latent.cov(Z)
    d = np.sqrt(np.clip(np.diag(C), 0.0, None))
    R = _to_correlation(C)
    F = _joint_normal(np.r_[mean_inc, mean[top]], d, R, n_samples, rng)
    better = sign * (F[:, 1:] - F[:, :1]) > margin
    better &= rng.random((n_samples, len(top))) < pf[top]
    source = "the Gaussian process's posterior covariance"
    what = "its true value is better than the true value at the best experiment so far"
    basis = (
        f"the Gaussian process's posterior without measurement noise (calibrated), jointly over "
        f"that experiment and the {len(top)} most promising candidates"
    )
    return _estimate(
        p,
        better,
        top,
        rest,
        len(X),
        margin,
        best,
        source,
        what,
        basis,
        None if np.all(pf == 1) else pf,
    )
