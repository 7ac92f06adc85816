"""Calibration metrics for Gaussian predictive uncertainty.

Every function takes the observed targets ``y``, the predicted means ``mu`` and the predicted
standard deviations ``sigma`` (all in the target's units, 1-d arrays of equal length) and treats
``N(mu, sigma**2)`` as the predictive distribution of each row. The central interval at
``level`` is ``mu ± z * sigma`` with ``z = Φ⁻¹((1 + level) / 2)`` (z = 0.994 for 0.68,
1.960 for 0.95).
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, stats

__all__ = [
    "calibration_report",
    "coverage",
    "coverage_curve",
    "miscalibration_area",
    "spearman_error_std",
]


def _check(y, mu, sigma) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, mu, sigma = (np.asarray(a, dtype=float).ravel() for a in (y, mu, sigma))
    if not (y.shape == mu.shape == sigma.shape):
        raise ValueError(
            f"y, mu and sigma must have the same length, got {y.size}, {mu.size} and {sigma.size}"
        )
    if y.size == 0:
        raise ValueError("calibration metrics need at least one row, got 0")
    for name, a in (("y", y), ("mu", mu), ("sigma", sigma)):
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise ValueError(f"{name} has {bad.size} non-finite value(s), first at row {bad[0]}")
    bad = np.flatnonzero(sigma < 0)
    if bad.size:
        raise ValueError(f"sigma must be >= 0; row {bad[0]} has sigma={float(sigma[bad[0]])!r}")
    return y, mu, sigma


def _abs_z(y, mu, sigma) -> np.ndarray:
    """|y - mu| / sigma, with 0/0 := 0 (an exact prediction with zero width is covered)."""
    err = np.abs(y - mu)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = err / sigma
    z[err == 0] = 0.0
    return z


def coverage(y, mu, sigma, level: float = 0.68) -> float:
    """Fraction of rows whose target lies inside the central ``level`` interval ``mu ± z·sigma``.

    For a calibrated model the result is close to ``level`` (0.68 or 0.95 usually).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    y, mu, sigma = _check(y, mu, sigma)
    return float(np.mean(_abs_z(y, mu, sigma) <= stats.norm.ppf(0.5 + level / 2)))


def coverage_curve(y, mu, sigma, n_levels: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Expected and observed coverage of central intervals at ``n_levels`` levels in [0, 1].

    Returns ``(expected, observed)``; plotting one against the other gives the calibration curve
    (a calibrated model lies on the diagonal).
    """
    if n_levels < 2:
        raise ValueError(f"n_levels must be >= 2, got {n_levels!r}")
    y, mu, sigma = _check(y, mu, sigma)
    expected = np.linspace(0.0, 1.0, n_levels)
    # Coverage at level p is the fraction of |z| <= Φ⁻¹((1 + p)/2): the empirical CDF of |z|
    # evaluated at those quantiles, done with one sort instead of a rows × levels comparison.
    z_sorted = np.sort(_abs_z(y, mu, sigma))
    q = stats.norm.ppf(0.5 + expected / 2)  # 0 … inf
    observed = np.searchsorted(z_sorted, q, side="right") / z_sorted.size
    return expected, observed


def miscalibration_area(y, mu, sigma, n_levels: int = 101) -> float:
    """Area between the observed and the expected coverage curves of central intervals.

    0 for a perfectly calibrated model; at most 0.5 (every interval either empty or covering
    everything). Integrated with the trapezoid rule over ``n_levels`` levels in [0, 1].
    """
    expected, observed = coverage_curve(y, mu, sigma, n_levels)
    return float(integrate.trapezoid(np.abs(observed - expected), expected))


def spearman_error_std(y, mu, sigma) -> float:
    """Spearman rank correlation between absolute error ``|y - mu|`` and ``sigma``.

    Positive when larger predicted uncertainty goes with larger error; NaN when either is
    constant.
    """
    y, mu, sigma = _check(y, mu, sigma)
    err = np.abs(y - mu)
    if np.ptp(err) == 0 or np.ptp(sigma) == 0:
        return float("nan")
    return float(stats.spearmanr(err, sigma).statistic)


def calibration_report(y, mu, sigma) -> dict[str, float]:
    """Accuracy and calibration summary of Gaussian predictions, as a flat dict of floats.

    Keys: ``n``; ``mae``, ``rmse`` and ``rmv`` (root mean predicted variance; ≈ rmse when
    calibrated), all in the target's units; ``coverage_68`` and ``coverage_95``;
    ``miscalibration_area``; ``spearman_error_std``; ``nll`` (mean Gaussian negative
    log-likelihood per row, nats; rows with sigma = 0 are left out of it).
    """
    y, mu, sigma = _check(y, mu, sigma)
    err = y - mu
    pos = sigma > 0
    nll = (
        float(np.mean(stats.norm.logpdf(y[pos], loc=mu[pos], scale=sigma[pos])) * -1.0)
        if pos.any()
        else float("nan")
    )
    return {
        "n": float(y.size),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "rmv": float(np.sqrt(np.mean(sigma**2))),
        "coverage_68": coverage(y, mu, sigma, 0.68),
        "coverage_95": coverage(y, mu, sigma, 0.95),
        "miscalibration_area": miscalibration_area(y, mu, sigma),
        "spearman_error_std": spearman_error_std(y, mu, sigma),
        "nll": nll,
    }
