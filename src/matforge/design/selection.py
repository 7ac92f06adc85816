"""Choosing a default strategy honestly: leave-one-problem-out (LOPO) over a benchmark suite.

Given the acceleration factor of every candidate strategy on every problem (``scores[problem]
[candidate]``), the *in-suite* choice is the candidate with the best aggregate over all
problems — it has seen every problem it is then scored on. LOPO instead, for each problem
``p``, chooses the candidate with the best aggregate over the *other* problems and scores that
choice on ``p``; those held-out scores estimate how the selection procedure does on a problem it
was not tuned on — the question a lab with a new problem asks.

The aggregate is the geometric mean of the acceleration factors (the mean of their logs: a
halving on one problem weighs as much as a doubling on another); ties go to the candidate
listed first, so list the simpler or cheaper ones first.

>>> scores = {"a": {"x": 4.0, "y": 1.0}, "b": {"x": 1.0, "y": 4.0}, "c": {"x": 4.0, "y": 2.0}}
>>> r = lopo(scores)
>>> r["in_suite"]["chosen"], [r["in_suite"]["scores"][p] for p in "abc"]
('x', [4.0, 1.0, 4.0])
>>> [r["problems"][p]["chosen"] for p in "abc"], [r["problems"][p]["score"] for p in "abc"]
(['y', 'x', 'x'], [1.0, 1.0, 4.0])

Without ``a``, ``y`` looks better (geometric means 2.83 against 2.0) and scores 1 on ``a``;
without ``c`` the two tie at 2.0 and ``x``, listed first, is chosen. The in-suite median (4.0)
overstates what the procedure delivers on a new problem (held-out median 1.0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from matforge.errors import DesignSpaceError

__all__ = ["aggregate", "lopo", "targets"]


def aggregate(values: Sequence[float]) -> float:
    """Geometric mean of positive scores (acceleration factors)."""
    v = np.asarray(list(values), dtype=float)
    if len(v) == 0:
        raise DesignSpaceError("aggregate of no scores")
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise DesignSpaceError(f"scores must be positive and finite, got {v.tolist()}")
    return float(np.exp(np.mean(np.log(v))))


def _best(
    scores: Mapping[str, Mapping[str, float]], problems: Sequence[str], candidates: Sequence[str]
) -> tuple[str, float]:
    best, best_value = None, -math.inf
    for c in candidates:  # ties: the first listed wins (strict >)
        value = aggregate([scores[p][c] for p in problems])
        if value > best_value + 1e-12:
            best, best_value = c, value
    return best, best_value


def lopo(
    scores: Mapping[str, Mapping[str, float]], candidates: Sequence[str] | None = None
) -> dict:
    """Leave-one-problem-out choice among ``candidates`` (default: every candidate scored on
    the first problem, in that order).

    Returns ``{"candidates", "in_suite": {"chosen", "aggregate", "scores"}, "problems": {p:
    {"chosen", "train_aggregate", "score", "in_suite_score"}}, "lopo_aggregate",
    "lopo_median", "in_suite_median"}``: per problem the choice made on the other problems, its
    aggregate there, and its score on ``p``. Needs at least two problems; raises
    :class:`DesignSpaceError` if a candidate is missing on a problem.
    """
    problems = list(scores)
    if len(problems) < 2:
        raise DesignSpaceError("leave-one-problem-out needs at least two problems")
    candidates = list(candidates) if candidates is not None else list(scores[problems[0]])
    if not candidates:
        raise DesignSpaceError("no candidate strategies to choose from")
    for p in problems:
        missing = [c for c in candidates if c not in scores[p]]
        if missing:
            raise DesignSpaceError(f"problem {p!r} has no score for candidate(s) {missing}")
    chosen_all, agg_all = _best(scores, problems, candidates)
    out = {
        "candidates": candidates,
        "in_suite": {
            "chosen": chosen_all,
            "aggregate": agg_all,
            "scores": {p: float(scores[p][chosen_all]) for p in problems},
        },
        "problems": {},
    }
    for p in problems:
        rest = [q for q in problems if q != p]
        c, agg = _best(scores, rest, candidates)
        out["problems"][p] = {
            "chosen": c,
            "train_aggregate": agg,
            "score": float(scores[p][c]),
            "in_suite_score": float(scores[p][chosen_all]),
        }
    held_out = [v["score"] for v in out["problems"].values()]
    out["lopo_aggregate"] = aggregate(held_out)
    out["lopo_median"] = float(np.median(held_out))
    out["in_suite_median"] = float(np.median(list(out["in_suite"]["scores"].values())))
    return out


def targets(
    held_out: Mapping[str, float],
    baseline: Mapping[str, float],
    *,
    median_at_least: float = 4.0,
    each_at_least: float = 1.5,
    beat_baseline_on: int = 10,
) -> dict:
    """Issue #20's acceptance targets on held-out (LOPO) acceleration factors: median ≥ 4,
    every problem ≥ 1.5, above the plain baseline on at least 10 problems. Each verdict comes
    with the number it was decided on."""
    problems = list(held_out)
    v = np.array([held_out[p] for p in problems], dtype=float)
    beats = [p for p in problems if held_out[p] > baseline[p]]
    below = [p for p in problems if held_out[p] < each_at_least]
    return {
        "median": {
            "value": float(np.median(v)),
            "target": median_at_least,
            "met": bool(np.median(v) >= median_at_least),
        },
        "each": {
            "lowest": float(v.min()),
            "target": each_at_least,
            "below": below,
            "met": not below,
        },
        "beats_baseline": {
            "count": len(beats),
            "of": len(problems),
            "target": beat_baseline_on,
            "not_on": [p for p in problems if p not in beats],
            "met": len(beats) >= beat_baseline_on,
        },
    }
