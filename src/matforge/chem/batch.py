"""A batch of compositions as a sparse (n_materials × 103) matrix, columns in Z order.

``CompositionBatch.from_formulas`` parses formula strings in bulk. The fast path joins a chunk
of strings with newlines and tokenises the *bytes* with numpy (character classes, digit runs,
a lookup table from symbol bytes to columns, exact decimal conversion), so its cost is a few
dozen vector operations per chunk rather than Python work per formula. It takes formulas of
element symbols, plain decimal amounts and one level of ``( )`` — the vast majority of real
data. Anything else (nested or square brackets, hydrates, whitespace, exponents, a symbol
repeated within a formula, amounts outside the parser's bounds, and every error) goes to :func:`matforge.chem.formula.parse_amounts`,
memoised per distinct string. Both paths give bit-identical amounts and fractions to
``parse_formula`` (and so to pymatgen's ``Composition``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp

from matforge.chem.elements import N_ELEMENTS, SYMBOLS
from matforge.chem.formula import AMOUNT_TOLERANCE, MAX_AMOUNT, parse_amounts
from matforge.errors import InvalidFormula

if TYPE_CHECKING:
    from pymatgen.core import Composition

_CHUNK = 1 << 16  # formulas per fast-path pass: bounds the temporaries' memory
_MAX_TERMS = 64  # longer formulas go to the full parser (bounds the row-sum scratch array)
_MAX_DIGITS = 15  # mantissas below 10**15 < 2**53 are exact in float64
_POW10 = 10.0 ** np.arange(23)  # exactly representable powers of ten
_POW10_INT = 10 ** np.arange(_MAX_DIGITS + 1, dtype=np.int64)

_COLUMN_OF = {s: i for i, s in enumerate(SYMBOLS)}
# (first char << 7 | second char or 0) -> column; -1 for anything else
_SYMBOL_COLUMN = np.full(128 * 128, -1, dtype=np.int64)
for _col, _sym in enumerate(SYMBOLS):
    _SYMBOL_COLUMN[(ord(_sym[0]) << 7) | (ord(_sym[1]) if len(_sym) > 1 else 0)] = _col


def _sequential_row_sums(row: np.ndarray, position: np.ndarray, amounts: np.ndarray, n: int):
    """Row sums added left to right in formula order, as ``Composition.num_atoms`` adds them.

    numpy's own reductions sum pairwise, which can differ in the last bit; adding one column
    of a zero-padded (n × terms) array at a time keeps the order (x + 0.0 == x).
    """
    width = int(position.max(initial=-1)) + 1
    dense = np.zeros((n, max(width, 1)))
    dense[row, position] = amounts
    totals = dense[:, 0].copy()
    for k in range(1, width):
        totals += dense[:, k]
    return totals


def _fast_chunk(strings: list) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Parse formulas of symbols, plain decimal amounts and one level of ``( )`` with numpy.

    Works on the bytes of all strings joined by newlines; every formula outside that subset
    (or with an error, a repeated symbol, or a number pymatgen might read differently) is
    flagged in the returned ``needs_full`` mask for the full parser.
    Returns (amounts CSR, row sums in formula order, needs_full).
    """
    n = len(strings)
    needs_full = np.zeros(n, dtype=bool)
    try:
        text = "\n".join(strings) + "\n"
    except TypeError:  # non-strings (None, NaN, ...): the full parser reports them
        text = None
    if text is None or text.count("\n") != n:  # a newline inside a formula shifts later rows
        odd = [i for i, f in enumerate(strings) if not isinstance(f, str) or "\n" in f]
        needs_full[odd] = True
        strings = list(strings)
        for i in odd:
            strings[i] = ""
        text = "\n".join(strings) + "\n"
    # non-ASCII characters become '?', one byte each, which flags their row
    b = np.frombuffer(text.encode("ascii", "replace") + b"\0", dtype=np.uint8)
    newlines = np.flatnonzero(b == 10)  # row r ends at newlines[r]
    up = (b >= 65) & (b <= 90)
    lo = (b >= 97) & (b <= 122)
    dg = (b >= 48) & (b <= 57)
    dot = b == 46
    num = dg | dot
    paren = (b == 40) | (b == 41)
    bad = ~(up | lo | num | paren | (b == 10))  # whitespace, [ ] { }, separators, junk
    bad[-1] = False  # the padding byte
    bad[1:] |= lo[1:] & ~up[:-1]  # "Fee", "fe", "2e": not a one- or two-letter symbol
    bad[0] |= lo[0]
    bad[:-1] |= (b[:-1] == 40) & (b[1:] == 41)  # "()"
    # "CuSO4.5H2O", "Fe(OH)3.H2O": the full parser may read that '.' as a hydrate separator
    bad[1:-3] |= (
        (b[1:-3] == 72) & (b[2:-2] == 50) & (b[3:-1] == 79) & ((b[4:] == 10) | (b[4:] == 46))
    ) & num[:-4]

    # numbers: maximal runs of digits and dots, worked on the number bytes only
    npos = np.flatnonzero(num)
    first = np.ones(len(npos), dtype=bool)
    first[1:] = np.diff(npos) != 1
    run_start = npos[first]
    last = np.ones(len(npos), dtype=bool)
    last[:-1] = first[1:]
    run_end = npos[last] + 1
    run_of = np.cumsum(first, dtype=np.int64) - 1  # run of each number byte
    is_dot = dot[npos]
    dot_at = np.full(len(run_start), -1, dtype=np.int64)
    dot_at[run_of[is_dot]] = npos[is_dot]
    n_dot = np.bincount(run_of[is_dot], minlength=len(run_start))
    length = run_end - run_start
    frac = np.where(dot_at >= 0, run_end - 1 - dot_at, 0)  # digits after the dot
    before = b[run_start - 1]  # a run must follow a symbol letter or ')': not "2Fe", "(2"
    run_bad = (length - n_dot == 0) | (length - n_dot > _MAX_DIGITS) | (n_dot > 1) | (frac > 22)
    run_bad |= ~(
        ((before >= 65) & (before <= 90)) | ((before >= 97) & (before <= 122)) | (before == 41)
    )
    bad[run_start[run_bad]] = True
    digit = ~is_dot
    dpos, drun = npos[digit], run_of[digit]
    place = run_end[drun] - 1 - dpos - (dpos < dot_at[drun])  # digits to its right in the run
    contrib = (b[dpos] - 48) * _POW10_INT[np.clip(place, 0, _MAX_DIGITS)]
    mantissa = np.bincount(drun, weights=contrib, minlength=len(run_start))
    # an exact integer over an exact power of ten: one correctly rounded division, so the
    # value equals float(text) (Clinger's fast path)
    value = np.append(mantissa / _POW10[np.minimum(frac, 22)], 1.0)  # [-1]: "no number"
    bad[run_start[value[:-1] > MAX_AMOUNT]] = True  # the full parser names the token

    run_at = np.full(len(b), -1, dtype=np.int32)  # run starting at each byte, -1: none
    run_at[run_start] = np.arange(len(run_start), dtype=np.int32)

    def number_at(pos: np.ndarray) -> np.ndarray:
        """The number starting at each byte position, 1.0 where none starts there."""
        return value[run_at[pos]]

    # symbols
    sym = np.flatnonzero(up)
    counts = np.diff(np.searchsorted(sym, newlines), prepend=0)  # symbols per row
    sym_row = np.repeat(np.arange(n), counts)
    two = lo[sym + 1]
    column = _SYMBOL_COLUMN[(b[sym].astype(np.int64) << 7) | np.where(two, b[sym + 1], 0)]
    amount = number_at(sym + 1 + two)

    # brackets: one level, balanced within each row
    ppos = np.flatnonzero(paren)
    if len(ppos):
        prow = np.searchsorted(newlines, ppos)
        delta = np.where(b[ppos] == 40, 1, -1)
        net = np.bincount(prow, weights=delta, minlength=n + 1).astype(np.int64)
        base = np.concatenate(([0], np.cumsum(net)))[prow]  # depth when the row starts
        depth = np.cumsum(delta) - base  # within the row, after each bracket
        bad[ppos[(depth < 0) | (depth > 1)]] = True
        bad[newlines[net[:n] != 0]] = True
        k = np.searchsorted(ppos, sym) - 1  # last bracket before each symbol
        inside = (k >= 0) & (prow[np.maximum(k, 0)] == sym_row) & (depth[np.maximum(k, 0)] == 1)
        if inside.any():  # the group's factor follows its ')': the next bracket
            close = ppos[np.minimum(k[inside] + 1, len(ppos) - 1)]
            amount[inside] = amount[inside] * number_at(close + 1)  # pymatgen: amt * factor

    bad_row = np.zeros(n + 1, dtype=bool)
    bad_row[np.searchsorted(newlines, np.flatnonzero(bad))] = True
    bad_row[sym_row[(column < 0) | ~(amount >= AMOUNT_TOLERANCE) | ~(amount <= MAX_AMOUNT)]] = True
    bad_row[:n] |= (counts == 0) | (counts > _MAX_TERMS)
    needs_full |= bad_row[:n]

    keep = ~needs_full[sym_row]
    sym_row, column, amount = sym_row[keep], column[keep], amount[keep]
    counts = np.bincount(sym_row, minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    position = np.arange(len(sym_row)) - indptr[sym_row]
    totals = _sequential_row_sums(sym_row, position, amount, n)
    needs_full |= ~(totals <= MAX_AMOUNT)  # too many atoms: the full parser says so
    matrix = sp.csr_matrix((amount.copy(), column, indptr), shape=(n, N_ELEMENTS))
    matrix.has_sorted_indices = False
    matrix.sort_indices()
    # a symbol repeated within one formula (CH3OH): pymatgen sums it; let the full parser do so
    entry_row = np.repeat(np.arange(n), counts)
    repeated = (matrix.indices[1:] == matrix.indices[:-1]) & (entry_row[1:] == entry_row[:-1])
    needs_full[entry_row[1:][repeated]] = True
    return matrix, totals, needs_full


class CompositionBatch:
    """Many compositions as sparse matrices over the 103 elements (columns = ``SYMBOLS``).

    Attributes:
        amounts: CSR (n × 103) float64, atoms per formula unit as written.
        fractions: CSR with the same sparsity, atomic fractions (rows sum to 1; bad rows are 0).
        elements: the column labels, :data:`matforge.chem.SYMBOLS`.
        errors: ``[(row_index, message), ...]`` for rows that failed to parse.
        valid: bool mask of rows that parsed.
    """

    elements: tuple[str, ...] = SYMBOLS

    def __init__(
        self,
        amounts: sp.csr_matrix,
        *,
        totals: np.ndarray | None = None,
        errors: list[tuple[int, str]] | None = None,
    ):
        self.amounts = sp.csr_matrix(amounts, dtype=np.float64)
        if self.amounts.shape[1] != N_ELEMENTS:
            raise ValueError(f"amounts must have {N_ELEMENTS} columns, got {self.amounts.shape[1]}")
        self.errors = list(errors or [])
        self.valid = np.ones(self.amounts.shape[0], dtype=bool)
        self.valid[[i for i, _ in self.errors]] = False
        if totals is None:
            totals = np.asarray(self.amounts.sum(axis=1)).ravel()
        self._totals = totals
        per_entry = np.repeat(totals, np.diff(self.amounts.indptr))
        self.fractions = sp.csr_matrix(
            (self.amounts.data / per_entry, self.amounts.indices, self.amounts.indptr),
            shape=self.amounts.shape,
        )

    @classmethod
    def from_formulas(
        cls,
        formulas: Sequence[str],
        errors: Literal["raise", "collect"] = "raise",
        *,
        source: str | None = None,
    ) -> CompositionBatch:
        """Parse formula strings (see :func:`matforge.chem.parse_formula` for the grammar).

        ``errors="raise"`` raises :class:`InvalidFormula` for the first bad row (its message
        names the row, and ``source`` if given, e.g. ``"data.csv"``); ``"collect"`` records
        ``(row_index, message)`` in ``.errors`` and leaves that row all-zero.
        """
        if errors not in ("raise", "collect"):
            raise ValueError(f"errors must be 'raise' or 'collect', got {errors!r}")
        formulas = formulas if isinstance(formulas, list) else list(formulas)
        n_rows = len(formulas)
        # No global de-duplication: hashing every string costs about as much as the
        # vectorised parse itself. Only the (rare) rows for the full parser are memoised.
        blocks, totals_parts, full_parts = [], [], []
        for lo in range(0, n_rows, _CHUNK):
            matrix, totals, needs_full = _fast_chunk(formulas[lo : lo + _CHUNK])
            blocks.append(matrix)
            totals_parts.append(totals)
            full_parts.append(np.flatnonzero(needs_full) + lo)
        if blocks:
            table = sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]
            totals = np.concatenate(totals_parts)
            full = np.concatenate(full_parts)
        else:
            table = sp.csr_matrix((0, N_ELEMENTS))
            totals, full = np.ones(0), np.zeros(0, dtype=np.int64)

        bad_rows: dict[int, str] = {}
        if len(full):
            flagged = np.zeros(n_rows, dtype=bool)
            flagged[full] = True
            table.data[np.repeat(flagged, np.diff(table.indptr))] = 0.0
            memo: dict[object, tuple[dict[str, float], float] | str] = {}
            rows, cols, data = [], [], []
            for r in full.tolist():
                f = formulas[r]
                parsed = memo.get(f) if isinstance(f, str) else None
                if parsed is None:
                    parsed = _parse_one(f)
                    if isinstance(f, str):
                        memo[f] = parsed
                if isinstance(parsed, str):
                    bad_rows[r] = parsed
                    totals[r] = 1.0
                    continue
                amounts, totals[r] = parsed
                for el, v in amounts.items():
                    rows.append(r)
                    cols.append(_COLUMN_OF[el])
                    data.append(v)
            patch = sp.csr_matrix((data, (rows, cols)), shape=(n_rows, N_ELEMENTS))
            table = table + patch  # those rows of `table` are zero: exact
            table.eliminate_zeros()
            table.sort_indices()

        row_errors = [(r, _with_row(bad_rows[r], r, source)) for r in sorted(bad_rows)]
        if row_errors and errors == "raise":
            raise InvalidFormula(row_errors[0][1])
        return cls(table, totals=totals, errors=row_errors)

    def __len__(self) -> int:
        return self.amounts.shape[0]

    def __repr__(self) -> str:
        return f"CompositionBatch(n={len(self)}, invalid={len(self.errors)})"

    def take(self, rows) -> CompositionBatch:
        """The rows ``rows`` (ints, in that order) as a batch of their own; errors follow."""
        rows = np.asarray(rows, dtype=np.int64)
        where = {int(r): i for i, r in enumerate(rows)}
        errors = [(where[r], msg) for r, msg in self.errors if r in where]
        return CompositionBatch(self.amounts[rows], totals=self._totals[rows], errors=errors)

    def contains_any(self, symbols) -> np.ndarray:
        """Row-wise: does the composition contain any of the elements ``symbols``?"""
        from matforge.chem.elements import Z

        cols = [Z[s] - 1 for s in symbols]
        if not cols or not len(self):
            return np.zeros(len(self), dtype=bool)
        return np.asarray((self.amounts[:, cols] != 0).sum(axis=1)).ravel() > 0

    def smact_valid(
        self, *, use_pauling_test: bool = True, include_alloys: bool = True
    ) -> np.ndarray:
        """Row-wise :func:`matforge.chem.smact_valid` (False for rows that failed to parse)."""
        from matforge.chem.oxidation import batch_screen

        return batch_screen(
            self, "smact_valid", use_pauling_test=use_pauling_test, include_alloys=include_alloys
        )

    def charge_balanced(self, *, oxidation_states: str = "smact") -> np.ndarray:
        """Row-wise :func:`matforge.chem.charge_balanced` (False for rows that failed to parse)."""
        from matforge.chem.oxidation import batch_screen

        return batch_screen(self, "charge_balanced", oxidation_states=oxidation_states)

    def electronegativity_balanced(self, *, oxidation_states: str = "smact") -> np.ndarray:
        """Row-wise :func:`matforge.chem.electronegativity_balanced` (False where unparsed)."""
        from matforge.chem.oxidation import batch_screen

        return batch_screen(self, "electronegativity_balanced", oxidation_states=oxidation_states)

    def to_compositions(self) -> list[Composition | None]:
        """One pymatgen ``Composition`` per row (``None`` for rows that failed to parse)."""
        from pymatgen.core import Composition

        a = self.amounts
        out: list[Composition | None] = []
        for i in range(len(self)):
            if not self.valid[i]:
                out.append(None)
                continue
            lo, hi = a.indptr[i], a.indptr[i + 1]
            out.append(
                Composition(
                    {
                        SYMBOLS[c]: float(v)
                        for c, v in zip(a.indices[lo:hi], a.data[lo:hi], strict=True)
                    }
                )
            )
        return out


def _parse_one(formula: object) -> tuple[dict[str, float], float] | str:
    """Full parser for one row: (amounts, left-to-right total) or the error message."""
    try:
        amounts = parse_amounts(formula)  # type: ignore[arg-type]
    except InvalidFormula as exc:
        return str(exc)
    total = 0.0
    for v in amounts.values():  # left to right, as Composition.num_atoms adds them
        total += v
    return amounts, total


def _with_row(message: str, row: int, source: str | None) -> str:
    where = f"row {row}" + (f" of {source}" if source else "")
    return f"{message} ({where})"
