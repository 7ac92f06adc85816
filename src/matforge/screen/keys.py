"""Composition identity as a 64-bit key: exclusion of known compounds, de-duplication.

Two rows get the same key when their atomic fractions agree after rounding to 1e-6, so
``Fe2O3``, ``Fe4O6`` and ``Fe0.4O0.6`` are one composition. The key is a sum of per-element
random 64-bit weights times the rounded fractions (mod 2^64), computed on the CSR fraction matrix
with a few vector operations; a collision between two different compositions has probability
~n²/2^64.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from matforge.chem.batch import CompositionBatch
from matforge.chem.elements import N_ELEMENTS

__all__ = ["KnownCompositions", "composition_keys", "formulas_from_amounts"]

_WEIGHTS = np.random.default_rng(0x5C12EE).integers(1, 2**63, size=N_ELEMENTS, dtype=np.uint64)
_WEIGHTS |= np.uint64(1)


def composition_keys(fractions: sp.csr_matrix) -> np.ndarray:
    """uint64 key per row of a CSR fraction matrix (rows summing to 1); 0 for empty rows."""
    f = fractions.tocsr()
    q = np.rint(f.data * 1e6).astype(np.uint64)
    with np.errstate(over="ignore"):
        w = q * _WEIGHTS[f.indices]
        cs = np.zeros(len(w) + 1, dtype=np.uint64)
        np.cumsum(w, dtype=np.uint64, out=cs[1:])
        return cs[f.indptr[1:]] - cs[f.indptr[:-1]]


class KnownCompositions:
    """A set of compositions to exclude from a candidate space (e.g. those already measured).

    Build from formula strings (unparseable ones are ignored), a :class:`CompositionBatch` or
    keys; ``contains(fractions)`` answers for a CSR fraction matrix.
    """

    def __init__(self, keys: np.ndarray):
        self.keys = np.unique(np.asarray(keys, dtype=np.uint64))
        self.keys = self.keys[self.keys != 0]

    @classmethod
    def from_formulas(cls, formulas: Iterable[str]) -> KnownCompositions:
        batch = CompositionBatch.from_formulas(list(formulas), errors="collect")
        return cls.from_batch(batch)

    @classmethod
    def from_batch(cls, batch: CompositionBatch) -> KnownCompositions:
        return cls(composition_keys(batch.fractions)[batch.valid])

    @classmethod
    def coerce(cls, known) -> KnownCompositions | None:
        """None, a KnownCompositions, a CompositionBatch or an iterable of formulas."""
        if known is None or isinstance(known, KnownCompositions):
            return known
        if isinstance(known, CompositionBatch):
            return cls.from_batch(known)
        return cls.from_formulas(known)

    def __len__(self) -> int:
        return len(self.keys)

    def contains(self, fractions: sp.csr_matrix) -> np.ndarray:
        """Bool mask: is each row's composition in the set?"""
        return self.contains_keys(composition_keys(fractions))

    def contains_keys(self, keys: np.ndarray) -> np.ndarray:
        if not len(self.keys):
            return np.zeros(len(keys), dtype=bool)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return self.keys[pos] == keys


def _formula_order() -> np.ndarray:
    """Element rank for writing formulas: by Pauling electronegativity, as pymatgen does."""
    from matforge.chem.elements import property_array

    en = np.nan_to_num(property_array("pauling_en"), nan=10.0)
    return np.lexsort((np.arange(N_ELEMENTS), en)).argsort()


_ORDER: np.ndarray | None = None


def formulas_from_amounts(amounts: sp.csr_matrix, rows: Iterable[int] | None = None) -> list[str]:
    """Formula strings (``"Fe2O3"``, elements by electronegativity) of rows of an amounts CSR.

    Whole-number amounts are written as integers (1 omitted), others with up to 6 significant
    digits. Empty rows give ``""``.
    """
    from matforge.chem.elements import SYMBOLS

    global _ORDER
    if _ORDER is None:
        _ORDER = _formula_order()
    a = amounts.tocsr()
    rows = range(a.shape[0]) if rows is None else rows
    out = []
    for i in rows:
        lo, hi = a.indptr[i], a.indptr[i + 1]
        cols, vals = a.indices[lo:hi], a.data[lo:hi]
        parts = []
        for j in np.argsort(_ORDER[cols], kind="stable"):
            v = float(vals[j])
            if v == 1.0:
                num = ""
            elif v.is_integer():
                num = str(int(v))
            else:
                num = f"{v:.6g}"
            parts.append(SYMBOLS[cols[j]] + num)
        out.append("".join(parts))
    return out
