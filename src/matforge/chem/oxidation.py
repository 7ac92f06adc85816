"""Oxidation-state screens: charge balance, electronegativity order, SMACT validity.

``smact_valid`` reproduces ``smact.screening.smact_validity`` (smact 4, defaults:
``use_pauling_test=True``, ``include_alloys=True``, ICSD24 oxidation states with consensus 3, no
zero state) from the element table, without importing smact or pymatgen:

1. a single-element composition is valid; so is one made only of smact's metals (alloys);
2. amounts are truncated to integers (``int(amount)``, as smact does) and divided by their GCD;
3. valid if some assignment of one oxidation state per element sums to zero, with every cation
   strictly less electronegative (Pauling, smact's table) than every anion; an element with no
   ICSD24 states, or (for the Pauling test) no electronegativity, makes it invalid.

Where smact itself breaks, this module answers instead of raising: when every amount is below
1 and not all elements are metals (``Li0.5O0.5``), smact divides by a zero GCD and raises
``ZeroDivisionError``; ``smact_valid`` returns False. The search itself is exact and exhaustive
(smact enumerates the Cartesian product of states; we enumerate the electronegativity cut and
the reachable charge sums), so the two agree on every composition both accept — see
``docs/chem.md`` and ``tests/test_chem_oxidation.py`` for the measured agreement.

``charge_balanced`` and ``electronegativity_balanced`` are the same tests on the amounts as
written (exact decimal arithmetic, no truncation), with a choice of oxidation-state set.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache, reduce
from typing import TYPE_CHECKING

import numpy as np

from matforge.chem.elements import SYMBOLS, Z, _numeric, _raw, oxidation_state_lists
from matforge.chem.formula import parse_amounts
from matforge.errors import InvalidFormula

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pymatgen.core import Composition

    from matforge.chem.batch import CompositionBatch


def _amounts(comp: str | Composition | dict) -> dict[str, float]:
    """``{symbol: amount}`` of a formula string, a pymatgen Composition or a plain dict."""
    if isinstance(comp, str):
        return parse_amounts(comp)
    items = (
        comp.element_composition.items() if hasattr(comp, "element_composition") else comp.items()
    )
    out: dict[str, float] = {}
    for el, amt in items:
        sym = getattr(el, "symbol", el)
        if sym not in Z:
            raise InvalidFormula(f"{comp!r}: element {sym!r} is outside Z = 1..103")
        out[sym] = out.get(sym, 0.0) + float(amt)
    if not out:
        raise InvalidFormula(f"{comp!r}: empty composition")
    return out


@lru_cache(maxsize=1)
def _smact_metal() -> frozenset[str]:
    return frozenset(s for s, m in zip(SYMBOLS, _raw()["columns"]["smact_metal"], strict=True) if m)


def _electronegativity(kind: str) -> np.ndarray:
    return _numeric("smact_pauling_en" if kind == "smact" else "pauling_en")


def _neutral(
    counts: Sequence,
    states: Sequence[Sequence[int]],
    en: Sequence[float] | None,
) -> bool:
    """Is there one state per element with sum(state * count) == 0 (exact arithmetic)?

    With ``en`` (electronegativities), also every cation (state > 0) strictly less
    electronegative than every anion (state < 0). A valid assignment puts all elements with EN
    below the anions' minimum EN ``t`` on the cation side and the rest on the anion side, so
    trying each EN value (and +inf) as the cut ``t`` is exhaustive.
    """
    if en is None:
        cuts: list[float | None] = [None]
    else:
        if any(math.isnan(e) for e in en):
            return False  # smact's Pauling test fails on a missing electronegativity
        cuts = sorted(set(en)) + [math.inf]
    for t in cuts:
        sums = {0}
        for i, (n, ox) in enumerate(zip(counts, states, strict=True)):
            if t is not None:
                # below the cut: cation (or neutral); at or above it: anion (or neutral)
                ox = [q for q in ox if (q >= 0 if en[i] < t else q <= 0)]
            sums = {s + q * n for s in sums for q in ox}
            if not sums:
                break
        if 0 in sums:
            return True
    return False


def smact_valid(
    comp: str | Composition,
    *,
    use_pauling_test: bool = True,
    include_alloys: bool = True,
) -> bool:
    """SMACT validity of a composition, as ``smact.screening.smact_validity`` decides it.

    Accepts a formula string or a pymatgen ``Composition``; see the module docstring for the
    rules and the one case (all amounts below 1) where smact raises and this returns False.
    """
    return _smact_valid_amounts(tuple(_amounts(comp).items()), use_pauling_test, include_alloys)


def _smact_valid_amounts(items: tuple, use_pauling_test: bool, include_alloys: bool) -> bool:
    symbols = [s for s, _ in items]
    if len(set(symbols)) == 1:
        return True
    if include_alloys and all(s in _smact_metal() for s in symbols):
        return True
    counts = [int(a) for _, a in items]  # smact truncates: int(0.5) == 0
    g = reduce(math.gcd, counts)
    if g == 0:
        return False  # smact: ZeroDivisionError
    return _smact_check(tuple(symbols), tuple(c // g for c in counts), use_pauling_test)


@lru_cache(maxsize=65536)
def _smact_check(symbols: tuple[str, ...], counts: tuple[int, ...], pauling: bool) -> bool:
    lists = oxidation_state_lists("smact")
    states = [lists[Z[s] - 1] for s in symbols]
    if any(not ox for ox in states):
        return False  # no ICSD24 states for an element
    en = [float(_electronegativity("smact")[Z[s] - 1]) for s in symbols] if pauling else None
    return _neutral(counts, states, en)


def _exact(amount: float) -> Fraction:
    # the decimal the amount was written as: 0.1 * 3 == 0.3 here, unlike in binary floats
    return Fraction(repr(float(amount)))


def charge_balanced(comp: str | Composition, *, oxidation_states: str = "smact") -> bool:
    """Can one oxidation state per element make the composition neutral, amounts as written?

    ``oxidation_states``: ``"smact"`` (smact 4's default ICSD24 set), ``"common"``, ``"icsd"``
    or ``"all"`` (pymatgen's lists). A single element is balanced (oxidation state 0).
    Fractional amounts are used exactly (``Fe0.5O0.75`` is balanced with Fe3+), unlike
    :func:`smact_valid`, which truncates them.
    """
    return _balanced(_amounts(comp), oxidation_states, pauling=False)


def electronegativity_balanced(comp: str | Composition, *, oxidation_states: str = "smact") -> bool:
    """Charge balanced with every cation less electronegative than every anion (Pauling).

    Electronegativities are smact's for ``oxidation_states="smact"``, pymatgen's otherwise; an
    element without one makes a multi-element composition fail, as in smact's Pauling test.
    """
    return _balanced(_amounts(comp), oxidation_states, pauling=True)


def _balanced(amounts: dict[str, float], kind: str, *, pauling: bool) -> bool:
    if len(amounts) == 1:
        return True
    lists = oxidation_state_lists(kind)
    symbols = list(amounts)
    states = [lists[Z[s] - 1] for s in symbols]
    if any(not ox for ox in states):
        return False
    en = [float(_electronegativity(kind)[Z[s] - 1]) for s in symbols] if pauling else None
    exact = [_exact(a) for a in amounts.values()]
    # neutrality does not change with scale: integer counts make the search ~10x faster
    scale = math.lcm(*(c.denominator for c in exact))
    return _neutral([int(c * scale) for c in exact], states, en)


def batch_screen(batch: CompositionBatch, test: str, **kwargs) -> np.ndarray:
    """Apply ``smact_valid`` / ``charge_balanced`` / ``electronegativity_balanced`` per row.

    Rows that failed to parse give False. Each distinct composition is tested once.
    """
    a = batch.amounts
    out = np.zeros(len(batch), dtype=bool)
    seen: dict[tuple, bool] = {}
    for i in np.flatnonzero(batch.valid):
        lo, hi = a.indptr[i], a.indptr[i + 1]
        key = (a.indices[lo:hi].tobytes(), a.data[lo:hi].tobytes())
        result = seen.get(key)
        if result is None:
            items = tuple(
                (SYMBOLS[c], float(v)) for c, v in zip(a.indices[lo:hi], a.data[lo:hi], strict=True)
            )
            if test == "smact_valid":
                result = _smact_valid_amounts(
                    items, kwargs.get("use_pauling_test", True), kwargs.get("include_alloys", True)
                )
            elif test in ("charge_balanced", "electronegativity_balanced"):
                result = _balanced(
                    dict(items),
                    kwargs.get("oxidation_states", "smact"),
                    pauling=test == "electronegativity_balanced",
                )
            else:
                raise ValueError(f"unknown screen {test!r}")
            seen[key] = result
        out[i] = result
    return out
