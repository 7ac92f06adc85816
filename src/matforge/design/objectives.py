"""Objectives: what a campaign is after, and how a predicted property becomes a *utility*.

Every objective maps a property value ``y`` to a utility (higher is better) and a Gaussian
predictive distribution ``N(mean, std²)`` of the property to the distribution of the utility,
which acquisition functions score:

=====================  =====================================  ============================
objective              utility                                utility distribution
=====================  =====================================  ============================
``Maximize(name)``     ``y``                                  Gaussian ``N(μ, σ²)``
``Minimize(name)``     ``−y``                                 Gaussian ``N(−μ, σ²)``
``Target(name, t, τ)`` ``−max(|y − t| − τ, 0)``               negated distance to [t−τ, t+τ]
``Range(name, a, b)``  ``−dist(y, [a, b])`` (0 inside)        negated distance to [a, b]
=====================  =====================================  ============================

The distance utility is not Gaussian (for ``τ = 0`` it is a negated folded normal); its mean,
standard deviation, expected improvement and probability of improvement are computed in closed
form by :class:`IntervalUtility`.

Several objectives at once: :func:`pareto_front`, :func:`hypervolume` (exact, by slicing) and
:func:`hypervolume_improvement` (vectorised, 2 or 3 objectives). Constraints on other
properties (:class:`Constraint`, ``"density < 5"``) become a probability of feasibility under the
Gaussian prediction.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from matforge.errors import DesignSpaceError

__all__ = [
    "Constraint",
    "GaussianUtility",
    "IntervalUtility",
    "Maximize",
    "Minimize",
    "Objective",
    "Range",
    "Target",
    "UtilityDistribution",
    "hypervolume",
    "hypervolume_improvement",
    "objective_from_dict",
    "parse_constraint",
    "parse_objective",
    "pareto_front",
    "pareto_mask",
]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _Phi(z):
    from scipy.special import ndtr

    return ndtr(z)


def _phi(z):
    return _INV_SQRT_2PI * np.exp(-0.5 * np.square(z))


def _G(z):
    """∫_{−∞}^{z} Φ(s) ds = zΦ(z) + φ(z)."""
    return z * _Phi(z) + _phi(z)


def _moments(mean, std) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    mean, std = np.broadcast_arrays(mean, std)
    if (std < 0).any():
        raise DesignSpaceError("predictive standard deviations must be non-negative")
    return mean.astype(float), std.astype(float)


# -----------------------------------------------------------------------------------------------
# Utility distributions
# -----------------------------------------------------------------------------------------------


class UtilityDistribution:
    """Predictive distribution of the utility (higher is better) of ``n`` candidates.

    Subclasses give ``mean``, ``std`` and :meth:`sample_from_normal`; the expected improvement
    and probability of improvement default to Monte Carlo and are overridden by closed forms.
    """

    mean: np.ndarray
    std: np.ndarray

    def __len__(self) -> int:
        return len(self.mean)

    def subset(self, index) -> UtilityDistribution:
        """The distribution of the candidates selected by ``index`` (slice, mask or indices)."""
        raise NotImplementedError

    def sample_from_normal(self, z: np.ndarray) -> np.ndarray:
        """Utilities for standard-normal draws ``z`` of shape (S, n) or (S, 1) → (S, n).

        Sharing ``z`` across calls (common random numbers) keeps Monte-Carlo scores comparable.
        """
        raise NotImplementedError

    def sample(self, n_samples: int, rng=None) -> np.ndarray:
        """(n_samples, n) independent draws; candidates are independent of each other."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return self.sample_from_normal(rng.standard_normal((n_samples, len(self))))

    def expected_improvement(self, best: float) -> np.ndarray:
        """E[max(U − best, 0)] (Monte Carlo, 4096 fixed draws, unless overridden)."""
        z = np.random.default_rng(0).standard_normal((4096, 1))
        return np.maximum(self.sample_from_normal(z) - best, 0.0).mean(axis=0)

    def probability_of_improvement(self, best: float) -> np.ndarray:
        """P(U > best) (Monte Carlo unless overridden)."""
        z = np.random.default_rng(0).standard_normal((4096, 1))
        return (self.sample_from_normal(z) > best).mean(axis=0)


class GaussianUtility(UtilityDistribution):
    """Utility ``U ~ N(mean, std²)`` (maximised or minimised properties)."""

    def __init__(self, mean, std):
        self.mean, self.std = _moments(mean, std)
        self.mean, self.std = np.atleast_1d(self.mean), np.atleast_1d(self.std)

    def subset(self, index) -> GaussianUtility:
        return GaussianUtility(self.mean[index], self.std[index])

    def sample_from_normal(self, z):
        return self.mean + self.std * np.asarray(z)

    def expected_improvement(self, best: float) -> np.ndarray:
        """``(μ − best)Φ(z) + σφ(z)`` with ``z = (μ − best)/σ``; ``max(μ − best, 0)`` at σ = 0."""
        imp = self.mean - best
        with np.errstate(divide="ignore", invalid="ignore"):
            z = imp / self.std
            ei = imp * _Phi(z) + self.std * _phi(z)
        return np.where(self.std > 0, np.maximum(ei, 0.0), np.maximum(imp, 0.0))

    def probability_of_improvement(self, best: float) -> np.ndarray:
        """``Φ((μ − best)/σ)``; at σ = 0, 1 where μ > best else 0."""
        imp = self.mean - best
        with np.errstate(divide="ignore", invalid="ignore"):
            pi = _Phi(imp / self.std)
        return np.where(self.std > 0, pi, (imp > 0).astype(float))


class IntervalUtility(UtilityDistribution):
    """Utility ``U = −dist(Y, [low, high])`` with ``Y ~ N(mean, std²)`` (targets and ranges).

    Closed forms, with ``z_l = (low − μ)/σ``, ``z_h = (high − μ)/σ``, ``G(z) = zΦ(z) + φ(z)``
    and ``c = −best ≥ 0`` (the best distance so far):

    * ``P(dist < c) = Φ(z_h + c/σ) − Φ(z_l − c/σ)``;
    * ``EI = ∫_0^c P(dist < r) dr = σ[G(z_h + c/σ) − G(z_h) − G(z_l) + G(z_l − c/σ)]``
      (for ``low = high`` this is the expected improvement of a folded normal);
    * ``E[dist] = σ[G(z_l) + G(−z_h)]`` and ``E[dist²]`` from the truncated second moments.

    Once a candidate inside the interval has been observed (``best = 0``) nothing can improve
    on it; the probability of improvement then returns ``P(low ≤ Y ≤ high)``, the probability
    of meeting the target again, which is what Citrine's MLI ranks by.
    """

    def __init__(self, mean, std, low: float, high: float):
        mean, std = _moments(mean, std)
        self.mu, self.sigma = np.atleast_1d(mean), np.atleast_1d(std)
        self.low, self.high = float(low), float(high)
        self.mean, self.std = self._utility_moments()

    def _utility_moments(self):
        mu, s = self.mu, self.sigma
        d_det = np.maximum(self.low - mu, 0) + np.maximum(mu - self.high, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b = self.low - mu, mu - self.high  # (low − Y)_+ and (Y − high)_+ have means a, b
            m1 = s * (_G(a / s) + _G(b / s))
            m2 = ((a**2 + s**2) * _Phi(a / s) + a * s * _phi(a / s)
                  + (b**2 + s**2) * _Phi(b / s) + b * s * _phi(b / s))
        var = np.maximum(m2 - m1**2, 0.0)
        pos = s > 0
        return np.where(pos, -m1, -d_det), np.where(pos, np.sqrt(var), 0.0)

    def subset(self, index) -> IntervalUtility:
        return IntervalUtility(self.mu[index], self.sigma[index], self.low, self.high)

    def distance(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        return np.maximum(self.low - y, 0.0) + np.maximum(y - self.high, 0.0)

    def sample_from_normal(self, z):
        return -self.distance(self.mu + self.sigma * np.asarray(z))

    def expected_improvement(self, best: float) -> np.ndarray:
        c = -float(best)
        if c <= 0:
            return np.zeros_like(self.mu)
        mu, s = self.mu, self.sigma
        with np.errstate(divide="ignore", invalid="ignore"):
            zh, zl, k = (self.high - mu) / s, (self.low - mu) / s, c / s
            ei = s * (_G(zh + k) - _G(zh) - _G(zl) + _G(zl - k))
        det = np.maximum(c - self.distance(mu), 0.0)
        return np.where(s > 0, np.maximum(ei, 0.0), det)

    def probability_of_improvement(self, best: float) -> np.ndarray:
        c = -float(best)
        if c < 0:
            return np.zeros_like(self.mu)
        mu, s = self.mu, self.sigma
        with np.errstate(divide="ignore", invalid="ignore"):
            p = _Phi((self.high + c - mu) / s) - _Phi((self.low - c - mu) / s)
        d = self.distance(mu)
        det = (d < c) if c > 0 else (d == 0)
        return np.where(s > 0, np.clip(p, 0.0, 1.0), det.astype(float))


# -----------------------------------------------------------------------------------------------
# Objectives
# -----------------------------------------------------------------------------------------------


def _check_objective_name(name) -> None:
    if not isinstance(name, str) or not name.strip():
        raise DesignSpaceError(f"objective name must be a non-empty string, got {name!r}")


def _num(x, what: str) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise DesignSpaceError(f"{what} must be a number, got {x!r}") from None
    if not math.isfinite(x):
        raise DesignSpaceError(f"{what} must be finite, got {x!r}")
    return x


@dataclass(frozen=True)
class Objective:
    """Base class: a property ``name`` and how its values rank."""

    name: str
    kind: ClassVar[str] = ""

    def __post_init__(self):
        _check_objective_name(self.name)

    def utility(self, y) -> np.ndarray:
        """Utility (higher is better) of property values ``y``."""
        raise NotImplementedError

    def utility_distribution(self, mean, std) -> UtilityDistribution:
        """Distribution of the utility when the property is predicted as ``N(mean, std²)``."""
        raise NotImplementedError

    def best_utility(self, y) -> float | None:
        """Best utility among observed values ``y`` (NaN ignored); None if there are none."""
        u = self.utility(np.asarray(y, dtype=float).reshape(-1))
        u = u[~np.isnan(u)]
        return float(u.max()) if len(u) else None

    def as_dict(self) -> dict:
        return {"@class": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class Maximize(Objective):
    """Higher property values are better."""

    kind: ClassVar[str] = "max"

    def utility(self, y):
        return np.asarray(y, dtype=float)

    def utility_distribution(self, mean, std):
        return GaussianUtility(mean, std)

    def __str__(self) -> str:
        return f"{self.name} max"


@dataclass(frozen=True)
class Minimize(Objective):
    """Lower property values are better (utility ``−y``)."""

    kind: ClassVar[str] = "min"

    def utility(self, y):
        return -np.asarray(y, dtype=float)

    def utility_distribution(self, mean, std):
        mean, std = _moments(mean, std)
        return GaussianUtility(-mean, std)

    def __str__(self) -> str:
        return f"{self.name} min"


@dataclass(frozen=True)
class Target(Objective):
    """Property as close as possible to ``value``; within ``tolerance`` counts as on target."""

    value: float = 0.0
    tolerance: float | None = None
    kind: ClassVar[str] = "target"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "value", _num(self.value, f"target of {self.name!r}"))
        if self.tolerance is not None:
            tol = _num(self.tolerance, f"tolerance of {self.name!r}")
            if tol < 0:
                raise DesignSpaceError(f"tolerance of {self.name!r} must be ≥ 0, got {tol}")
            object.__setattr__(self, "tolerance", tol)

    @property
    def interval(self) -> tuple[float, float]:
        tol = self.tolerance or 0.0
        return self.value - tol, self.value + tol

    def utility(self, y):
        tol = self.tolerance or 0.0
        return -np.maximum(np.abs(np.asarray(y, dtype=float) - self.value) - tol, 0.0)

    def utility_distribution(self, mean, std):
        return IntervalUtility(mean, std, *self.interval)

    def satisfied(self, y) -> np.ndarray:
        """Whether values are on target (within the tolerance, or within 1e-9 without one)."""
        tol = max(self.tolerance or 0.0, 1e-9)
        return np.abs(np.asarray(y, dtype=float) - self.value) <= tol

    def __str__(self) -> str:
        tol = f" ± {self.tolerance!r}" if self.tolerance else ""
        return f"{self.name} = {self.value!r}{tol}"


@dataclass(frozen=True)
class Range(Objective):
    """Property anywhere in ``[low, high]``; outside, the closer the better."""

    low: float = 0.0
    high: float = 0.0
    kind: ClassVar[str] = "range"

    def __post_init__(self):
        super().__post_init__()
        low = _num(self.low, f"low end of {self.name!r}")
        high = _num(self.high, f"high end of {self.name!r}")
        if low > high:
            raise DesignSpaceError(f"range of {self.name!r}: low {low} > high {high}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def utility(self, y):
        y = np.asarray(y, dtype=float)
        return -(np.maximum(self.low - y, 0.0) + np.maximum(y - self.high, 0.0))

    def utility_distribution(self, mean, std):
        return IntervalUtility(mean, std, self.low, self.high)

    def satisfied(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        return (y >= self.low) & (y <= self.high)

    def __str__(self) -> str:
        return f"{self.name} in [{self.low!r}, {self.high!r}]"


_OBJECTIVES = {c.__name__: c for c in (Maximize, Minimize, Target, Range)}


def objective_from_dict(d: Mapping) -> Objective:
    """Rebuild an objective from :meth:`Objective.as_dict` output."""
    d = dict(d)
    cls = _OBJECTIVES.get(d.pop("@class", None))
    if cls is None:
        raise DesignSpaceError(f"not a serialised objective: {d!r}")
    return cls(**d)


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NAME = r"(?P<name>[^=<>≤≥±\[\]]+?)"
_SEP = r"(?:\s*:\s*|\s+)"
_SENSES = {"max": Maximize, "maximize": Maximize, "maximise": Maximize, "maximum": Maximize,
           "min": Minimize, "minimize": Minimize, "minimise": Minimize, "minimum": Minimize}
_SENSE = r"(?P<sense>max(?:imi[sz]e|imum)?|min(?:imi[sz]e|imum)?)"
_PATTERNS = [
    ("sense", re.compile(rf"^{_NAME}{_SEP}{_SENSE}$", re.I)),
    ("sense", re.compile(rf"^{_SENSE}{_SEP}{_NAME}$", re.I)),
    ("target", re.compile(
        rf"^{_NAME}\s*:?\s*(?:==?|≈|~)\s*(?P<value>{_NUM})"
        rf"(?:\s*(?:±|\+/-|\+-)\s*(?P<tol>{_NUM}))?$", re.I)),
    ("range", re.compile(
        rf"^{_NAME}(?:\s*:\s*|\s+in\s*|\s*:\s*in\s*|\s+)[\[(]\s*(?P<low>{_NUM})\s*[,;]\s*"
        rf"(?P<high>{_NUM})\s*[\])]$", re.I)),
    ("range", re.compile(
        rf"^{_NAME}\s+between\s+(?P<low>{_NUM})\s+and\s+(?P<high>{_NUM})$", re.I)),
    ("range", re.compile(
        rf"^(?P<low>{_NUM})\s*(?:<=?|≤)\s*{_NAME}\s*(?:<=?|≤)\s*(?P<high>{_NUM})$", re.I)),
]


def _clean_name(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"`":
        name = name[1:-1].strip()
    return name


def parse_objective(spec: str | Objective) -> Objective:
    """Parse an objective written as text.

    Accepted forms (keywords case-insensitive, ``:`` or a space before the keyword)::

        "yield_strength max"    "octane:max"    "maximize octane"     -> Maximize
        "density min"           "cost:minimise"                       -> Minimize
        "gap =1.3"              "gap = 1.3 ± 0.05"    "gap=1.3+-0.05" -> Target
        "gap in [1.2,1.4]"      "gap:[1.2, 1.4]"      "1.2 <= gap <= 1.4"
        "gap between 1.2 and 1.4"                                     -> Range

    ``str(objective)`` gives back a string this function parses to an equal objective.
    """
    if isinstance(spec, Objective):
        return spec
    if not isinstance(spec, str):
        raise DesignSpaceError(f"an objective must be a string, got {type(spec).__name__}")
    text = spec.strip()
    for kind, pattern in _PATTERNS:
        m = pattern.match(text)
        if not m:
            continue
        name = _clean_name(m["name"])
        if not name or name.lower() in _SENSES:
            continue
        if kind == "sense":
            return _SENSES[m["sense"].lower()](name)
        if kind == "target":
            tol = float(m["tol"]) if m["tol"] is not None else None
            return Target(name, float(m["value"]), tol)
        low, high = float(m["low"]), float(m["high"])
        if low > high:
            raise DesignSpaceError(f"objective {spec!r}: the range's low end {low} > high {high}")
        return Range(name, low, high)
    raise DesignSpaceError(
        f"cannot parse objective {spec!r}; write e.g. 'yield_strength max', 'cost min', "
        f"'gap = 1.3', 'gap = 1.3 ± 0.1' or 'gap in [1.2, 1.4]'"
    )


# -----------------------------------------------------------------------------------------------
# Constraints on other properties
# -----------------------------------------------------------------------------------------------

_OPS = {"<": "<", "<=": "<=", "≤": "<=", "=<": "<=", ">": ">", ">=": ">=", "≥": ">=", "=>": ">="}


@dataclass(frozen=True)
class Constraint:
    """A bound on a predicted property, e.g. ``Constraint("density", "<", 5.0)`` (g/cm³).

    Under a Gaussian prediction ``N(μ, σ²)`` the probability of feasibility is
    ``Φ((value − μ)/σ)`` for ``<``/``<=`` and ``1 − Φ((value − μ)/σ)`` for ``>``/``>=``.
    """

    name: str
    op: str
    value: float

    def __post_init__(self):
        _check_objective_name(self.name)
        op = _OPS.get(str(self.op).strip())
        if op is None:
            raise DesignSpaceError(
                f"constraint on {self.name!r}: unknown comparison {self.op!r} (use <, <=, >, >=)"
            )
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "value", _num(self.value, f"bound of {self.name!r}"))

    @property
    def upper(self) -> bool:
        return self.op in ("<", "<=")

    def satisfied(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        return {"<": y < self.value, "<=": y <= self.value,
                ">": y > self.value, ">=": y >= self.value}[self.op]

    def probability(self, mean, std) -> np.ndarray:
        """Probability that the property satisfies the constraint under ``N(mean, std²)``."""
        mean, std = _moments(mean, std)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_below = _Phi((self.value - mean) / std)
        p = p_below if self.upper else 1.0 - p_below
        return np.where(std > 0, p, self.satisfied(mean).astype(float))

    def as_dict(self) -> dict:
        return {"@class": "Constraint", "name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_dict(cls, d: Mapping) -> Constraint:
        return cls(d["name"], d["op"], d["value"])

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.value!r}"


_CONSTRAINT = re.compile(rf"^{_NAME}\s*(?P<op><=|>=|=<|=>|<|>|≤|≥)\s*(?P<value>{_NUM})$")


def parse_constraint(spec: str | Constraint) -> Constraint:
    """Parse ``"density < 5.0"``, ``"cost<=12"``, ``"hardness ≥ 20"`` into a :class:`Constraint`."""
    if isinstance(spec, Constraint):
        return spec
    m = _CONSTRAINT.match(str(spec).strip())
    if not m or not _clean_name(m["name"]):
        raise DesignSpaceError(
            f"cannot parse constraint {spec!r}; write e.g. 'density < 5.0' or 'hardness >= 20'"
        )
    return Constraint(_clean_name(m["name"]), m["op"], float(m["value"]))


# -----------------------------------------------------------------------------------------------
# Several objectives: Pareto front and hypervolume
# -----------------------------------------------------------------------------------------------


def _signs(senses, m: int) -> np.ndarray:
    if senses is None:
        return np.ones(m)
    if isinstance(senses, str):
        senses = [senses] * m
    if len(senses) != m:
        raise DesignSpaceError(f"{len(senses)} senses given for {m} objectives")
    out = []
    for s in senses:
        if isinstance(s, Objective):
            s = s.kind
        s = {"max": 1, "maximize": 1, "min": -1, "minimize": -1, 1: 1, -1: -1}.get(
            s.lower() if isinstance(s, str) else s)
        if s is None:
            raise DesignSpaceError(f"sense must be 'max' or 'min', got {senses!r}")
        out.append(s)
    return np.array(out, dtype=float)


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Bool mask of the non-dominated rows of ``values`` (n, d), every objective maximised.

    The one Pareto-front rule of matforge (screens rank with it; :func:`pareto_front` flips minimised
    objectives and calls it). Row ``q`` dominates ``p`` when it is >= in every
    objective and > in one; equal rows do not dominate each other, so both stay on the front.
    Rows with NaN are never on the front. O(n log n) for two objectives.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n = len(values)
    mask = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(~np.isnan(values).any(axis=1))
    if not len(idx):
        return mask
    v = values[idx]
    # lexicographically descending: a row can only be dominated by rows before it
    order = np.lexsort(tuple(-v[:, j] for j in range(v.shape[1] - 1, -1, -1)))
    v = v[order]
    if v.shape[1] == 1:
        keep = np.flatnonzero(v[:, 0] == v[0, 0])
    elif v.shape[1] == 2:
        # a row is on the front when its second objective beats every earlier row's that is
        # not equal to it (equal rows are adjacent in this order: compare with the rows before
        # its run of equals)
        same = np.r_[False, (v[1:] == v[:-1]).all(axis=1)]
        run_start = np.maximum.accumulate(np.where(same, 0, np.arange(len(v))))
        best_before = np.r_[-np.inf, np.maximum.accumulate(v[:, 1])]  # best_before[k] = max(v[:k, 1])
        keep = np.flatnonzero((run_start == 0) | (v[:, 1] > best_before[run_start]))
    else:
        front_rows: list[int] = []
        for i in range(len(v)):
            if front_rows:
                f = v[front_rows]
                dominated = ((f >= v[i]).all(axis=1) & (f > v[i]).any(axis=1)).any()
                if dominated:
                    continue
            front_rows.append(i)
        keep = np.array(front_rows, dtype=np.int64)
    mask[idx[order[keep]]] = True
    return mask


def pareto_front(Y, senses: Sequence | str | None = None) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``Y`` (n × m).

    ``senses`` gives "max" or "min" per column (default: all "max"). A row is dominated when
    another is at least as good in every column and better in one; equal rows both stay on the
    front. Rows with NaN are never on the front (:func:`pareto_mask` after flipping minimised
    columns).
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    return pareto_mask(Y * _signs(senses, Y.shape[1]))


def _hv_max(P: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume dominated by ``P`` above ``ref`` (maximisation), by slicing."""
    P = P[(P > ref).all(axis=1)]
    if not len(P):
        return 0.0
    m = P.shape[1]
    if m == 1:
        return float(P[:, 0].max() - ref[0])
    if m == 2:
        order = np.argsort(-P[:, 0], kind="stable")
        x, y = P[order, 0], np.maximum.accumulate(P[order, 1])
        widths = x - np.r_[x[1:], ref[0]]
        return float(np.sum(widths * (y - ref[1])))
    order = np.argsort(-P[:, -1], kind="stable")
    P = P[order]
    z = np.r_[P[:, -1], ref[-1]]
    total = 0.0
    for k in range(len(P)):
        dz = z[k] - z[k + 1]
        if dz > 0:
            total += dz * _hv_max(P[: k + 1, :-1], ref[:-1])
    return total


def hypervolume(Y, ref, senses: Sequence | str | None = None) -> float:
    """Hypervolume of the region dominated by the rows of ``Y`` and bounded by ``ref``.

    ``senses`` as in :func:`pareto_front` (default all "max"); ``ref`` is in the same units as
    ``Y`` and should be worse than every point of interest (points not strictly better than
    ``ref`` in every objective add nothing). Exact for any number of objectives by recursive
    slicing (cost grows as n^(m−1): meant for m ≤ 3 or small fronts).
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[None, :]
    ref = np.asarray(ref, dtype=float).reshape(-1)
    if Y.shape[1] != len(ref):
        raise DesignSpaceError(f"reference point has {len(ref)} values for {Y.shape[1]} objectives")
    sign = _signs(senses, len(ref))
    Y, ref = Y * sign, ref * sign
    Y = Y[~np.isnan(Y).any(axis=1)]
    if not len(Y):
        return 0.0
    return _hv_max(Y[pareto_front(Y)], ref)


def hypervolume_improvement(U, front, ref) -> np.ndarray:
    """Hypervolume gained by adding each point of ``U`` (…, m) to ``front`` (F, m).

    Maximisation, 2 or 3 objectives, vectorised over the leading axes of ``U`` (e.g. Monte-Carlo
    samples × candidates). Uses ``HVI(u) = vol[ref, u] − HV({min(f, u) : f ∈ front})``: the
    clipped front keeps the front's orderings, so its hypervolume is a fixed sum of slices.
    """
    U = np.asarray(U, dtype=float)
    ref = np.asarray(ref, dtype=float).reshape(-1)
    m = len(ref)
    if m not in (2, 3) or U.shape[-1] != m:
        raise DesignSpaceError(f"hypervolume_improvement needs 2 or 3 objectives, got {U.shape[-1]}")
    box = np.prod(np.maximum(U - ref, 0.0), axis=-1)
    F = np.zeros((0, m)) if front is None else np.asarray(front, dtype=float).reshape(-1, m)
    F = F[~np.isnan(F).any(axis=1)]
    F = F[(F > ref).all(axis=1)]
    if not len(F):
        return box
    F = np.unique(F[pareto_front(F)], axis=0)
    C = np.maximum(np.minimum(F, U[..., None, :]), ref)  # (..., F, m)
    if m == 2:
        order = np.argsort(-F[:, 0], kind="stable")
        x, y = C[..., order, 0], np.maximum.accumulate(C[..., order, 1], axis=-1)
        widths = x - np.concatenate([x[..., 1:], np.full(x.shape[:-1] + (1,), ref[0])], axis=-1)
        return box - np.sum(widths * (y - ref[1]), axis=-1)
    zorder = np.argsort(-F[:, 2], kind="stable")
    z = C[..., zorder, 2]
    z = np.concatenate([z, np.full(z.shape[:-1] + (1,), ref[2])], axis=-1)
    hv = np.zeros(U.shape[:-1])
    for k in range(len(F)):
        prefix = zorder[: k + 1]
        xorder = prefix[np.argsort(-F[prefix, 0], kind="stable")]
        x = C[..., xorder, 0]
        y = np.maximum.accumulate(C[..., xorder, 1], axis=-1)
        widths = x - np.concatenate([x[..., 1:], np.full(x.shape[:-1] + (1,), ref[0])], axis=-1)
        area = np.sum(widths * (y - ref[1]), axis=-1)
        hv += (z[..., k] - z[..., k + 1]) * area
    return box - hv
