"""Each element's rank of first appearance in its formula, aligned with a batch's CSR entries.

``CompositionBatch`` stores every row's elements in Z order. matminer walks a pymatgen
``Composition``, whose elements come in the formula's order of first appearance, and sums in
that order; floating-point addition is not associative, so reproducing matminer bit for bit
(which matters where its answer is rounding noise, e.g. an ``avg_dev`` of 2.2e-16 that is
mathematically 0) needs that order back.

pymatgen expands brackets in place, so its order is the textual order of first appearance of
each symbol, which one regex pass over all strings recovers. Rows whose symbols do not match
the batch's entries (failed rows) keep Z order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from matforge.chem import SYMBOLS

_STRIDE = 128  # > number of element columns: row * _STRIDE + column is a unique key


def _symbol_lookup() -> np.ndarray:
    """Column of each element symbol keyed by (first byte) * 256 + (second byte or 0)."""
    table = np.full(1 << 16, -1, dtype=np.int64)
    for i, sym in enumerate(SYMBOLS):
        b = sym.encode()
        table[b[0] * 256 + (b[1] if len(b) > 1 else 0)] = i
    return table


_LOOKUP = _symbol_lookup()


def _tokens(formulas: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every element symbol in the strings, in textual order.

    Works on the UTF-8 bytes with numpy: a symbol is an ASCII capital followed by an optional
    lowercase letter (a capital followed by two lowercase letters is no symbol, and such rows
    fail to parse anyway). Non-strings are empty rows.
    """
    texts = [f if isinstance(f, str) else "" for f in formulas]
    raw = np.frombuffer("\n".join(t.replace("\n", " ") for t in texts).encode(), dtype=np.uint8)
    row = np.cumsum(raw == 10)
    upper = (raw >= 65) & (raw <= 90)
    lower = (raw >= 97) & (raw <= 122)
    lower_next = np.zeros_like(lower)
    lower_next[:-1] = lower[1:]
    lower_next2 = np.zeros_like(lower)
    lower_next2[:-2] = lower[2:]
    starts = np.flatnonzero(upper & ~(lower_next & lower_next2))
    second = np.where(lower_next[starts], raw[np.minimum(starts + 1, len(raw) - 1)], 0)
    column = _LOOKUP[raw[starts].astype(np.int64) * 256 + second]
    known = column >= 0
    return row[starts[known]], column[known]


def appearance_ranks(formulas: Sequence[object], amounts: sp.csr_matrix) -> np.ndarray:
    """Rank (0 = first) of each stored entry of ``amounts`` in its row's formula string.

    ``formulas[i]`` is the string row ``i`` was parsed from (non-strings count as failed rows).
    Returns an int array aligned with ``amounts.indices``; rows whose symbols do not match
    their entries keep their stored order.
    """
    n = amounts.shape[0]
    counts_csr = np.diff(amounts.indptr)
    entry_row = np.repeat(np.arange(n), counts_csr)
    stored = np.arange(len(entry_row)) - amounts.indptr[entry_row]
    if n == 0 or len(entry_row) == 0:
        return stored
    tok_row, tok_col = _tokens(formulas)
    key = tok_row * _STRIDE + tok_col
    # first occurrence of each (row, element), in textual order = order of first appearance
    key_sorted, first = np.unique(key, return_index=True)
    order_in_text = np.argsort(first, kind="stable")
    first_rows = key_sorted[order_in_text] // _STRIDE
    starts = np.searchsorted(first_rows, np.arange(n))
    rank_in_text = np.arange(len(first_rows)) - starts[first_rows]
    rank_sorted = np.empty_like(rank_in_text)
    rank_sorted[order_in_text] = rank_in_text  # rank of each key_sorted entry

    # align with the CSR entries, which are (row, column)-sorted like key_sorted
    entry_key = entry_row * _STRIDE + amounts.indices
    pos = np.minimum(np.searchsorted(key_sorted, entry_key), len(key_sorted) - 1)
    hit = key_sorted[pos] == entry_key
    same_count = np.bincount(key_sorted // _STRIDE, minlength=n)[:n] == counts_csr
    row_ok = (np.bincount(entry_row, weights=hit, minlength=n) == counts_csr) & same_count
    use = row_ok[entry_row]
    out = stored.copy()
    out[use] = rank_sorted[pos[use]]
    return out
