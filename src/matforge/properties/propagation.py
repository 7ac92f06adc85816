"""Monte Carlo propagation of predictive uncertainty through derived properties.

A model output for ``n`` rows is a :class:`Predictive`: normal ``N(loc, scale²)`` in the
property's units, or log-normal ``10^N(loc, scale²)`` for models fitted on log10 targets
(``log10=True``; ``loc`` and ``scale`` then in log10 units). :func:`propagate` draws ``S``
samples of every input per row, applies the formula to each, and returns the mean and standard
deviation over the samples.

The standard-normal draws are *common random numbers*: one ``(S, n_inputs)`` array from a
seeded generator (:func:`normal_draws`, antithetic pairs ``z, −z``) is shared by every row. A
row's result therefore depends only on its own predictions and the seed — not on which other
rows share its batch, the batch size, or the worker that computed it — and repeated runs are
bit-identical.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from matforge.properties.derived import DerivedProperty, get_derived

__all__ = ["Predictive", "normal_draws", "propagate"]

_LN10 = math.log(10.0)


@dataclass(frozen=True)
class Predictive:
    """Predictive distribution of one property for a batch of rows.

    Attributes:
        loc, scale: (n,) arrays: mean and std of the normal (property units), or of the log10
            value when ``log10`` is true.
        log10: samples are ``10 ** N(loc, scale²)`` (log-normal; positive by construction).
        lower: samples below this are clipped to it (e.g. 0 for a modulus under a normal
            model); None: no clipping.
    """

    loc: np.ndarray
    scale: np.ndarray
    log10: bool = False
    lower: float | None = None

    def mean(self) -> np.ndarray:
        """Mean of the distribution, in property units (log-normal: ``exp(m + s²/2)``)."""
        if not self.log10:
            return np.asarray(self.loc, dtype=np.float64)
        m, s = self.loc * _LN10, self.scale * _LN10
        return np.exp(m + 0.5 * s * s)

    def std(self) -> np.ndarray:
        """Standard deviation, in property units."""
        if not self.log10:
            return np.asarray(self.scale, dtype=np.float64)
        s2 = (self.scale * _LN10) ** 2
        return self.mean() * np.sqrt(np.expm1(s2))

    def median(self) -> np.ndarray:
        """Median, in property units (``10**loc`` for a log-normal)."""
        return np.power(10.0, self.loc) if self.log10 else np.asarray(self.loc, dtype=np.float64)

    def sample(self, z: np.ndarray) -> np.ndarray:
        """Samples ``(n, S)`` for standard-normal draws ``z`` of shape ``(S,)``."""
        x = self.loc[:, None] + self.scale[:, None] * z[None, :]
        if self.log10:
            x = np.power(10.0, x)
        if self.lower is not None:
            np.maximum(x, self.lower, out=x)
        return x

    def take(self, rows) -> Predictive:
        """The distribution of a subset of the rows."""
        return Predictive(self.loc[rows], self.scale[rows], self.log10, self.lower)


def normal_draws(
    n_samples: int = 256,
    n_inputs: int = 2,
    *,
    seed: int = 0,
    correlation: float | np.ndarray | None = None,
) -> np.ndarray:
    """Seeded standard-normal draws ``(n_samples, n_inputs)`` in antithetic pairs.

    ``correlation``: a scalar ρ (the same between every pair of inputs) or an
    ``(n_inputs, n_inputs)`` correlation matrix; the draws are then correlated through its
    Cholesky factor (e.g. errors of bulk- and shear-modulus models, which move together).
    """
    if n_samples < 2 or n_samples % 2:
        raise ValueError(f"n_samples must be an even number >= 2, got {n_samples!r}")
    half = np.random.default_rng(seed).standard_normal((n_samples // 2, n_inputs))
    z = np.concatenate([half, -half])
    if correlation is not None:
        c = np.asarray(correlation, dtype=np.float64)
        if c.ndim == 0:
            c = np.full((n_inputs, n_inputs), float(c))
            np.fill_diagonal(c, 1.0)
        z = z @ np.linalg.cholesky(c).T
    return z


def propagate(
    derived: str | DerivedProperty,
    inputs: Mapping[str, Predictive],
    *,
    draws: np.ndarray | None = None,
    n_samples: int = 256,
    seed: int = 0,
    correlation: float | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (property units) of ``derived`` over Monte Carlo samples of its inputs.

    ``inputs`` maps each of ``derived.inputs`` to its :class:`Predictive`. ``draws`` (from
    :func:`normal_draws`, one column per input in ``derived.inputs`` order) overrides
    ``n_samples``/``seed``/``correlation``. Samples where the formula is undefined (NaN) are
    left out of the statistics of their row.
    """
    prop = get_derived(derived)
    missing = [name for name in prop.inputs if name not in inputs]
    if missing:
        raise KeyError(f"{prop.name} needs {', '.join(missing)}")
    if draws is None:
        draws = normal_draws(n_samples, len(prop.inputs), seed=seed, correlation=correlation)
    samples = {name: inputs[name].sample(draws[:, j]) for j, name in enumerate(prop.inputs)}
    values = prop(samples)
    return nan_mean_std(values)


def nan_mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise mean and std (ddof=1) of ``(n, S)`` samples, ignoring NaN (all-NaN → NaN)."""
    finite = np.isfinite(values)
    if finite.all():
        return values.mean(axis=1), values.std(axis=1, ddof=1)
    v = np.where(finite, values, 0.0)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = v.sum(axis=1) / count
        dev = np.where(finite, values - mean[:, None], 0.0)
        std = np.sqrt((dev * dev).sum(axis=1) / (count - 1))
    return mean, std
