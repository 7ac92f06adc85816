"""Candidate spaces: where the compositions a screen evaluates come from.

Every space is a sequence of ``len(space)`` candidate *positions* that can be generated in any
slice: ``space.chunk(start, stop)`` returns a :class:`CandidateChunk` holding the compositions
of positions ``start .. stop-1`` as a sparse (rows × 103) matrix — never as strings — minus those
the space's own filters drop (duplicates, compositions already known, charge imbalance). Because
any slice can be produced on its own, a screen can hand slices to worker processes or a Dask
cluster, resume after a crash at the first unfinished slice, and never holds more than one slice
per worker in memory: an enumerated space of 10^8 candidates costs no more memory than one of
10^4. Formula strings are written only for the rows a screen keeps (``chunk.describe(rows)``).

Spaces:

* :class:`FormulaSpace` — formula strings: a bundled dataset column, a user CSV/Parquet file, or
  the materials of a store (``from_dataset``, ``from_file``, ``from_store``);
* :class:`EnumeratedSpace` — all compositions of a set of elements with up to ``max_atoms``
  atoms per formula unit (binary, ternary, quaternary), optionally charge-balanced or
  electronegativity-balanced;
* :class:`SubstitutionSpace` — known compounds with one element swapped for a chemically similar
  one (same group, or similar ionic radius at a shared oxidation state);
* :class:`ConcatSpace` — several spaces one after another, with a ``source`` column.

Every space takes ``exclude=`` (formulas, a CompositionBatch or :class:`KnownCompositions`):
compositions equal to one of them (same atomic fractions) are dropped.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from matforge.chem.batch import CompositionBatch
from matforge.chem.elements import DEFAULT_EXCLUDED, N_ELEMENTS, SYMBOLS, Z, element_set
from matforge.errors import ScreenError
from matforge.screen.keys import KnownCompositions, composition_keys, formulas_from_amounts

__all__ = [
    "CandidateChunk",
    "CandidateSpace",
    "ConcatSpace",
    "EnumeratedSpace",
    "FormulaSpace",
    "SubstitutionSpace",
]


@dataclass
class CandidateChunk:
    """The candidates of one slice of a space.

    Attributes:
        index: (n,) int64 global positions of the rows (after the space's filters).
        batch: the rows' compositions; ``batch.valid`` is False (and ``batch.errors`` says why)
            for rows that could not be parsed.
        n_considered: positions in the slice before filtering.
        filtered: rows dropped by each of the space's filters, by filter name.
        describe: ``describe(rows) -> {"formula": [...], ...}``, string columns for the given
            row numbers (0 .. n-1) of this chunk; called only for the rows a screen keeps.
    """

    index: np.ndarray
    batch: CompositionBatch
    n_considered: int
    filtered: dict[str, int] = field(default_factory=dict)
    describe: Callable[[np.ndarray], dict[str, list]] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def labels(self, rows) -> dict[str, list]:
        rows = np.asarray(rows, dtype=np.int64)
        if self.describe is None:
            return {"formula": formulas_from_amounts(self.batch.amounts, rows)}
        return self.describe(rows)


class CandidateSpace(ABC):
    """A sequence of candidate compositions, generated slice by slice."""

    name: str = "space"

    @abstractmethod
    def __len__(self) -> int:
        """Number of positions (an upper bound on the candidates: filters drop some)."""

    @abstractmethod
    def chunk(self, start: int, stop: int) -> CandidateChunk:
        """The candidates at positions ``start .. stop-1``."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A string that changes whenever the space would produce different candidates."""

    def label_columns(self) -> tuple[str, ...]:
        """Names of the string columns ``chunk.describe`` returns."""
        return ("formula",)

    def head(self, n: int) -> CandidateSpace:
        """The first ``n`` positions of this space, as a space of its own."""
        return _Head(self, n)

    def without_elements(self, symbols) -> CandidateSpace:
        """This space less the compositions that contain any of ``symbols`` (element symbols
        or group names: :func:`matforge.chem.element_set`); counted in ``filtered`` as
        ``"excluded elements"``."""
        symbols = element_set(symbols)
        return _WithoutElements(self, symbols) if symbols else self

    def _check_slice(self, start: int, stop: int) -> tuple[int, int]:
        n = len(self)
        if not 0 <= start <= stop <= n:
            raise ScreenError(f"{self.name}: slice [{start}, {stop}) outside 0..{n}")
        return start, stop

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n={len(self):,})"


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def _exclusion(
    batch: CompositionBatch, known: KnownCompositions | None
) -> tuple[np.ndarray, np.ndarray]:
    """(keys, mask of rows whose composition is in ``known``)."""
    keys = composition_keys(batch.fractions)
    if known is None:
        return keys, np.zeros(len(keys), dtype=bool)
    return keys, known.contains_keys(keys) & batch.valid


# --------------------------------------------------------------------------------------------
# formula strings
# --------------------------------------------------------------------------------------------


class FormulaSpace(CandidateSpace):
    """Candidates given as formula strings (parsed per chunk; bad ones become rejects).

    Args:
        formulas: the formula strings (any sequence; an Arrow/pandas column is fine).
        name: shown in progress and summaries.
        columns: extra string columns carried to the results (e.g. an id), aligned with
            ``formulas``.
        unique: drop rows whose composition repeats an earlier row's (same atomic fractions).
        exclude: compositions to drop (formulas, CompositionBatch or KnownCompositions).

    The strings are held in memory (about 60 bytes a row); parsing and featurizing happen per
    chunk. ``unique``/``exclude`` parse all rows once up front, to decide which to keep.
    """

    def __init__(
        self,
        formulas: Sequence[str],
        *,
        name: str = "formulas",
        columns: dict[str, Sequence] | None = None,
        unique: bool = False,
        exclude=None,
    ):
        self.formulas = list(formulas)
        self.name = name
        self.columns = {k: list(v) for k, v in (columns or {}).items()}
        for k, v in self.columns.items():
            if len(v) != len(self.formulas):
                raise ScreenError(f"column {k!r} has {len(v)} rows, formulas {len(self.formulas)}")
        self.unique = unique
        known = KnownCompositions.coerce(exclude)
        self._n_known = 0 if known is None else len(known)
        self._drop_reason = None
        if unique or known is not None:
            batch = CompositionBatch.from_formulas(self.formulas, errors="collect")
            keys, excluded = _exclusion(batch, known)
            reason = np.zeros(len(keys), dtype=np.int8)  # 0 keep, 1 excluded, 2 duplicate
            reason[excluded] = 1
            if unique:
                valid_rows = np.flatnonzero(batch.valid & ~excluded)
                _, first = np.unique(keys[valid_rows], return_index=True)
                dup = np.ones(len(valid_rows), dtype=bool)
                dup[first] = False
                reason[valid_rows[dup]] = 2
            self._drop_reason = reason

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def from_dataset(
        cls, dataset: str, column: str = "formula", *, keep: str | None = None, **kwargs
    ) -> FormulaSpace:
        """A bundled dataset's formula column (``matforge.datasets``).

        ``keep``: a pandas ``DataFrame.query`` string selecting rows first, e.g.
        ``"not in_labelled_set"`` for ``elasticity_pool``.
        """
        from matforge.datasets import load_dataset

        df = load_dataset(dataset)
        if column not in df.columns:
            raise ScreenError(f"dataset {dataset!r} has no column {column!r}: {list(df.columns)}")
        if keep:
            df = df.query(keep)
        kwargs.setdefault("name", dataset)
        return cls(df[column].astype(str).tolist(), **kwargs)

    @classmethod
    def from_file(
        cls, path: str | Path, column: str = "formula", *, id_column: str | None = None, **kwargs
    ) -> FormulaSpace:
        """The formula column of a CSV (``.csv``, ``.csv.gz``) or Parquet file."""
        path = Path(path)
        if not path.exists():
            raise ScreenError(f"candidate file not found: {path}")
        wanted = [column] + ([id_column] if id_column else [])
        try:
            if path.suffix == ".parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(path, columns=wanted)
                data = {c: table.column(c).to_pylist() for c in wanted}
            else:
                import pandas as pd

                df = pd.read_csv(path, usecols=wanted, dtype=str, keep_default_na=False)
                data = {c: df[c].tolist() for c in wanted}
        except (KeyError, ValueError) as exc:
            raise ScreenError(f"{path}: cannot read column(s) {wanted}: {exc}") from None
        except Exception as exc:  # pyarrow's ArrowInvalid & co.
            raise ScreenError(f"{path}: {exc}") from None
        kwargs.setdefault("name", path.name)
        columns = {id_column: data[id_column]} if id_column else None
        return cls(data[column], columns=columns, **kwargs)

    @classmethod
    def from_store(
        cls, url: str, *, project: str | None = None, elements=None, **kwargs
    ) -> FormulaSpace:
        """The materials of a matforge store (optionally of one project / containing elements)."""
        from matforge.store import Store

        with Store(url) as store:
            df = store.materials(elements=elements, project=project)
        kwargs.setdefault("name", f"store:{project or 'all'}")
        return cls(df["formula"].tolist(), columns={"material_id": df["id"].astype(str)}, **kwargs)

    # -- space -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.formulas)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for f in self.formulas:
            h.update(str(f).encode())
            h.update(b"\n")
        return _digest(
            "FormulaSpace", h.hexdigest(), self.unique, self._n_known,
            None if self._drop_reason is None else self._drop_reason,
        )  # fmt: skip

    def label_columns(self) -> tuple[str, ...]:
        return ("formula", *self.columns)

    def chunk(self, start: int, stop: int) -> CandidateChunk:
        start, stop = self._check_slice(start, stop)
        rows = np.arange(start, stop, dtype=np.int64)
        filtered: dict[str, int] = {}
        if self._drop_reason is not None:
            reason = self._drop_reason[start:stop]
            if (reason == 1).any():
                filtered["known"] = int((reason == 1).sum())
            if (reason == 2).any():
                filtered["duplicate"] = int((reason == 2).sum())
            rows = rows[reason == 0]
        strings = [self.formulas[i] for i in rows]
        batch = CompositionBatch.from_formulas(strings, errors="collect", source=self.name)
        extra = self.columns

        def describe(sel: np.ndarray) -> dict[str, list]:
            out = {"formula": [str(strings[i]) for i in sel]}
            for k, v in extra.items():
                out[k] = [str(v[rows[i]]) for i in sel]
            return out

        return CandidateChunk(rows, batch, stop - start, filtered, describe)


# --------------------------------------------------------------------------------------------
# enumeration
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def stoichiometries(arity: int, max_atoms: int) -> np.ndarray:
    """All reduced ``arity``-tuples of positive integers with sum <= ``max_atoms``.

    Reduced: the gcd of a tuple is 1, so each composition appears once (Fe2O2 is FeO).
    Lexicographic order; shape (S, arity), int64.
    """
    if arity < 1 or max_atoms < arity:
        return np.zeros((0, arity), dtype=np.int64)
    out = [
        t
        for t in itertools.product(range(1, max_atoms - arity + 2), repeat=arity)
        if sum(t) <= max_atoms and math.gcd(*t) == 1
    ]
    arr = np.array(out, dtype=np.int64).reshape(-1, arity)
    arr.setflags(write=False)
    return arr


def _binomials(m: int, r: int) -> np.ndarray:
    """``C(x, j)`` for x = 0..m, j = 0..r as int64 (row x, column j)."""
    table = np.zeros((m + 1, r + 1), dtype=np.int64)
    for x in range(m + 1):
        for j in range(r + 1):
            table[x, j] = math.comb(x, j)
    return table


def _unrank_combinations(ranks: np.ndarray, r: int, binom: np.ndarray) -> np.ndarray:
    """Combinations (n, r) of indices a_1 < ... < a_r with colex rank ``sum C(a_j, j)``."""
    out = np.empty((len(ranks), r), dtype=np.int64)
    c = ranks.astype(np.int64).copy()
    for j in range(r, 0, -1):
        a = np.searchsorted(binom[:, j], c, side="right") - 1
        out[:, j - 1] = a
        c -= binom[a, j]
    return out


def _charge_vectors(
    elements: tuple[int, ...], kind: str, pauling: bool
) -> np.ndarray:
    """Oxidation-state assignments (one state per element) that pass the electronegativity
    order test when ``pauling``: shape (k, r)."""
    from matforge.chem.elements import oxidation_state_lists, property_array

    lists = oxidation_state_lists(kind)
    states = [lists[e] for e in elements]
    if any(not s for s in states):
        return np.zeros((0, len(elements)), dtype=np.int64)
    q = np.array(list(itertools.product(*states)), dtype=np.int64).reshape(-1, len(elements))
    if pauling:
        en = property_array("smact_pauling_en" if kind == "smact" else "pauling_en")[
            list(elements)
        ]
        if np.isnan(en).any():
            return np.zeros((0, len(elements)), dtype=np.int64)
        cat = np.where(q > 0, en, -np.inf).max(axis=1)
        an = np.where(q < 0, en, np.inf).min(axis=1)
        q = q[cat < an]
    return q


class EnumeratedSpace(CandidateSpace):
    """Every composition of ``elements`` with 2..4 distinct elements and few atoms.

    A candidate is an element combination (sorted by Z) and a reduced tuple of positive integer
    amounts with at most ``max_atoms`` atoms per formula unit; positions run over arities in
    ``arities`` order, then combinations (colex order), then amount tuples. Generated directly
    as a sparse fraction matrix per chunk.

    Args:
        elements: element symbols (e.g. ``["B", "C", "N", "Ti", "W"]``).
        max_atoms: most atoms per formula unit.
        arities: numbers of distinct elements, any of 2, 3, 4.
        charge_balanced: keep compositions that some assignment of one oxidation state per
            element makes neutral (amounts as written), as :func:`matforge.chem.charge_balanced`.
        electronegativity_balanced: and with every cation less electronegative than every anion,
            as :func:`matforge.chem.electronegativity_balanced` (implies charge balance).
        oxidation_states: ``"smact"`` (default), ``"common"``, ``"icsd"`` or ``"all"``.
        exclude: compositions to drop (e.g. those already measured).
    """

    def __init__(
        self,
        elements: Iterable[str],
        max_atoms: int = 8,
        arities: Sequence[int] = (2, 3),
        *,
        charge_balanced: bool = False,
        electronegativity_balanced: bool = False,
        oxidation_states: str = "smact",
        exclude=None,
        name: str | None = None,
    ):
        symbols = sorted(set(elements), key=lambda s: Z.get(s, 0))
        unknown = [s for s in symbols if s not in Z]
        if unknown:
            raise ScreenError(f"unknown element symbol(s): {', '.join(unknown)}")
        if not all(a in (2, 3, 4) for a in arities) or not arities:
            raise ScreenError(f"arities must be among 2, 3, 4; got {tuple(arities)}")
        if max_atoms < min(arities):
            raise ScreenError(f"max_atoms={max_atoms} is below the smallest arity")
        self.elements = tuple(symbols)
        self.max_atoms = int(max_atoms)
        self.arities = tuple(int(a) for a in arities)
        self.charge_balanced = bool(charge_balanced or electronegativity_balanced)
        self.electronegativity_balanced = bool(electronegativity_balanced)
        self.oxidation_states = oxidation_states
        self.name = name or f"enumerated({len(symbols)} elements, <= {max_atoms} atoms)"
        self._known = KnownCompositions.coerce(exclude)
        self._columns = np.array([Z[s] - 1 for s in symbols], dtype=np.int64)
        m = len(symbols)
        self._binom = _binomials(m, max(self.arities))
        self._blocks = []  # (arity, stoichiometries, n_combinations, offset)
        offset = 0
        for r in self.arities:
            table = stoichiometries(r, self.max_atoms)
            n_comb = math.comb(m, r)
            self._blocks.append((r, table, n_comb, offset))
            offset += n_comb * len(table)
        self._n = offset
        self._neutral_cache: dict[tuple[int, ...], np.ndarray] = {}

    def __len__(self) -> int:
        return self._n

    def fingerprint(self) -> str:
        return _digest(
            "EnumeratedSpace", self.elements, self.max_atoms, self.arities, self.charge_balanced,
            self.electronegativity_balanced, self.oxidation_states,
            None if self._known is None else self._known.keys,
        )  # fmt: skip

    def size_by_arity(self) -> dict[int, int]:
        """Positions per arity."""
        return {r: n_comb * len(t) for r, t, n_comb, _ in self._blocks}

    def _neutral(self, cols: tuple[int, ...], table: np.ndarray) -> np.ndarray:
        """Bool per amount tuple: balanced for this element combination."""
        hit = self._neutral_cache.get(cols)
        if hit is None:
            q = _charge_vectors(cols, self.oxidation_states, self.electronegativity_balanced)
            if len(q) == 0:
                hit = np.zeros(len(table), dtype=bool)
            else:
                # exact: |amount * state| <= 20 * 8 fits float64 integers
                hit = ((table.astype(np.float64) @ q.T.astype(np.float64)) == 0).any(axis=1)
            if len(self._neutral_cache) > 100_000:
                self._neutral_cache.clear()
            self._neutral_cache[cols] = hit
        return hit

    def chunk(self, start: int, stop: int) -> CandidateChunk:
        start, stop = self._check_slice(start, stop)
        index_parts, col_parts, amt_parts, arity_parts = [], [], [], []
        filtered: dict[str, int] = {}
        for r, table, n_comb, offset in self._blocks:
            size = n_comb * len(table)
            lo, hi = max(start, offset), min(stop, offset + size)
            if lo >= hi:
                continue
            local = np.arange(lo - offset, hi - offset, dtype=np.int64)
            comb_rank, stoich = np.divmod(local, len(table))
            combos = _unrank_combinations(comb_rank, r, self._binom)  # (n, r) element slots
            cols = self._columns[combos]
            keep = np.ones(len(local), dtype=bool)
            if self.charge_balanced:
                # positions are combination-major: each combination is one contiguous run
                starts = np.flatnonzero(np.diff(comb_rank, prepend=-1))
                ends = np.append(starts[1:], len(local))
                for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                    keep[a:b] = self._neutral(tuple(cols[a].tolist()), table)[stoich[a:b]]
                name = "electronegativity" if self.electronegativity_balanced else "charge"
                filtered[name] = filtered.get(name, 0) + int((~keep).sum())
            index_parts.append(local[keep] + offset)
            col_parts.append(cols[keep].ravel())
            amt_parts.append(table[stoich[keep]].ravel())
            arity_parts.append(np.full(int(keep.sum()), r, dtype=np.int64))
        index = np.concatenate(index_parts) if index_parts else np.zeros(0, dtype=np.int64)
        arity = np.concatenate(arity_parts) if arity_parts else np.zeros(0, dtype=np.int64)
        indptr = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(arity, out=indptr[1:])
        amounts = sp.csr_matrix(
            (
                np.concatenate(amt_parts).astype(np.float64) if amt_parts else np.zeros(0),
                np.concatenate(col_parts) if col_parts else np.zeros(0, dtype=np.int64),
                indptr,
            ),
            shape=(len(index), N_ELEMENTS),
        )
        batch = CompositionBatch(amounts)
        if self._known is not None:
            _, known = _exclusion(batch, self._known)
            if known.any():
                filtered["known"] = int(known.sum())
                batch = CompositionBatch(amounts[~known])
                index = index[~known]
        return CandidateChunk(index, batch, stop - start, filtered)


# --------------------------------------------------------------------------------------------
# substitution
# --------------------------------------------------------------------------------------------

#: elements a substitution may introduce by default: all but those screens leave out
#: (:data:`matforge.chem.DEFAULT_EXCLUDED`: radioactive, noble gases)
DEFAULT_SUBSTITUTES = tuple(s for s in SYMBOLS if s not in element_set(DEFAULT_EXCLUDED))


def substitution_table(
    rule: str = "either",
    *,
    radius_tolerance: float = 0.15,
    allowed: Iterable[str] = DEFAULT_SUBSTITUTES,
) -> list[tuple[int, ...]]:
    """For each element (index Z-1), the columns of the elements that may replace it.

    ``rule``: ``"group"`` (same periodic-table column), ``"radius"`` (a shared oxidation state
    at which the Shannon ionic radii differ by at most ``radius_tolerance``, relative),
    ``"either"`` (union) or ``"both"`` (intersection). Only ``allowed`` elements are proposed.
    """
    from matforge.chem.elements import element_table

    if rule not in ("group", "radius", "either", "both"):
        raise ScreenError(f"substitution rule must be group, radius, either or both; got {rule!r}")
    table = element_table()
    column = table["Column"].to_numpy()
    radii: list[dict[int, float]] = []
    for entry in table["ionic_radii"]:
        d: dict[int, float] = {}
        for q, rad in entry or []:
            d.setdefault(int(q), float(rad))
        radii.append(d)
    ok = np.array([s in set(allowed) for s in SYMBOLS])
    out: list[tuple[int, ...]] = []
    for e in range(N_ELEMENTS):
        subs = []
        for t in range(N_ELEMENTS):
            if t == e or not ok[t]:
                continue
            group = bool(np.isfinite(column[e]) and column[e] == column[t])
            radius = any(
                q in radii[t] and abs(radii[t][q] - r0) <= radius_tolerance * r0
                for q, r0 in radii[e].items()
            )
            hit = {
                "group": group, "radius": radius, "either": group or radius, "both": group and radius
            }[rule]  # fmt: skip
            if hit:
                subs.append(t)
        out.append(tuple(subs))
    return out


class SubstitutionSpace(CandidateSpace):
    """Known compounds with one element replaced by a similar one.

    Position ``p`` decodes to (parent, element of the parent, substitute): each element of each
    parent is swapped, in turn, for each element :func:`substitution_table` allows, keeping the
    amounts. Products that contain the substitute already (it would merge with an element of the
    parent) are dropped as ``"merge"``; with ``exclude`` (e.g. the parents themselves, or all
    measured compounds) known products are dropped as ``"known"``. The same product can come
    from several parents; a screen's ``dedupe`` keeps one.

    String columns: ``formula``, ``parent``, ``substitution`` (``"Na->K"``).
    """

    def __init__(
        self,
        parents: Sequence[str],
        *,
        rule: str = "either",
        radius_tolerance: float = 0.15,
        allowed: Iterable[str] = DEFAULT_SUBSTITUTES,
        exclude=None,
        name: str = "substitution",
    ):
        self.parents = [str(p) for p in parents]
        self.rule = rule
        self.radius_tolerance = radius_tolerance
        self.allowed = tuple(allowed)
        self.name = name
        self._known = KnownCompositions.coerce(exclude)
        batch = CompositionBatch.from_formulas(self.parents, errors="collect")
        amounts = batch.amounts[batch.valid].tocsr()
        self._parent_rows = np.flatnonzero(batch.valid)
        self._amounts = amounts
        subs = substitution_table(rule, radius_tolerance=radius_tolerance, allowed=self.allowed)
        width = max((len(s) for s in subs), default=0)
        self._subs = np.full((N_ELEMENTS, max(width, 1)), -1, dtype=np.int64)
        self._n_subs = np.array([len(s) for s in subs], dtype=np.int64)
        for e, s in enumerate(subs):
            self._subs[e, : len(s)] = s
        # one "entry" per (parent, element): its candidates are consecutive positions
        per_entry = self._n_subs[amounts.indices]
        self._entry_offset = np.zeros(len(per_entry) + 1, dtype=np.int64)
        np.cumsum(per_entry, out=self._entry_offset[1:])
        self._entry_parent = np.repeat(np.arange(amounts.shape[0]), np.diff(amounts.indptr))

    def __len__(self) -> int:
        return int(self._entry_offset[-1])

    def fingerprint(self) -> str:
        return _digest(
            "SubstitutionSpace", self.parents, self.rule, self.radius_tolerance, self.allowed,
            None if self._known is None else self._known.keys,
        )  # fmt: skip

    def label_columns(self) -> tuple[str, ...]:
        return ("formula", "parent", "substitution")

    def chunk(self, start: int, stop: int) -> CandidateChunk:
        start, stop = self._check_slice(start, stop)
        pos = np.arange(start, stop, dtype=np.int64)
        entry = np.searchsorted(self._entry_offset, pos, side="right") - 1
        k = pos - self._entry_offset[entry]
        a = self._amounts
        old = a.indices[entry]
        new = self._subs[old, k]
        parent = self._entry_parent[entry]
        # rows of the parents, with the swapped column replaced
        lo, hi = a.indptr[parent], a.indptr[parent + 1]
        counts = hi - lo
        src = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(
            counts.sum()
        )
        row_of = np.repeat(np.arange(len(pos)), counts)
        cols = a.indices[src].copy()
        vals = a.data[src]
        swapped = src == np.repeat(entry, counts)
        cols[swapped] = np.repeat(new, counts)[swapped]
        # a substitute already in the parent would merge two entries: drop those products
        order = np.lexsort((cols, row_of))
        cols, vals, row_of = cols[order], vals[order], row_of[order]
        same = np.zeros(len(pos), dtype=bool)
        dup = (cols[1:] == cols[:-1]) & (row_of[1:] == row_of[:-1])
        same[row_of[1:][dup]] = True
        indptr = np.zeros(len(pos) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        amounts = sp.csr_matrix((vals, cols, indptr), shape=(len(pos), N_ELEMENTS))
        keep = ~same
        filtered: dict[str, int] = {}
        if same.any():
            filtered["merge"] = int(same.sum())
        if self._known is not None:
            batch_all = CompositionBatch(amounts)
            _, known = _exclusion(batch_all, self._known)
            known &= keep
            if known.any():
                filtered["known"] = int(known.sum())
                keep &= ~known
        amounts = amounts[keep]
        parent, old, new, pos = parent[keep], old[keep], new[keep], pos[keep]
        batch = CompositionBatch(amounts)
        parents = self.parents
        parent_rows = self._parent_rows

        def describe(sel: np.ndarray) -> dict[str, list]:
            return {
                "formula": formulas_from_amounts(amounts, sel),
                "parent": [parents[parent_rows[parent[i]]] for i in sel],
                "substitution": [f"{SYMBOLS[old[i]]}->{SYMBOLS[new[i]]}" for i in sel],
            }

        return CandidateChunk(pos, batch, stop - start, filtered, describe)


# --------------------------------------------------------------------------------------------
# composition of spaces
# --------------------------------------------------------------------------------------------


class ConcatSpace(CandidateSpace):
    """Several spaces one after another; the ``source`` column names each row's space.

    String columns are the union of the parts' columns (empty where a part lacks one).
    """

    def __init__(self, spaces: Sequence[CandidateSpace], *, name: str | None = None):
        if not spaces:
            raise ScreenError("ConcatSpace needs at least one space")
        self.spaces = list(spaces)
        self.name = name or " + ".join(s.name for s in self.spaces)
        self._offsets = np.concatenate(([0], np.cumsum([len(s) for s in self.spaces])))

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def fingerprint(self) -> str:
        return _digest("ConcatSpace", [s.fingerprint() for s in self.spaces])

    def label_columns(self) -> tuple[str, ...]:
        cols = dict.fromkeys(c for s in self.spaces for c in s.label_columns())
        return (*cols, "source")

    def chunk(self, start: int, stop: int) -> CandidateChunk:
        start, stop = self._check_slice(start, stop)
        parts = []
        for i, space in enumerate(self.spaces):
            off = int(self._offsets[i])
            lo, hi = max(start, off), min(stop, off + len(space))
            if lo < hi:
                parts.append((i, off, space.chunk(lo - off, hi - off)))
        filtered: dict[str, int] = {}
        for _, _, c in parts:
            for k, v in c.filtered.items():
                filtered[k] = filtered.get(k, 0) + v
        index = np.concatenate([c.index + off for _, off, c in parts])
        amounts = sp.vstack([c.batch.amounts for _, _, c in parts], format="csr")
        errors, base = [], 0
        for _, _, c in parts:
            errors += [(r + base, m) for r, m in c.batch.errors]
            base += len(c)
        batch = CompositionBatch(amounts, errors=errors)
        bounds = np.cumsum([0] + [len(c) for _, _, c in parts])
        columns = self.label_columns()
        names = [self.spaces[i].name for i, _, _ in parts]

        def describe(sel: np.ndarray) -> dict[str, list]:
            out = {c: [""] * len(sel) for c in columns}
            part_of = np.searchsorted(bounds, sel, side="right") - 1
            for p in np.unique(part_of):
                where = np.flatnonzero(part_of == p)
                got = parts[p][2].labels(sel[where] - bounds[p])
                for c, values in got.items():
                    for w, v in zip(where.tolist(), values, strict=True):
                        out[c][w] = v
                for w in where.tolist():
                    out["source"][w] = names[p]
            return out

        return CandidateChunk(index, batch, stop - start, filtered, describe)


class _WithoutElements(CandidateSpace):
    """Another space without the compositions that contain given elements."""

    def __init__(self, space: CandidateSpace, symbols: tuple[str, ...]):
        self.space = space
        self.symbols = symbols
        self.name = space.name

    def __len__(self) -> int:
        return len(self.space)

    def fingerprint(self) -> str:
        return _digest("WithoutElements", self.space.fingerprint(), ",".join(self.symbols))

    def label_columns(self) -> tuple[str, ...]:
        return self.space.label_columns()

    def chunk(self, start: int, stop: int) -> CandidateChunk:
        chunk = self.space.chunk(start, stop)
        drop = chunk.batch.contains_any(self.symbols)
        if not drop.any():
            return chunk
        keep = np.flatnonzero(~drop)
        filtered = {**chunk.filtered, "excluded elements": int(drop.sum())}
        inner = chunk.labels
        return CandidateChunk(
            chunk.index[keep], chunk.batch.take(keep), chunk.n_considered, filtered,
            lambda rows: inner(keep[np.asarray(rows, dtype=np.int64)]),
        )  # fmt: skip


class _Head(CandidateSpace):
    """The first ``n`` positions of another space."""

    def __init__(self, space: CandidateSpace, n: int):
        self.space = space
        self.n = int(min(n, len(space)))
        self.name = f"{space.name}[:{self.n:,}]"

    def __len__(self) -> int:
        return self.n

    def fingerprint(self) -> str:
        return _digest("Head", self.space.fingerprint(), self.n)

    def label_columns(self) -> tuple[str, ...]:
        return self.space.label_columns()

    def chunk(self, start: int, stop: int) -> CandidateChunk:
        start, stop = self._check_slice(start, stop)
        return self.space.chunk(start, stop)
