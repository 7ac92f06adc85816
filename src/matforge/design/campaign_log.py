"""A campaign's history in memory: its batches, suggestions and observations.

:class:`MemoryLog` is what a :class:`~matforge.design.campaign.Campaign` built in a REPL or a
notebook keeps its state in; a campaign kept in a store uses
:class:`matforge.store.campaigns.StoredCampaignLog` instead, which answers the same methods from
the store's tables. Both hold the same rows (the columns of the store's tables, JSON values
round-tripped through JSON as the store would), so a campaign behaves the same in memory and in
a store, and :meth:`export` is what saving it copies.

A step is all or nothing: :meth:`add_batch` and :meth:`record` change nothing when they raise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from types import SimpleNamespace

import pandas as pd

from matforge.store.campaigns import not_pending

__all__ = ["MemoryLog"]

_COLUMNS = {
    "batches": ["id", "campaign_id", "number", "model", "acquisition", "strategy", "created_at"],
    "suggestions": ["id", "campaign_id", "batch_id", "position", "key", "design", "prediction",
                    "acquisition_value", "status", "created_at", "updated_at"],
    "observations": ["id", "campaign_id", "suggestion_id", "key", "design", "values", "source",
                     "created_at", "created_by"],
}
_JSON = {"model", "acquisition", "design", "prediction", "values"}


def _stored(row: Mapping, columns: Sequence[str]) -> dict:
    """``row`` as the store would give it back: every column (absent: None), JSON values
    through JSON."""
    return {c: json.loads(json.dumps(row.get(c))) if c in _JSON else row.get(c)
            for c in columns}


class MemoryLog:
    """The history of a campaign that lives in memory (see the module docstring)."""

    def __init__(self):
        self._rows: dict[str, list[dict]] = {k: [] for k in _COLUMNS}

    def _insert(self, what: str, row: Mapping) -> int:
        rows = self._rows[what]
        new = _stored({**row, "id": (rows[-1]["id"] + 1) if rows else 1}, _COLUMNS[what])
        rows.append(new)
        return new["id"]

    def _frame(self, what: str, rows: list[dict] | None = None) -> pd.DataFrame:
        rows = self._rows[what] if rows is None else rows
        return pd.DataFrame([dict(r) for r in rows], columns=_COLUMNS[what])

    def observations(self) -> pd.DataFrame:
        return self._frame("observations")

    def suggestions(self, status: str | None = None) -> pd.DataFrame:
        rows = self._rows["suggestions"]
        return self._frame("suggestions",
                           [r for r in rows if r["status"] == status] if status else None)

    def batches(self) -> pd.DataFrame:
        return self._frame("batches")

    def export(self) -> dict[str, list[dict]]:
        """Every row by table, in order (what saving the campaign copies)."""
        return {what: [dict(r) for r in rows] for what, rows in self._rows.items()}

    def add_observations(self, rows: Sequence[Mapping]) -> list[int]:
        """Record observations (results from before the campaign)."""
        return [self._insert("observations", r) for r in rows]

    def add_batch(self, batch: Mapping, suggestions: Sequence[Mapping]
                  ) -> tuple[int, list[int], list[int]]:
        """Record a batch of suggestions, less those whose key is pending already; returns
        (batch number, ids of the suggestions recorded, their positions in ``suggestions``)."""
        number = max((b["number"] for b in self._rows["batches"]), default=0) + 1
        taken = {s["key"] for s in self._rows["suggestions"] if s["status"] == "pending"}
        batch_id = self._insert("batches", {**batch, "number": number})
        kept = not_pending(suggestions, taken)
        ids = [self._insert("suggestions", {**suggestions[i], "batch_id": batch_id}) for i in kept]
        return number, ids, kept

    def record(self, plan: Callable, now: datetime) -> list[int]:
        """Record a batch of results: ``plan(known, stored)`` (see
        :meth:`matforge.store.campaigns.CampaignRepository.record`) decides what to write."""
        known = {r["id"]: SimpleNamespace(id=r["id"], key=r["key"],
                                          design=json.loads(json.dumps(r["design"])),
                                          status=r["status"])
                 for r in self._rows["suggestions"]}
        stored = [(json.loads(json.dumps(r["design"])), json.loads(json.dumps(r["values"])))
                  for r in self._rows["observations"]]
        rows, answered = plan(known, stored)
        ids = [self._insert("observations", r) for r in rows]
        answered = set(answered)
        for s in self._rows["suggestions"]:
            if s["id"] in answered and s["status"] != "observed":
                s["status"], s["updated_at"] = "observed", now
        return ids

    def cancel(self, suggestion_ids: Collection[int] | None, now: datetime) -> int:
        """Mark pending suggestions (of ``suggestion_ids``; None: all) cancelled."""
        wanted = None if suggestion_ids is None else {int(i) for i in suggestion_ids}
        n = 0
        for s in self._rows["suggestions"]:
            if s["status"] == "pending" and (wanted is None or s["id"] in wanted):
                s["status"], s["updated_at"] = "cancelled", now
                n += 1
        return n
