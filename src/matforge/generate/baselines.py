"""Baseline generators every generative model is compared with.

* :func:`frequency_random`: the number of elements, the elements and the counts drawn at the
  training set's frequencies (elements without replacement, weighted by how many training
  compositions contain them);
* :func:`uniform_random`: the number of elements at the training frequency, elements uniform
  over those seen in training, counts uniform in ``1..max_count``;
* :func:`element_substitution`: a training composition with one element replaced by another of
  the same periodic-table group (column), the count kept.

Each returns canonical integer formulas (repeats kept), reproducible from ``seed``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from matforge.chem.elements import SYMBOLS, magpie_property
from matforge.errors import GenerateError
from matforge.generate.tokens import canonical_formula, integer_counts

__all__ = ["element_substitution", "frequency_random", "uniform_random"]


def _statistics(train: Sequence[str]):
    parsed = [integer_counts(f) for f in train]
    if not parsed:
        raise GenerateError("the training set is empty")
    n_el = Counter(len(c) for c in parsed)
    el = Counter(e for c in parsed for e in c)
    counts = Counter(n for c in parsed for n in c.values())
    return parsed, n_el, el, counts


def _draw(counter: Counter, rng, size):
    keys = list(counter)
    p = np.array([counter[k] for k in keys], dtype=float)
    idx = rng.choice(len(keys), size=size, p=p / p.sum())
    return [keys[i] for i in np.atleast_1d(idx)]


def _formula(elements, counts) -> str:
    return canonical_formula(integer_counts(dict(zip(elements, counts, strict=True))))


def frequency_random(train: Sequence[str], n: int, *, seed: int = 0) -> list[str]:
    """``n`` compositions at the training set's element and stoichiometry frequencies."""
    _, n_el, el, counts = _statistics(train)
    rng = np.random.default_rng(seed)
    symbols = list(el)
    weights = np.array([el[s] for s in symbols], dtype=float)
    weights /= weights.sum()
    ks = _draw(n_el, rng, n)
    out = []
    for k in ks:
        chosen = rng.choice(len(symbols), size=min(k, len(symbols)), replace=False, p=weights)
        out.append(_formula([symbols[i] for i in chosen], _draw(counts, rng, len(chosen))))
    return out


def uniform_random(train: Sequence[str], n: int, *, max_count: int = 8, seed: int = 0) -> list[str]:
    """``n`` compositions with uniform elements (those seen in training) and counts."""
    _, n_el, el, _ = _statistics(train)
    rng = np.random.default_rng(seed)
    symbols = sorted(el)
    out = []
    for k in _draw(n_el, rng, n):
        chosen = rng.choice(len(symbols), size=min(k, len(symbols)), replace=False)
        out.append(
            _formula([symbols[i] for i in chosen], rng.integers(1, max_count + 1, len(chosen)))
        )
    return out


def _groups() -> dict[str, list[str]]:
    column = magpie_property("Column")
    by_column: dict[float, list[str]] = {}
    for s, c in zip(SYMBOLS, column, strict=True):
        if not np.isnan(c):
            by_column.setdefault(float(c), []).append(s)
    return {
        s: [o for o in by_column[float(c)] if o != s]
        for s, c in zip(SYMBOLS, column, strict=True)
        if not np.isnan(c)
    }


def element_substitution(train: Sequence[str], n: int, *, seed: int = 0) -> list[str]:
    """``n`` same-group substitutions of random training compositions (elements restricted
    to those seen in training)."""
    parsed, _, el, _ = _statistics(train)
    rng = np.random.default_rng(seed)
    groups = {s: [o for o in others if o in el] for s, others in _groups().items()}
    out = []
    while len(out) < n:
        comp = parsed[rng.integers(len(parsed))]
        old = list(comp)[rng.integers(len(comp))]
        options = [o for o in groups.get(old, []) if o not in comp]
        if not options:
            continue
        new = options[rng.integers(len(options))]
        out.append(_formula([new if e == old else e for e in comp], list(comp.values())))
    return out
