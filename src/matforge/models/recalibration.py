"""Post-hoc recalibration of predicted standard deviations on out-of-sample residuals.

Two pieces shared by the ensemble estimators:

* :func:`fit_std_scale` — one factor ``s`` such that ``s · sigma`` is calibrated on held-out
  (out-of-bag / out-of-fold / leave-one-out) residuals;
* :class:`NoiseForest` — a random forest of the absolute held-out residuals, i.e. a model of how
  large the error typically is at ``x``; it supplies the heteroscedastic, residual-based part of
  the uncertainty that an ensemble's spread alone misses.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from matforge.models.jackknife import inbag_counts, oob_mean_std, tree_predictions

__all__ = ["RECALIBRATION_METHODS", "NoiseForest", "fit_std_scale", "resolve_recalibrate"]

RECALIBRATION_METHODS = ("rmv", "z", "coverage68")

# E|e| = sigma · sqrt(2/pi) for Gaussian e: turns a mean absolute residual into a std.
_MAD_TO_STD = math.sqrt(math.pi / 2)


def resolve_recalibrate(recalibrate) -> str | None:
    """Map an estimator's ``recalibrate`` parameter to a method name (or None for off)."""
    if recalibrate is True:
        return "rmv"
    if recalibrate is False or recalibrate is None:
        return None
    if recalibrate in RECALIBRATION_METHODS:
        return recalibrate
    raise ValueError(
        f"recalibrate must be True, False or one of {RECALIBRATION_METHODS}, got {recalibrate!r}"
    )


def fit_std_scale(residuals, sigma, method: Literal["rmv", "z", "coverage68"] = "rmv") -> float:
    """Scale factor ``s`` so that ``s · sigma`` is calibrated on the given held-out residuals.

    ``residuals`` are ``y - mu`` of predictions the model did not train on, ``sigma`` the
    uncalibrated standard deviations at the same rows (same units as ``y``).

    * ``"rmv"``: root mean variance equals RMSE, ``s² = Σr² / Σσ²`` (Levi et al. 2022). Weighted
      by variance, so rows with near-zero ``sigma`` cannot blow the factor up; the default.
    * ``"z"``: standardized residuals ``z = r/σ`` have unit RMS, ``s² = mean(z²)`` (the Gaussian
      maximum-likelihood scale). Sensitive to rows with tiny ``sigma``.
    * ``"coverage68"``: ``s`` = 68.27th percentile of ``|z|``, so 68% intervals cover 68% of the
      held-out rows (the ratio Lolo uses). With heavy-tailed residuals the 95% intervals then
      under-cover.

    Returns 1.0 when there are no usable rows or the factor is not finite and positive.
    """
    r = np.abs(np.asarray(residuals, dtype=float).ravel())
    s = np.asarray(sigma, dtype=float).ravel()
    if r.shape != s.shape:
        raise ValueError(f"residuals and sigma differ in length: {r.size} vs {s.size}")
    if method not in RECALIBRATION_METHODS:
        raise ValueError(f"method must be one of {RECALIBRATION_METHODS}, got {method!r}")
    ok = np.isfinite(r) & np.isfinite(s)
    r, s = r[ok], s[ok]
    if r.size == 0:
        return 1.0
    if method == "rmv":
        den = np.sum(s**2)
        scale = math.sqrt(np.sum(r**2) / den) if den > 0 else math.nan
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = r / s
        z[r == 0] = 0.0  # an exact prediction is calibrated whatever its sigma
        z = z[np.isfinite(z)]
        if z.size == 0:
            scale = math.nan
        elif method == "z":
            scale = math.sqrt(np.mean(z**2))
        else:
            scale = float(np.quantile(z, 0.6827))
    return scale if math.isfinite(scale) and scale > 0 else 1.0


#: bootstrap rows per noise-forest tree at most (see :class:`NoiseForest`)
NOISE_MAX_ROWS = 20_000


class NoiseForest:
    """Random forest of absolute held-out residuals, giving a residual-based std at any ``x``.

    Not an estimator users fit directly: the ensembles build one from their out-of-bag residuals.
    ``min_samples_leaf`` sets how local the noise level is: a leaf of rows that all happened to be
    predicted exactly gives a near-zero std for its neighbourhood.
    Its own out-of-bag predictions at the training rows (``oob_std_``) let the ensemble fit
    :func:`fit_std_scale` on values the noise model did not see either.
    Each tree draws at most ``max_rows`` bootstrap rows (``None``: as many as there are rows), so
    that 100,000-row tasks do not spend most of their fit in this forest; below the cap the
    forest is the plain bootstrap one.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        min_samples_leaf: int = 5,
        max_features=1 / 3,
        random_state=None,
        n_jobs=None,
        max_rows: int | None = NOISE_MAX_ROWS,
    ):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_rows = max_rows

    def fit(self, X: np.ndarray, abs_residuals: np.ndarray) -> NoiseForest:
        """Fit on validated float32 ``X`` and ``|y - mu_heldout|``; sets ``oob_std_``."""
        from sklearn.ensemble import RandomForestRegressor

        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            bootstrap=True,
            max_samples=self.max_rows if self.max_rows and X.shape[0] > self.max_rows else None,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(X, abs_residuals)
        inbag = inbag_counts(self.forest_, X.shape[0])
        mean, _, _ = oob_mean_std(inbag, tree_predictions(self.forest_.estimators_, X))
        self.oob_std_ = _MAD_TO_STD * mean  # NaN where a row was in every tree's sample
        return self

    def predict_std(self, X: np.ndarray) -> np.ndarray:
        """Residual-based standard deviation at validated float32 ``X`` (target units)."""
        return _MAD_TO_STD * tree_predictions(self.forest_.estimators_, X).mean(axis=0)
