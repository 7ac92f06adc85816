"""Ionic character and charge balance (matminer's ``IonProperty`` with its defaults).

* ``max ionic char``: max over element pairs of ``1 - exp(-(X_A - X_B)**2 / 4)`` (Pauling
  electronegativity X, pymatgen's values; missing X imputed by the mean over all elements).
* ``avg ionic char``: ``sum_{A<B} x_A x_B (1 - exp(-(X_A - X_B)**2 / 4))`` over atomic fractions.
* ``compound possible``: 1.0 if some assignment of pymatgen's common oxidation states (ICSD
  states for elements without common ones) to the atoms sums to zero, else 0.0.

What is vectorised and what is not: the two ionic-character columns are array operations over
the whole batch. The charge-balance boolean is an exact search, run once per distinct
composition (a Python loop over unique (element, count) sets, with set-of-sums arithmetic on
integer bitmasks instead of pymatgen's enumeration of every oxidation-state combination: same
answer, typically >1000x faster than ``Composition.oxi_state_guesses``).

Differences from matminer: pymatgen's charge balance requires integer amounts, and matminer
raises for non-integer compositions (``Fe0.5Ni0.5O``), so its whole row is NaN; here only
``compound possible`` is NaN for them and the ionic characters are still computed.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np

from matforge.chem.elements import oxidation_state_lists, property_array
from matforge.features.base import CompositionFeaturizer
from matforge.features.element_property import WARD_2016
from matforge.features.rowgroups import RowGroup, sequential_sum

_N_PYMATGEN_ELEMENTS = 118  # matminer imputes X by the mean over pymatgen's whole Element enum


@cache
def _pauling_x() -> np.ndarray:
    """Pauling X for Z = 1..103 as matminer's ``PymatgenData(impute_nan=True)`` serves it.

    Missing values (noble gases) become ``np.nanmean`` over all 118 elements; elements past
    103 have no X in pymatgen, so padding the 103 values with NaN reproduces that mean exactly.
    """
    x = np.array(property_array("pauling_en"))
    padded = np.concatenate([x, np.full(_N_PYMATGEN_ELEMENTS - len(x), np.nan)])
    x[np.isnan(x)] = np.nanmean(padded)
    return x


@cache
def _charge_states() -> tuple[tuple[int, ...], ...]:
    """Per element (Z - 1), the oxidation states matminer lets pymatgen try: the common ones,
    else the ICSD ones (pymatgen's fallback when the override is empty)."""
    common, icsd = oxidation_state_lists("common"), oxidation_state_lists("icsd")
    return tuple(c if c else i for c, i in zip(common, icsd, strict=True))


@lru_cache(maxsize=65536)
def _sum_mask(element: int, count: int) -> tuple[int, int]:
    """The possible total charges of ``count`` atoms of one element, as (bitmask, offset):
    bit ``i`` set <=> total charge ``offset + i`` is reachable."""
    states = _charge_states()[element]
    if not states:
        return 0, 0
    lo = min(states)
    steps = sorted({s - lo for s in states})
    mask = 1
    for _ in range(count):
        mask = _shift_or(mask, steps)
    return mask, lo * count


def _shift_or(mask: int, steps: list[int]) -> int:
    out = 0
    for s in steps:
        out |= mask << s
    return out


def charge_balanced(elements: tuple[int, ...], counts: tuple[int, ...]) -> bool:
    """True if the atoms (``counts[i]`` of element index ``elements[i]``) admit oxidation
    states summing to zero (the set of matminer/pymatgen's ``oxi_state_guesses`` is nonempty)."""
    reach, offset = 1, 0  # reachable total charges, as a bitmask starting at ``offset``
    for el, n in zip(elements, counts, strict=True):
        mask, lo = _sum_mask(el, n)
        if mask == 0:
            return False
        offset += lo
        acc, bit, m = 0, 0, mask
        while m:  # sumset of two bitmasks: shift one by each set bit of the other
            if m & 1:
                acc |= reach << bit
            m >>= 1
            bit += 1
        reach = acc
    return offset <= 0 and (reach >> -offset) & 1 == 1


class IonProperty(CompositionFeaturizer):
    """``compound possible``, ``max ionic char``, ``avg ionic char`` (matminer defaults)."""

    def feature_labels(self) -> list[str]:
        return ["compound possible", "max ionic char", "avg ionic char"]

    def citations(self) -> list[str]:
        return [WARD_2016]

    def implementors(self) -> list[str]:
        return ["Jiming Chen", "Logan Ward"]

    def _featurize_group(self, group: RowGroup) -> np.ndarray:
        k, m = group.elements.shape
        out = np.zeros((m, 3))
        if k < 2:  # a single element: neutral, no ionic character (matminer's special case)
            out[:, 0] = 1.0
            return out
        x = _pauling_x()[group.elements]
        a = group.amounts
        frac = a / sequential_sum(a)
        # the largest pair difference gives the largest 1 - exp(-d^2/4): same rounding
        spread = x.max(axis=0) - x.min(axis=0)
        out[:, 1] = 1.0 - np.exp(-0.25 * spread**2)
        avg = np.zeros(m)
        for i in range(k):  # pairs in itertools.combinations order, summed left to right
            for j in range(i + 1, k):
                avg += frac[i] * frac[j] * (1.0 - np.exp(-0.25 * ((x[i] - x[j]) ** 2)))
        out[:, 2] = avg
        out[:, 0] = _compound_possible(group.elements.T, a.T)
        return out


def _compound_possible(elements: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """1.0 / 0.0 per row, NaN where an amount is not an integer; each distinct row once."""
    result = np.full(len(elements), np.nan)
    integral = np.all(amounts == np.floor(amounts), axis=1)
    rows = np.flatnonzero(integral)
    if len(rows) == 0:
        return result
    # canonical key per row: element order does not change the answer
    order = np.argsort(elements[rows], axis=1)
    els = np.take_along_axis(elements[rows], order, axis=1)
    cnt = np.take_along_axis(amounts[rows], order, axis=1).astype(np.int64)
    keys = np.concatenate([els, cnt], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    k = elements.shape[1]
    answers = np.array(
        [charge_balanced(tuple(u[:k].tolist()), tuple(u[k:].tolist())) for u in unique], dtype=float
    )
    result[rows] = answers[inverse.ravel()]
    return result
