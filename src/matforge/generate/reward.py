"""Rewards for designing compositions against property models.

A reward is composed of matforge pieces and lies in ``[0, 1]``:

* **property goals**, one per registry model, parsed from text (:func:`parse_goals`):
  ``"band_gap in [1.0, 1.8]"``, ``"band_gap >= 6"``, ``"1 <= band_gap <= 2"``,
  ``"maximize bulk_modulus"`` / ``"minimize e_form"``, joined by ``and``. A window or threshold
  scores the model's probability that the property lies in it (a normal distribution from the
  predicted mean and calibrated std); ``maximize`` scores an upper confidence bound
  ``mean + kappa * std`` scaled to ``[0, 1]`` by the model's training targets (1st..99th
  percentile). Several goals multiply.
* **gates**, checked before any model is called (so they cost no model call): the formula
  parses, the element restrictions hold, it is charge-neutral and electronegativity-balanced
  (``require_valid``), it is not a known composition (``known``). A gated formula scores 0.
* **domain**: beyond ``max_distance`` (:class:`~matforge.screen.domain.DomainModel` distance to
  the first model's training compositions; 1 = as close as training points are to each
  other), the reward decays as ``exp(-(distance - max_distance))``.

:class:`Reward` returns a table with the reward and every piece, so a design can be explained.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matforge.errors import GenerateError
from matforge.generate.tokens import ELEMENT_ORDER, canonical_formula, integer_counts

__all__ = ["Goal", "Reward", "parse_goals"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PATTERNS = (
    ("window", re.compile(rf"^({_NAME})\s+in\s+\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]$")),
    ("between", re.compile(rf"^({_NUMBER})\s*<=?\s*({_NAME})\s*<=?\s*({_NUMBER})$")),
    ("above", re.compile(rf"^({_NAME})\s*>=?\s*({_NUMBER})$")),
    ("below", re.compile(rf"^({_NAME})\s*<=?\s*({_NUMBER})$")),
    ("max", re.compile(rf"^(maximize|minimize)\s+({_NAME})$")),
)


@dataclass(frozen=True)
class Goal:
    """One property goal: ``lo <= property <= hi`` (either bound may be infinite), or
    ``direction`` +1 (maximize) / -1 (minimize) with ``kappa`` for the confidence bound."""

    property: str
    lo: float = -math.inf
    hi: float = math.inf
    direction: int = 0
    kappa: float = 1.0

    def __post_init__(self):
        if not self.direction and not self.lo < self.hi:
            raise GenerateError(
                f"impossible window for {self.property}: [{self.lo:g}, {self.hi:g}] is empty"
            )

    def __str__(self) -> str:
        if self.direction:
            return f"{'maximize' if self.direction > 0 else 'minimize'} {self.property}"
        if math.isinf(self.hi):
            return f"{self.property} >= {self.lo:g}"
        if math.isinf(self.lo):
            return f"{self.property} <= {self.hi:g}"
        return f"{self.property} in [{self.lo:g}, {self.hi:g}]"

    def probability(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """P(lo <= y <= hi) for y ~ Normal(mean, std); a zero std gives 0 or 1."""
        from scipy.stats import norm

        mean = np.asarray(mean, dtype=float)
        std = np.maximum(np.asarray(std, dtype=float), 1e-9)
        p = norm.cdf((self.hi - mean) / std) - norm.cdf((self.lo - mean) / std)
        return np.where(np.isfinite(mean), p, 0.0)

    def hit(self, values: np.ndarray) -> np.ndarray:
        """Whether each value lies in the window (False for NaN)."""
        values = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            return (values >= self.lo) & (values <= self.hi)


def parse_goals(text: str) -> list[Goal]:
    """Goals from ``"band_gap in [1.0, 1.8] and e_form <= 0"`` (see module docstring)."""
    if not text or not text.strip():
        raise GenerateError("the reward is empty; e.g. 'band_gap in [1.0, 1.8]'")
    goals = []
    for part in re.split(r"\s+and\s+", text.strip()):
        part = part.strip()
        for kind, pattern in _PATTERNS:
            m = pattern.match(part)
            if not m:
                continue
            if kind == "window":
                goals.append(Goal(m[1], float(m[2]), float(m[3])))
            elif kind == "between":
                goals.append(Goal(m[2], float(m[1]), float(m[3])))
            elif kind == "above":
                goals.append(Goal(m[1], lo=float(m[2])))
            elif kind == "below":
                goals.append(Goal(m[1], hi=float(m[2])))
            else:
                goals.append(Goal(m[2], direction=1 if m[1] == "maximize" else -1))
            break
        else:
            raise GenerateError(
                f"cannot read the goal {part!r}; write 'prop in [lo, hi]', 'prop >= x', "
                "'prop <= x', 'lo <= prop <= hi', 'maximize prop' or 'minimize prop', "
                "joined by 'and'"
            )
    names = [g.property for g in goals]
    if len(set(names)) < len(names):
        raise GenerateError(f"each property may appear once in a reward: {text!r}")
    return goals


def _symbols(elements: Iterable[str] | None, what: str) -> frozenset[str]:
    out = frozenset(e.strip() for e in (elements or ()) if e and e.strip())
    unknown = sorted(out - set(ELEMENT_ORDER))
    if unknown:
        raise GenerateError(f"unknown element(s) in {what}: {', '.join(unknown)}")
    return out


def element_restrictions(
    required: Iterable[str] | None, forbidden: Iterable[str] | None
) -> tuple[frozenset[str], frozenset[str]]:
    """The required and forbidden element symbols of a reward; raises GenerateError for an
    unknown element or one both required and forbidden."""
    req = _symbols(required, "required elements")
    forb = _symbols(forbidden, "forbidden elements")
    if req & forb:
        raise GenerateError(f"elements both required and forbidden: {', '.join(sorted(req & forb))}")
    return req, forb


class Reward:
    """Score formulas against property models (module docstring).

    Parameters
    ----------
    goals : str or list of Goal
    models : mapping property -> fitted CompositionModel (``predict(X, return_std=True)``)
    known : compositions that earn nothing (e.g. the training data), or None
    require_valid : gate on charge neutrality + electronegativity balance (SMACT rules)
    required, forbidden : element symbols every formula must contain / must not contain
    max_distance : domain distance beyond which the reward decays (None: no domain term)

    Attributes
    ----------
    calls : distinct formulas whose properties were predicted (the model-call budget)
    """

    def __init__(
        self,
        goals: str | Sequence[Goal],
        models: Mapping[str, object],
        *,
        known: Iterable[str] | None = None,
        require_valid: bool = True,
        required: Iterable[str] | None = None,
        forbidden: Iterable[str] | None = None,
        max_distance: float | None = 3.0,
    ):
        self.goals = parse_goals(goals) if isinstance(goals, str) else list(goals)
        missing = [g.property for g in self.goals if g.property not in models]
        if missing:
            raise GenerateError(
                f"the reward names {', '.join(missing)} but no model was given for it "
                f"(--model-ref {missing[0]}=MODEL); models given: {', '.join(models) or 'none'}"
            )
        self.models = {g.property: models[g.property] for g in self.goals}
        self.known = frozenset(known or ())
        self.require_valid = require_valid
        self.required, self.forbidden = element_restrictions(required, forbidden)
        self.max_distance = max_distance
        self._domain = None
        self._scales = {}
        for g in self.goals:
            if g.direction:
                y = np.asarray(getattr(self.models[g.property], "oof_", {}).get("y", []), float)
                y = y[np.isfinite(y)]
                if y.size < 2:
                    raise GenerateError(
                        f"maximize/minimize {g.property} needs a model with training targets"
                    )
                self._scales[g.property] = tuple(np.percentile(y, [1, 99]))
        self.calls = 0
        self._cache: dict[str, dict] = {}

    @property
    def domain(self):
        """The applicability domain of the first model's training compositions (lazy)."""
        if self._domain is None and self.max_distance is not None:
            from matforge.screen.domain import DomainModel

            model = next(iter(self.models.values()))
            train = list(getattr(model, "oof_", {}).get("formula", []))
            if len(train) < 10:
                raise GenerateError("a domain term needs a model with its training formulas (oof_)")
            F, _ = model._features(train, strict=False)
            self._domain = DomainModel(random_state=0).fit(F)
        return self._domain

    # -- gates ------------------------------------------------------------------------------
    def _gate(self, formulas: Sequence[str]) -> tuple[list[str | None], np.ndarray, list[str]]:
        """Canonical formulas (None where unparsable), pass mask, and the reason per formula."""
        from matforge.generate.corpus import valid_mask

        canon: list[str | None] = []
        reason = []
        for f in formulas:
            try:
                counts = integer_counts(f)
            except Exception:
                canon.append(None)
                reason.append("unparsable")
                continue
            c = canonical_formula(counts)
            canon.append(c)
            els = set(counts)
            if not self.required <= els:
                reason.append("missing required element")
            elif els & self.forbidden:
                reason.append("forbidden element")
            elif c in self.known:
                reason.append("known")
            else:
                reason.append("")
        ok = np.array([r == "" for r in reason], dtype=bool)
        if self.require_valid and ok.any():
            idx = np.flatnonzero(ok)
            valid = valid_mask([canon[i] for i in idx])
            for i in idx[~valid]:
                reason[i] = "not charge-balanced"
            ok[idx[~valid]] = False
        return canon, ok, reason

    # -- scoring ----------------------------------------------------------------------------
    def _score_new(self, formulas: list[str]) -> pd.DataFrame:
        out = pd.DataFrame({"formula": formulas})
        reward = np.ones(len(formulas))
        for g in self.goals:
            mean, std = self.models[g.property].predict(formulas, return_std=True)
            out[g.property] = mean
            out[f"{g.property}_std"] = std
            if g.direction:
                lo, hi = self._scales[g.property]
                bound = mean + g.direction * g.kappa * std
                s = (bound - lo) / (hi - lo) if g.direction > 0 else (hi - bound) / (hi - lo)
                score = np.clip(np.nan_to_num(s, nan=0.0), 0.0, 1.0)
                out[f"score_{g.property}"] = score
            else:
                score = g.probability(mean, std)
                out[f"p_{g.property}"] = score
            reward *= score
        if self.max_distance is not None:
            F, _ = next(iter(self.models.values()))._features(formulas, strict=False)
            dist = self.domain.distance(F)
            out["distance"] = dist
            reward *= np.exp(-np.clip(dist - self.max_distance, 0.0, None))
        out["reward"] = reward
        return out

    def __call__(self, formulas: Sequence[str]) -> pd.DataFrame:
        """One row per formula: ``formula`` (canonical), ``reward``, ``gate`` (why it scored 0
        before any model call, or ""), the model means/stds, the goal scores, ``distance``.
        Formulas scored before come from a cache and do not count as new calls."""
        formulas = list(formulas)
        canon, ok, reason = self._gate(formulas)
        todo = list(
            dict.fromkeys(c for c, k in zip(canon, ok, strict=True) if k and c not in self._cache)
        )
        if todo:
            scored = self._score_new(todo)
            self.calls += len(todo)
            for row in scored.to_dict("records"):
                self._cache[row["formula"]] = row
        rows = []
        for f, c, k, r in zip(formulas, canon, ok, reason, strict=True):
            if k:
                rows.append({**self._cache[c], "gate": ""})
            else:
                rows.append({"formula": c if c is not None else f, "reward": 0.0, "gate": r})
        return pd.DataFrame(rows, columns=self.columns)

    @property
    def columns(self) -> list[str]:
        cols = ["formula", "reward", "gate"]
        for g in self.goals:
            score = f"score_{g.property}" if g.direction else f"p_{g.property}"
            cols += [g.property, f"{g.property}_std", score]
        if self.max_distance is not None:
            cols.append("distance")
        return cols

    def would_call(self, formulas: Sequence[str]) -> int:
        """How many distinct new model calls scoring ``formulas`` would cost."""
        canon, ok, _ = self._gate(list(formulas))
        return len({c for c, k in zip(canon, ok, strict=True) if k and c not in self._cache})
