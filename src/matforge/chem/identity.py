"""Composition identity: when two formulas name the same material.

Two formulas are one composition when their atomic fractions agree, so ``Fe2O3``, ``O3Fe2``,
``Fe4O6`` and ``Fe0.4O0.6`` are one. The rule has two spellings, decided here once:

* :func:`composition_keys` — a 64-bit key per row of a CSR fraction matrix (fractions rounded to
  1e-6), a few vector operations for millions of rows: screens exclude known compounds and
  remove duplicates with it. The key is a sum of per-element random 64-bit weights times the
  rounded fractions (mod 2^64); two different compositions collide with probability ~n²/2^64.
* :func:`composition_key_strings` — a readable key per formula (elements and fractions to 6
  significant digits, ``"O0.6 Fe0.4"``): campaigns store it with their candidates, so it must
  stay the same across versions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from matforge.chem.elements import N_ELEMENTS

__all__ = ["composition_key_strings", "composition_keys"]

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


def composition_key_strings(formulas: Sequence[str], source: str | None = None) -> list[str]:
    """Canonical key of each formula: its elements and atomic fractions (6 significant
    digits), so ``"Fe2O3"``, ``"O3Fe2"`` and ``"Fe0.4O0.6"`` share one key.

    Raises :class:`~matforge.errors.InvalidFormula` naming the first formula that does not parse.
    """
    from matforge.chem.batch import CompositionBatch

    batch = CompositionBatch.from_formulas([str(f) for f in formulas], errors="raise",
                                           source=source)  # fmt: skip
    F = batch.fractions.tocsr()
    F.sort_indices()
    symbols = batch.elements
    keys = []
    for r in range(F.shape[0]):
        lo, hi = F.indptr[r], F.indptr[r + 1]
        keys.append(" ".join(f"{symbols[j]}{float(f'{v:.6g}'):g}"
                             for j, v in zip(F.indices[lo:hi], F.data[lo:hi], strict=True)))  # fmt: skip
    return keys
