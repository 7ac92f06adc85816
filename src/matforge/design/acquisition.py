"""Acquisition functions: how promising each candidate is, given its predicted utility.

Each acquisition is a small object. ``acq(mean, std, best)`` scores candidates whose utility
(higher is better; see :mod:`matforge.design.objectives`) is predicted as ``N(mean, std²)``,
vectorised over candidates, with ``best`` the best utility observed so far; higher scores are
better. ``acq.score(dist, best)`` does the same for any
:class:`~matforge.design.objectives.UtilityDistribution`, e.g. the distance-to-target utility of
a :class:`~matforge.design.objectives.Target` objective::

    dist = Target("gap", 1.3).utility_distribution(mean, std)   # eV
    scores = ExpectedImprovement().score(dist, best=Target("gap", 1.3).best_utility(y_seen))

Multi-objective acquisitions (:class:`ExpectedHypervolumeImprovement`, :class:`ParEGO`) take
(n, m) ``mean``/``std`` (or a list of m distributions) and, as ``best``, the (n_obs, m) utilities
observed so far. Objectives are treated as independent given the candidate.

Single-objective: :class:`ExpectedImprovement`, :class:`ProbabilityOfImprovement`,
:class:`UpperConfidenceBound`, :class:`MaximumLikelihoodOfImprovement`,
:class:`MaximumUncertainty`, :class:`ThompsonSampling`, :class:`RandomAcquisition`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np

from matforge.design.objectives import (
    GaussianUtility,
    IntervalUtility,
    UtilityDistribution,
    hypervolume_improvement,
    pareto_front,
)
from matforge.errors import DesignSpaceError

__all__ = [
    "ACQUISITIONS",
    "Acquisition",
    "ExpectedHypervolumeImprovement",
    "ExpectedImprovement",
    "MaximumLikelihoodOfImprovement",
    "MaximumUncertainty",
    "ParEGO",
    "ProbabilityOfImprovement",
    "RandomAcquisition",
    "ThompsonSampling",
    "UpperConfidenceBound",
    "make_acquisition",
    "per_unit_cost",
    "weight_by_feasibility",
]


def _generator(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


@dataclass
class Acquisition:
    """Base class. Subclasses implement :meth:`score`."""

    name: ClassVar[str] = ""
    multi_objective: ClassVar[bool] = False
    needs_best: ClassVar[bool] = True

    def __call__(self, mean, std, best=None) -> np.ndarray:
        """Scores for utilities predicted as ``N(mean, std²)`` (arrays of n, or n × m)."""
        mean = np.asarray(mean, dtype=float)
        std = np.asarray(std, dtype=float)
        if self.multi_objective:
            if mean.ndim != 2 or mean.shape != std.shape:
                raise DesignSpaceError(
                    f"{type(self).__name__} needs (n, m) mean and std, got {mean.shape}, {std.shape}"
                )
            return self.score([GaussianUtility(mean[:, j], std[:, j])
                               for j in range(mean.shape[1])], best)
        return self.score(GaussianUtility(mean, std), best)

    def score(self, dist, best=None) -> np.ndarray:
        """Scores for a :class:`UtilityDistribution` (a list of them if multi-objective)."""
        raise NotImplementedError

    def _best(self, best) -> float:
        if best is None:
            raise DesignSpaceError(
                f"{type(self).__name__} needs the best utility observed so far (best=...); "
                f"with no observations yet, use UpperConfidenceBound, MaximumUncertainty or "
                f"RandomAcquisition"
            )
        return float(best)

    def as_dict(self) -> dict:
        """Name and parameters (a Generator passed as ``rng`` is not serialised)."""
        params = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "rng" and not (v is None or isinstance(v, int)):
                v = None
            if isinstance(v, np.ndarray):
                v = v.tolist()
            params[f.name] = v
        return {"name": self.name, **params}


@dataclass
class ExpectedImprovement(Acquisition):
    """Expected improvement ``E[max(U − best − xi, 0)]``.

    For a Gaussian utility: ``(μ − best − ξ)Φ(z) + σφ(z)``, ``z = (μ − best − ξ)/σ``; at
    ``μ = best``, ``σ = 1``, ``ξ = 0`` it is ``φ(0) = 0.39894``. ``xi`` (utility units) trades
    exploitation for exploration.

    For a target or range (:class:`~matforge.design.objectives.IntervalUtility`) nothing
    improves on a measurement already on target: EI is then zero everywhere and would leave the
    choice to the order of the candidates. From there on it ranks by the probability of landing
    on target again (as MLI does), so a campaign that has one hit looks for more.
    """

    xi: float = 0.0
    name: ClassVar[str] = "ei"

    def score(self, dist, best=None):
        best = self._best(best) + self.xi
        if isinstance(dist, IntervalUtility) and best >= 0:
            return dist.probability_of_improvement(0.0)
        return dist.expected_improvement(best)


@dataclass
class ProbabilityOfImprovement(Acquisition):
    """Probability of improvement ``P(U > best + xi)`` (``Φ((μ − best − ξ)/σ)`` if Gaussian)."""

    xi: float = 0.0
    name: ClassVar[str] = "pi"

    def score(self, dist, best=None):
        return dist.probability_of_improvement(self._best(best) + self.xi)


@dataclass
class MaximumLikelihoodOfImprovement(Acquisition):
    """Citrine's MLI: the probability that the candidate beats the best so far (PI with ξ = 0).

    Meant for target and range objectives: there the utility is minus the distance to the
    target, so MLI ranks by the probability of landing closer to it than every experiment so
    far — or, once a measurement is on target, of landing on target
    (:class:`~matforge.design.objectives.IntervalUtility`).
    """

    name: ClassVar[str] = "mli"

    def score(self, dist, best=None):
        return dist.probability_of_improvement(self._best(best))


@dataclass
class UpperConfidenceBound(Acquisition):
    """``mean + beta · std`` of the utility (``beta`` multiplies σ directly, not √β)."""

    beta: float = 2.0
    name: ClassVar[str] = "ucb"
    needs_best: ClassVar[bool] = False

    def score(self, dist, best=None):
        return dist.mean + self.beta * dist.std


@dataclass
class MaximumUncertainty(Acquisition):
    """The utility's predictive standard deviation (pure exploration)."""

    name: ClassVar[str] = "mu"
    needs_best: ClassVar[bool] = False

    def score(self, dist, best=None):
        return np.array(dist.std, dtype=float)


@dataclass
class ThompsonSampling(Acquisition):
    """One draw of each candidate's utility from its predictive distribution.

    Candidates are drawn independently of each other (the surrogate's marginal distributions,
    not a joint posterior function sample), so this is Thompson sampling on a pool with
    independent arms. Each call draws afresh.
    """

    rng: int | np.random.Generator | None = field(default=None, repr=False)
    name: ClassVar[str] = "ts"
    needs_best: ClassVar[bool] = False

    def __post_init__(self):
        self._gen = _generator(self.rng)

    def score(self, dist, best=None):
        return dist.sample(1, self._gen)[0]


@dataclass
class RandomAcquisition(Acquisition):
    """Uniform random scores: the baseline every strategy should beat."""

    rng: int | np.random.Generator | None = field(default=None, repr=False)
    name: ClassVar[str] = "random"
    needs_best: ClassVar[bool] = False

    def __post_init__(self):
        self._gen = _generator(self.rng)

    def score(self, dist, best=None):
        n = len(dist[0]) if isinstance(dist, Sequence) else len(dist)
        return self._gen.random(n)


def _front_matrix(best, m: int) -> np.ndarray:
    if best is None:
        return np.zeros((0, m))
    B = np.asarray(best, dtype=float)
    if B.ndim == 1 and B.size == m:
        B = B[None, :]
    if B.ndim != 2 or B.shape[1] != m:
        raise DesignSpaceError(
            f"best must be the (n_observed, {m}) utilities observed so far, got shape {B.shape}"
        )
    return B[~np.isnan(B).any(axis=1)]


def _check_dists(dists, lo: int, hi: int, who: str) -> list[UtilityDistribution]:
    if isinstance(dists, UtilityDistribution) or not isinstance(dists, Sequence):
        raise DesignSpaceError(f"{who} needs one utility distribution per objective")
    if not lo <= len(dists) <= hi:
        raise DesignSpaceError(f"{who} supports {lo}–{hi} objectives, got {len(dists)}")
    return list(dists)


@dataclass
class ExpectedHypervolumeImprovement(Acquisition):
    """Expected hypervolume improvement over the observed Pareto front (2 or 3 objectives).

    Monte Carlo over independent predictive distributions: ``n_samples`` common standard-normal
    draws per objective are shared by every candidate (common random numbers keep the ranking
    smooth; ``rng`` fixes them). ``ref_point`` is in utility space (note: a minimised property
    has utility −y); by default it is the worst observed utility minus 10 % of the observed
    range per objective (or the worst ``mean − 3 std`` before any observation).
    """

    ref_point: Sequence[float] | None = None
    n_samples: int = 128
    rng: int | np.random.Generator | None = field(default=0, repr=False)
    name: ClassVar[str] = "ehvi"
    multi_objective: ClassVar[bool] = True
    needs_best: ClassVar[bool] = False

    def __post_init__(self):
        self._gen = _generator(self.rng)
        self._seed = self.rng if isinstance(self.rng, int) else None

    def reference(self, dists, front: np.ndarray) -> np.ndarray:
        if self.ref_point is not None:
            return np.asarray(self.ref_point, dtype=float)
        if len(front):
            lo, hi = front.min(axis=0), front.max(axis=0)
            span = np.where(hi > lo, hi - lo, np.maximum(np.abs(lo), 1.0))
            return lo - 0.1 * span
        return np.array([np.min(d.mean - 3 * d.std) for d in dists])

    def score(self, dist, best=None):
        dists = _check_dists(dist, 2, 3, "ExpectedHypervolumeImprovement")
        m = len(dists)
        front = _front_matrix(best, m)
        ref = self.reference(dists, front)
        gen = np.random.default_rng(self._seed) if self._seed is not None else self._gen
        z = gen.standard_normal((self.n_samples, m))
        front = front[pareto_front(front)] if len(front) else front
        n = len(dists[0])
        out = np.empty(n)
        chunk = max(1, 4_000_000 // (self.n_samples * max(len(front), 1) * m))
        for start in range(0, n, chunk):
            sl = slice(start, start + chunk)
            U = np.stack([d.subset(sl).sample_from_normal(z[:, [j]]) for j, d in enumerate(dists)],
                         axis=-1)  # (S, c, m)
            out[sl] = hypervolume_improvement(U, front, ref).mean(axis=0)
        return out


@dataclass
class ParEGO(Acquisition):
    """ParEGO (Knowles 2006) as in BoTorch's qParEGO: expected improvement of a random
    augmented Chebyshev scalarisation.

    Each call draws weights ``λ`` uniformly on the simplex (kept in ``weights_``), normalises
    every utility to [0, 1] by the observed range, scalarises with
    ``s(u) = min_j λ_j ũ_j + rho Σ_j λ_j ũ_j`` and returns the Monte-Carlo expected improvement
    of ``s`` over the best observed scalarised value (``n_samples`` independent Gaussian draws
    per objective, shared by all candidates). Fresh weights at each batch step diversify a batch.
    """

    rho: float = 0.05
    n_samples: int = 256
    rng: int | np.random.Generator | None = field(default=None, repr=False)
    name: ClassVar[str] = "parego"
    multi_objective: ClassVar[bool] = True

    def __post_init__(self):
        self._gen = _generator(self.rng)
        self.weights_: np.ndarray | None = None

    def score(self, dist, best=None):
        dists = _check_dists(dist, 2, 64, "ParEGO")
        m = len(dists)
        front = _front_matrix(best, m)
        if not len(front):
            raise DesignSpaceError("ParEGO needs the utilities observed so far (best=...)")
        lo, hi = front.min(axis=0), front.max(axis=0)
        scale = np.where(hi > lo, hi - lo, 1.0)
        lam = self._gen.dirichlet(np.ones(m))
        self.weights_ = lam

        def scalarise(U):
            W = lam * (U - lo) / scale
            return W.min(axis=-1) + self.rho * W.sum(axis=-1)

        best_s = scalarise(front).max()
        z = self._gen.standard_normal((self.n_samples, m))
        n = len(dists[0])
        out = np.empty(n)
        chunk = max(1, 4_000_000 // (self.n_samples * m))
        for start in range(0, n, chunk):
            sl = slice(start, start + chunk)
            U = np.stack([d.subset(sl).sample_from_normal(z[:, [j]]) for j, d in enumerate(dists)],
                         axis=-1)
            out[sl] = np.maximum(scalarise(U) - best_s, 0.0).mean(axis=0)
        return out


ACQUISITIONS: dict[str, type[Acquisition]] = {
    cls.name: cls
    for cls in (ExpectedImprovement, ProbabilityOfImprovement, UpperConfidenceBound,
                MaximumLikelihoodOfImprovement, MaximumUncertainty, ThompsonSampling,
                RandomAcquisition, ExpectedHypervolumeImprovement, ParEGO)
}


def make_acquisition(spec: str | dict | Acquisition, **params) -> Acquisition:
    """An acquisition from its short name (``"ei"``, ``"pi"``, ``"ucb"``, ``"mli"``, ``"mu"``,
    ``"ts"``, ``"random"``, ``"ehvi"``, ``"parego"``) and parameters, or from ``as_dict()``."""
    if isinstance(spec, Acquisition):
        return spec
    if isinstance(spec, dict):
        params = {**{k: v for k, v in spec.items() if k != "name"}, **params}
        spec = spec.get("name")
    cls = ACQUISITIONS.get(str(spec).lower())
    if cls is None:
        raise DesignSpaceError(f"unknown acquisition {spec!r}; known: {sorted(ACQUISITIONS)}")
    return cls(**params)


def weight_by_feasibility(scores, probability) -> np.ndarray:
    """Scores of a constrained problem: ``scores × P(feasible)``.

    Exact for non-negative acquisitions (EI, PI, MLI, EHVI, …: the constrained EI of Gardner et
    al. 2014). Signed scores (UCB, Thompson samples) are first shifted so that the pool's lowest
    score is 0, which keeps the ordering of equally-feasible candidates.
    """
    scores = np.asarray(scores, dtype=float)
    finite = np.isfinite(scores)
    if finite.any() and scores[finite].min() < 0:
        scores = scores - scores[finite].min()
    return scores * np.asarray(probability, dtype=float)


def per_unit_cost(scores, cost) -> np.ndarray:
    """Scores per unit cost: ``scores / cost`` (expected improvement per unit cost, Snoek et
    al. 2012), for costs > 0. Signed scores are first shifted so that the pool's lowest is 0,
    as in :func:`weight_by_feasibility`."""
    scores = np.asarray(scores, dtype=float)
    cost = np.asarray(cost, dtype=float)
    if cost.shape != scores.shape[:1]:
        raise DesignSpaceError(f"{cost.shape[0] if cost.ndim else 1} costs for "
                               f"{scores.shape[0]} candidates")
    if not (np.isfinite(cost).all() and (cost > 0).all()):
        raise DesignSpaceError("costs must be finite and > 0 to score per unit cost")
    finite = np.isfinite(scores)
    if finite.any() and scores[finite].min() < 0:
        scores = scores - scores[finite].min()
    return scores / cost
