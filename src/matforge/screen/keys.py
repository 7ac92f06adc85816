"""Known compositions (exclusion of known compounds, de-duplication) and formula strings.

Composition identity — which rows are one composition — is :mod:`matforge.chem.identity`'s
:func:`~matforge.chem.identity.composition_keys`, imported here for the screen.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from matforge.chem.batch import CompositionBatch
from matforge.chem.elements import N_ELEMENTS
from matforge.chem.identity import composition_keys

__all__ = ["KnownCompositions", "composition_keys", "formulas_from_amounts"]


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
