"""How a screen orders the candidates that pass its filter.

A ranking turns result columns into one score per row (higher is better) — except
:class:`ParetoFront`, which keeps the non-dominated set. Every score depends only on the row's
own columns and on constants fixed before the screen starts, so the top-k of a space is the
same whatever the chunk size, order or executor.

=========================  =====================================================================
spec string                 ranking
=========================  =====================================================================
``col`` / ``-col``           :class:`ByValue`: the mean of ``col``, largest (``-``: smallest) first
``ucb:col[:kappa]``          :class:`ConfidenceBound`: ``mean + kappa·std`` (default kappa 1)
``lcb:col[:kappa]``          ``mean − kappa·std``, smallest first (for minimised properties)
``probability``              :class:`ProbabilityOfFeasibility`: Monte Carlo probability that the
                             ``where`` constraints hold, given the predictive distributions
``novelty:col[:weight]``     :class:`NoveltyWeighted` (DiSCoVeR-style): scaled value plus
                             ``weight`` × distance to the training data
``pareto:a,-b,...``          :class:`ParetoFront` of several objectives (``-``: minimised)
=========================  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from matforge.design.objectives import pareto_mask
from matforge.errors import ScreenError

__all__ = [
    "ByValue",
    "ConfidenceBound",
    "NoveltyWeighted",
    "ParetoFront",
    "ProbabilityOfFeasibility",
    "Ranking",
    "parse_ranking",
    "pareto_mask",
]


class Ranking:
    """Base class: ``score(columns) -> (n,)`` array, higher is better, NaN = not ranked."""

    #: columns the score reads
    needs: tuple[str, ...] = ()
    #: the column a funnel pre-screens on, and whether larger is better there
    funnel_column: str | None = None
    funnel_descending: bool = True

    def score(self, columns: dict[str, np.ndarray]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover
        raise NotImplementedError


class _OneColumn(Ranking):
    """A ranking of one ``column``: a funnel pre-screens on it, in the ranking's direction."""

    column: str
    descending: bool

    @property
    def funnel_column(self):
        return self.column

    @property
    def funnel_descending(self):
        return self.descending


@dataclass(frozen=True)
class ByValue(_OneColumn):
    """Rank by the predicted mean of ``column`` (``descending=False``: smallest first)."""

    column: str
    descending: bool = True

    @property
    def needs(self):
        return (self.column,)

    def score(self, columns):
        v = np.asarray(columns[self.column], dtype=np.float64)
        return v if self.descending else -v

    def describe(self):
        return f"{self.column} ({'largest' if self.descending else 'smallest'} first)"


@dataclass(frozen=True)
class ConfidenceBound(_OneColumn):
    """``mean + kappa·std`` of ``column`` (optimistic); ``descending=False`` ranks by the lower
    bound ``mean − kappa·std``, smallest first.

    The ranking of a screen's column by :class:`matforge.design.acquisition.UpperConfidenceBound`
    (the one definition of the bound).
    """

    column: str
    kappa: float = 1.0
    descending: bool = True

    @property
    def needs(self):
        return (self.column, f"{self.column}_std")

    def score(self, columns):
        # the formula is the campaigns' acquisition function; a lower bound, smallest first,
        # is the upper bound of the negated mean: −(m − κs) = (−m) + κs
        from matforge.design.acquisition import UpperConfidenceBound as Acquisition

        m = np.asarray(columns[self.column], dtype=np.float64)
        s = np.asarray(columns[f"{self.column}_std"], dtype=np.float64)
        return Acquisition(beta=self.kappa)(m if self.descending else -m, s)

    def describe(self):
        sign = "+" if self.descending else "−"
        return f"{self.column} mean {sign} {self.kappa:g}·std"


@dataclass(frozen=True)
class ProbabilityOfFeasibility(Ranking):
    """Probability (Monte Carlo over the predictive distributions) that ``where`` holds.

    Needs a ``where`` expression on the screen; rows with probability below ``minimum`` are not
    ranked. The funnel (if any) pre-screens on ``funnel_on``.
    """

    minimum: float = 0.0
    funnel_on: str | None = None

    needs = ("probability",)

    @property
    def funnel_column(self):
        return self.funnel_on

    def score(self, columns):
        p = np.asarray(columns["probability"], dtype=np.float64)
        return np.where(p > self.minimum, p, np.nan) if self.minimum > 0 else p

    def describe(self):
        return "probability of meeting the constraints"


@dataclass(frozen=True)
class NoveltyWeighted(Ranking):
    """DiSCoVeR-style score ``(1 − w)·(value − center)/scale + w·distance``.

    ``distance`` is the applicability-domain distance to the training data (1 = a typical
    training point's distance to its neighbours; see :mod:`matforge.screen.domain`), so a
    candidate far from known chemistry gains up to ``w`` per unit of distance. ``center`` and
    ``scale`` put the value on a comparable footing; a screen fills them (median and IQR/1.349
    of the column on its reference sample) when left None.
    """

    column: str
    weight: float = 0.5
    center: float | None = None
    scale: float | None = None

    @property
    def needs(self):
        return (self.column, "distance")

    @property
    def funnel_column(self):
        return self.column

    def score(self, columns):
        if self.center is None or self.scale is None:
            raise ScreenError("NoveltyWeighted: center and scale are not set")
        v = (np.asarray(columns[self.column], dtype=np.float64) - self.center) / self.scale
        d = np.asarray(columns["distance"], dtype=np.float64)
        return (1.0 - self.weight) * v + self.weight * d

    def describe(self):
        return f"novelty-weighted {self.column} (weight {self.weight:g})"


@dataclass(frozen=True)
class ParetoFront(Ranking):
    """Non-dominated set of several objectives; ``objectives`` = ``(column, maximise)`` pairs."""

    objectives: tuple[tuple[str, bool], ...] = field(default=())

    @property
    def needs(self):
        return tuple(c for c, _ in self.objectives)

    @property
    def funnel_column(self):
        return self.objectives[0][0]

    @property
    def funnel_descending(self):
        return self.objectives[0][1]

    def matrix(self, columns) -> np.ndarray:
        """(n, d) objective values, all to be maximised."""
        return np.column_stack(
            [np.asarray(columns[c], dtype=np.float64) * (1 if up else -1) for c, up in self.objectives]
        )

    def score(self, columns):
        # the first objective orders the front for display
        return self.matrix(columns)[:, 0]

    def describe(self):
        return "Pareto front of " + ", ".join(("max " if up else "min ") + c for c, up in self.objectives)


def parse_ranking(spec: str | Ranking) -> Ranking:
    """A :class:`Ranking` from a spec string (see the module docstring) or the object itself."""
    if isinstance(spec, Ranking):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ScreenError(f"rank_by must be a non-empty string or a Ranking, got {spec!r}")
    s = spec.strip()
    kind, _, rest = s.partition(":")
    try:
        if kind in ("ucb", "lcb"):
            col, _, kappa = rest.partition(":")
            return ConfidenceBound(col, float(kappa) if kappa else 1.0, kind == "ucb")
        if kind == "probability":
            return ProbabilityOfFeasibility(float(rest) if rest else 0.0)
        if kind == "novelty":
            col, _, w = rest.partition(":")
            return NoveltyWeighted(col, float(w) if w else 0.5)
        if kind == "pareto":
            objs = tuple(
                (c.strip().lstrip("-+"), not c.strip().startswith("-"))
                for c in rest.split(",")
                if c.strip()
            )
            if len(objs) < 2:
                raise ScreenError(f"rank_by {spec!r}: a Pareto front needs two or more objectives")
            return ParetoFront(objs)
    except ValueError:
        raise ScreenError(f"rank_by {spec!r}: bad number") from None
    if ":" in s:
        raise ScreenError(
            f"rank_by {spec!r}: unknown ranking {kind!r} (ucb, lcb, probability, novelty, pareto)"
        )
    if s.startswith("-"):
        return ByValue(s[1:], descending=False)
    return ByValue(s.lstrip("+"))
