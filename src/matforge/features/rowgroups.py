"""Per-composition reductions over a batch, grouped by the number of elements.

A batch of compositions is a sparse (n x 103) matrix. Every composition featurizer needs
reductions over each row's nonzeros (weighted means, minima, maxima, pair sums). Grouping the
rows by their number of elements ``k`` turns each group into a dense ``(m, k)`` block, so a
reduction is a handful of numpy operations over whole columns of the block: the Python-level
loop runs over ``k`` (at most ~20 for real compositions), never over materials.

The blocks keep each row's elements in the order the batch stores them (the formula's order of
first appearance, like pymatgen's ``Composition``), and :func:`numpy_sum` / :func:`sequential_sum`
add in exactly the order ``np.sum`` and a Python ``for`` loop do. That is what lets the
featurizers reproduce matminer to the last bit, including rounding-noise values such as the
``avg_dev`` of a compound whose elements share a property value (matminer: 2.2e-16, not 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class RowGroup:
    """The rows of a batch that have exactly ``k`` elements, as dense blocks.

    ``rows`` (m,) are row numbers in the batch; ``elements`` (k, m) element indices (Z - 1) and
    ``amounts`` (k, m) the unnormalised amounts (atoms per formula unit): entry ``[j, i]`` is the
    j-th element of row ``rows[i]`` in stored order. Position-major, so that ``x[j]`` of any
    (k, m, ...) array derived from them is contiguous.
    """

    rows: np.ndarray
    elements: np.ndarray
    amounts: np.ndarray

    @property
    def k(self) -> int:
        return self.elements.shape[0]


def group_rows(
    amounts: sp.csr_matrix,
    valid: np.ndarray | None = None,
    *,
    order: np.ndarray | None = None,
    max_rows: int = 1 << 15,
) -> list[RowGroup]:
    """Split a CSR amounts matrix into :class:`RowGroup` blocks, one per element count.

    ``order`` (aligned with ``amounts.indices``) ranks the entries within each row, e.g. the
    formula's order of first appearance (:func:`~matforge.features.formula_order.appearance_ranks`);
    without it the stored (Z) order is kept. Rows with no elements, or ``valid == False``, are
    in no group (featurizers give them NaN). Groups larger than ``max_rows`` are split, which
    bounds the temporaries of a featurizer to ``max_rows * k * n_properties`` floats.
    """
    indptr = amounts.indptr
    indices, data = amounts.indices, amounts.data
    counts = np.diff(indptr)
    if order is not None and len(indices):
        entry_row = np.repeat(np.arange(len(counts)), counts)
        perm = np.lexsort((order, entry_row))
        indices, data = indices[perm], data[perm]
    usable = counts > 0
    if valid is not None:
        usable &= np.asarray(valid, dtype=bool)
    groups = []
    for k in np.unique(counts[usable]):
        rows_k = np.flatnonzero(usable & (counts == k))
        for lo in range(0, len(rows_k), max_rows):
            rows = rows_k[lo : lo + max_rows]
            pos = indptr[rows] + np.arange(k)[:, None]
            groups.append(RowGroup(rows, indices[pos].astype(np.intp), data[pos]))
    return groups


def numpy_sum(x: np.ndarray) -> np.ndarray:
    """Sum over axis 0, rounding exactly as ``np.sum`` does on each 1-D column ``x[:, i, ...]``.

    numpy adds a contiguous 1-D float array by pairwise summation: below 8 terms one running
    sum; from 8 to 128 terms eight interleaved partial sums combined as a tree, then the tail.
    ``np.average(values, weights=...)`` (matminer's mean) is ``sum(v * w) / sum(w)`` in this order.
    """
    k = x.shape[0]
    if k < 8:
        return sequential_sum(x)
    if k > 128:  # numpy halves at a multiple of 8; never reached with <= 103 elements
        half = k // 2
        half -= half % 8
        return numpy_sum(x[:half]) + numpy_sum(x[half:])
    r = x[:8].copy()
    full = k - k % 8
    for i in range(8, full, 8):
        r += x[i : i + 8]
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(full, k):
        res += x[i]
    return res


def sequential_sum(x: np.ndarray) -> np.ndarray:
    """Sum over axis 0 left to right, as Python's ``sum()`` / a ``+=`` loop does (3.11)."""
    res = x[0].copy()
    for j in range(1, x.shape[0]):
        res += x[j]
    return res


def weighted_sum(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``np.sum(values[:, i] * weights[:, i])`` per row i, in numpy's order (see :func:`numpy_sum`).

    ``values`` is (k, m) or (k, m, p); ``weights`` is (k, m). Below 8 terms the products are
    formed one position at a time, which keeps the temporaries at (m, p).
    """
    w = weights if values.ndim == 2 else weights[:, :, None]
    k = values.shape[0]
    if k >= 8:
        return numpy_sum(values * w)
    res = values[0] * w[0]
    term = np.empty_like(res)
    for j in range(1, k):
        np.multiply(values[j], w[j], out=term)
        res += term
    return res


def numpy_average(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``np.average(values[:, i], weights=weights[:, i])`` for every row i, bit for bit.

    ``values`` is (k, m) or (k, m, p) (p properties at once); ``weights`` is (k, m).
    """
    total = numpy_sum(weights)
    return weighted_sum(values, weights) / (total if values.ndim == 2 else total[:, None])


def numpy_avg_dev(values: np.ndarray, weights: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``np.average(np.abs(values[:, i] - mean[i]), weights=weights[:, i])`` per row, bit for bit
    (matminer's ``avg_dev``); shapes as in :func:`numpy_average`."""
    total = numpy_sum(weights)
    if values.ndim == 3:
        total = total[:, None]
    if values.shape[0] >= 8:
        return weighted_sum(np.abs(values - mean), weights) / total
    w = weights if values.ndim == 2 else weights[:, :, None]
    res = np.empty_like(mean)
    term = np.empty_like(mean)
    for j in range(values.shape[0]):
        out = res if j == 0 else term
        np.subtract(values[j], mean, out=out)
        np.abs(out, out=out)
        out *= w[j]
        if j:
            res += term
    return res / total


def isclose_to_max(weights: np.ndarray) -> np.ndarray:
    """``np.isclose(w, w.max())`` per row of a (k, m) block: the elements tied for the largest
    amount (relative tolerance 1e-5, absolute 1e-8), which is how matminer's ``mode`` breaks ties.
    """
    top = weights.max(axis=0, keepdims=True)
    return np.abs(weights - top) <= 1e-8 + 1e-5 * np.abs(top)
