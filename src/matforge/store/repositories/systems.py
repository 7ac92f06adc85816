"""Which chemical systems the store holds, to answer "materials containing Ba and Ti" by index.

``materials.elements`` holds the sorted symbols between dashes (``-Ba-O-Ti-``) and is indexed, so
an *exact* chemical system is one index seek, but "contains Ba and Ti" is a ``LIKE '%-Ba-%'`` that
scans every material (50 ms for 10^5 materials). This keeps, in memory, how many materials each
system has (one row per distinct ``elements`` value: 4 × 10^4 for 10^5 materials): the systems
containing the wanted elements are then a set intersection, and the query becomes
``elements IN (<those systems>)``, a handful of index seeks (< 1 ms).

Kept current cheaply: each use reads ``max(materials.id)`` and adds the materials written since;
a full rebuild every :data:`FULL_REFRESH_S` seconds also catches rows that PostgreSQL committed
out of id order. Only a material of a chemical system new to the store, committed out of order
by a concurrent writer, can thus be missing from a "contains" query, and for at most that long.
When the wanted elements are common, the plain ``LIKE`` scan is used instead: it stops at the
first page, which dense matches fill at once (:meth:`ChemicalSystems.containing` estimates both).

The server keeps one in its state and passes it to the reads of
:mod:`matforge.store.repositories.measurements` as ``systems``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import sqlalchemy as sa

from matforge.store import schema

FULL_REFRESH_S = 60.0


class ChemicalSystems:
    """Counts of materials per chemical system of one store (thread-safe)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._by_element: dict[str, set[str]] = {}
        self._element_total: dict[str, int] = {}
        self._n_materials = 0
        self._max_id: int | None = None
        self._built_at = float("-inf")

    def _add(self, elements: str, n: int) -> None:
        new = elements not in self._counts
        for symbol in elements.strip("-").split("-"):
            if new:
                self._by_element.setdefault(symbol, set()).add(elements)
            self._element_total[symbol] = self._element_total.get(symbol, 0) + n
        self._counts[elements] = self._counts.get(elements, 0) + n
        self._n_materials += n

    def refresh(self) -> None:
        """Catch up with materials written since the last call."""
        mat = schema.materials
        with self._lock, self.engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(mat.c.id))).scalar() or 0
            stale = time.monotonic() - self._built_at > FULL_REFRESH_S
            if self._max_id is None or stale or top < self._max_id:
                rows = conn.execute(
                    sa.select(mat.c.elements, sa.func.count()).group_by(mat.c.elements)
                ).all()
                self._counts, self._by_element, self._element_total = {}, {}, {}
                self._n_materials = 0
                for elements, n in rows:
                    self._add(elements, n)
                self._built_at = time.monotonic()
            elif top > self._max_id:
                rows = conn.execute(
                    sa.select(mat.c.elements).where(mat.c.id > self._max_id, mat.c.id <= top)
                ).scalars()
                for elements in rows:
                    self._add(elements, 1)
            self._max_id = top

    def containing(self, symbols: Sequence[str], limit: int | None = None) -> list[str] | None:
        """The systems containing all ``symbols`` (sorted) when an ``IN`` over them is cheaper
        than scanning ``materials`` for the first ``limit`` matches (all with None); else None.

        The estimate: a scan reads ``limit × N / matches`` rows (matches spread evenly over N
        materials) at ~0.6 µs each; the ``IN`` seeks each system (~5 µs) and sorts its matches
        (~2 µs each).
        """
        self.refresh()
        symbols = set(symbols)
        if not symbols:
            return None
        with self._lock:
            n_all = self._n_materials
            if len(symbols) == 1:
                (symbol,) = symbols
                found = self._by_element.get(symbol, set())
                total = self._element_total.get(symbol, 0)
            else:
                rarest = min(symbols, key=lambda s: self._element_total.get(s, 0))
                found = self._by_element.get(rarest, set()).intersection(
                    *(self._by_element.get(s, set()) for s in symbols - {rarest})
                )
                total = sum(self._counts[s] for s in found)
            scanned = n_all if limit is None else min(n_all, (limit + 1) * n_all / max(total, 1))
            if len(found) * 5 + total * 2 >= scanned * 0.6:
                return None
            return sorted(found)
