"""Tables of sequential-learning campaigns (:mod:`matforge.design.campaign`).

They live on :data:`matforge.store.schema.metadata` (same naming convention, same database) and
are created by migrations ``0003`` and ``0004``. A campaign's whole state is in these rows, so a
process killed at any point loses nothing that was committed, and every write below is one transaction:

* ``campaigns``: one row per campaign, of a project (made through the server) or of none
  (``project_id`` NULL: made with ``matforge campaign``); names are unique per project and among
  the campaigns without one. ``config`` holds the design space (``as_dict``), the
  objectives, constraints, model / acquisition / batch-strategy specs and the seed.
* ``campaign_batches``: one row per call of ``suggest``: the model that produced the batch (class,
  parameters, training-set size and digest, matforge version) and the acquisition used.
* ``campaign_suggestions``: every proposed experiment with its design values, its key (the id
  used to match results to it), the predictions and acquisition value it had when chosen, and
  its status: ``pending`` until a result arrives, then ``observed`` (or ``cancelled``).
* ``campaign_observations``: every measured result (property values by name), linked to the
  suggestion it answers when there is one; results from before the campaign (``--from``) and
  unplanned experiments have none.

:class:`CampaignRepository` holds every query of these tables: the campaign object, the
``matforge campaign`` commands and the server all go through it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from matforge.store.schema import BigId, JSONType, metadata

SUGGESTION_STATUSES = ("pending", "observed", "cancelled")

Timestamp = sa.DateTime(timezone=True)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=True, index=True),
    sa.UniqueConstraint("project_id", "name"),
    # NULLs are distinct in the constraint above: campaigns without a project need their own
    sa.Index(
        "ix_campaigns_name_without_project",
        "name",
        unique=True,
        sqlite_where=sa.text("project_id IS NULL"),
        postgresql_where=sa.text("project_id IS NULL"),
    ),
)

campaign_batches = sa.Table(
    "campaign_batches",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False),
    # 1, 2, ... per campaign: the round of suggestions
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("model", JSONType, nullable=True),
    sa.Column("acquisition", JSONType, nullable=True),
    sa.Column("strategy", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("campaign_id", "number"),
)

campaign_suggestions = sa.Table(
    "campaign_suggestions",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column(
        "batch_id", BigId, sa.ForeignKey("campaign_batches.id"), nullable=False, index=True
    ),
    # order in which the batch strategy chose it (0 = first)
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("key", sa.String(1000), nullable=False),
    sa.Column("design", JSONType, nullable=False),
    # {objective property: {"mean": ..., "std": ...}} in the property's units
    sa.Column("prediction", JSONType, nullable=True),
    sa.Column("acquisition_value", sa.Float, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=True),
    sa.CheckConstraint("status IN ('pending', 'observed', 'cancelled')", name="status"),
    sa.Index("ix_campaign_suggestions_campaign_id_status", "campaign_id", "status"),
)

campaign_observations = sa.Table(
    "campaign_observations",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False, index=True),
    sa.Column(
        "suggestion_id", BigId, sa.ForeignKey("campaign_suggestions.id"), nullable=True,
        index=True,
    ),
    sa.Column("key", sa.String(1000), nullable=False),
    sa.Column("design", JSONType, nullable=False),
    # {property: value} in the property's units; a missing property is absent, not null
    sa.Column("values", JSONType, nullable=False),
    # "initial" (data the campaign started from), "observe" (results) and a file name, if any
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)


# -----------------------------------------------------------------------------------------------
# The repository: every query of the tables above
# -----------------------------------------------------------------------------------------------

_STATE_TABLES = {"observations": campaign_observations, "suggestions": campaign_suggestions,
                 "batches": campaign_batches}
_SUMMARY = (campaigns.c.id, campaigns.c.project_id, campaigns.c.name, campaigns.c.config,
            campaigns.c.created_at)


def _in_project(project_id: int | None):
    """SQL condition: the campaign belongs to project ``project_id`` (None: to no project)."""
    col = campaigns.c.project_id
    return col.is_(None) if project_id is None else col == project_id


def _row(table, values: Mapping) -> dict:
    """The columns of ``table`` among ``values``, without the row id (the database gives it)."""
    return {c: values[c] for c in table.c.keys() if c != "id" and c in values}


def not_pending(suggestions: Sequence[Mapping], pending: Iterable[str]) -> list[int]:
    """Positions of the ``suggestions`` a new batch records: those whose ``key`` is neither
    pending already nor repeated earlier in the batch (the one rule for the in-memory log and
    the store)."""
    taken, kept = set(pending), []
    for i, s in enumerate(suggestions):
        if s["key"] not in taken:
            taken.add(s["key"])
            kept.append(i)
    return kept


class CampaignRepository:
    """Reads and writes the campaign tables (the only code that does).

    A campaign's state (batches, suggestions, observations) is read whole, as DataFrames of the
    tables' columns, and written one step at a time: :meth:`add_batch` (a batch of suggestions)
    and :meth:`record` (a batch of results) are each one transaction that locks the campaign's
    row first (PostgreSQL: one step at a time per campaign; SQLite: one writer at a time).
    Visibility: a campaign of a project is reached through :meth:`of_projects` (the projects the
    caller may read) or :meth:`get` with ``projects_only``; one of no project (``matforge
    campaign``) by name with :meth:`find`.
    """

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # -- campaigns -----------------------------------------------------------------------------

    def create(self, name: str, config: dict, *, created_by: str, created_at: datetime,
               project_id: int | None = None, batches: Sequence[Mapping] = (),
               suggestions: Sequence[Mapping] = (),
               observations: Sequence[Mapping] = ()) -> int | None:
        """Insert a campaign with its history so far (rows of :meth:`export`'s shape, whose
        ``id`` / ``batch_id`` / ``suggestion_id`` refer to each other and are renumbered), in one
        transaction. Returns the new campaign's id, or None when the name is taken (in the
        project, or among the campaigns of none) and nothing was written."""
        from matforge.store.database import write_transaction

        with write_transaction(self.engine) as conn:
            taken = conn.execute(sa.select(campaigns.c.id).where(
                campaigns.c.name == name, _in_project(project_id))).first()
            if taken is not None:
                return None
            cid = conn.execute(campaigns.insert().values(
                name=name, config=config, created_at=created_at, created_by=created_by,
                project_id=project_id)).inserted_primary_key[0]
            batch_ids, suggestion_ids = {}, {}
            for b in batches:
                batch_ids[b["id"]] = conn.execute(campaign_batches.insert().values(
                    **_row(campaign_batches, {**b, "campaign_id": cid}))).inserted_primary_key[0]
            for s in suggestions:
                row = {**s, "campaign_id": cid, "batch_id": batch_ids[s["batch_id"]]}
                suggestion_ids[s["id"]] = conn.execute(campaign_suggestions.insert().values(
                    **_row(campaign_suggestions, row))).inserted_primary_key[0]
            rows = [_row(campaign_observations, {
                **o, "campaign_id": cid,
                "suggestion_id": None if o.get("suggestion_id") is None
                else suggestion_ids[o["suggestion_id"]]}) for o in observations]
            if rows:
                conn.execute(campaign_observations.insert(), rows)
        return cid

    def find(self, name: str, project_id: int | None = None):
        """The row (id, project_id, name, config, created_at) of the campaign ``name`` of
        project ``project_id`` (None: of no project), or None."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(*_SUMMARY).where(
                campaigns.c.name == name, _in_project(project_id))).first()

    def get(self, campaign_id: int, *, projects_only: bool = False):
        """The row (id, project_id, name, config, created_at) of a campaign, or None (with
        ``projects_only``, also for a campaign of no project)."""
        where = [campaigns.c.id == campaign_id]
        if projects_only:
            where.append(campaigns.c.project_id.is_not(None))
        with self.engine.connect() as conn:
            return conn.execute(sa.select(*_SUMMARY).where(*where)).first()

    def of_projects(self, project_ids: Collection[int]) -> list:
        """Rows (id, project_id, name, config, created_at) of the campaigns of these projects,
        oldest first."""
        if not project_ids:
            return []
        with self.engine.connect() as conn:
            return conn.execute(sa.select(*_SUMMARY).where(
                campaigns.c.project_id.in_(list(project_ids))).order_by(campaigns.c.id)).all()

    def names(self, project_id: int | None = None) -> list[str]:
        """Names of the campaigns of project ``project_id`` (None: of none), oldest first."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(campaigns.c.name).where(
                _in_project(project_id)).order_by(campaigns.c.id)).scalars())

    def overview(self, project_id: int | None = None) -> list:
        """Per campaign of project ``project_id`` (None: of none), oldest first: name, config,
        created_at, created_by, results (observations) and pending (suggestions), counted by
        grouped queries (no campaign's history is loaded)."""
        c, o, s = campaigns, campaign_observations, campaign_suggestions
        results = (sa.select(o.c.campaign_id, sa.func.count().label("n"))
                   .group_by(o.c.campaign_id).subquery())
        pending = (sa.select(s.c.campaign_id, sa.func.count().label("n"))
                   .where(s.c.status == "pending").group_by(s.c.campaign_id).subquery())
        stmt = (sa.select(c.c.name, c.c.config, c.c.created_at, c.c.created_by,
                          sa.func.coalesce(results.c.n, 0).label("results"),
                          sa.func.coalesce(pending.c.n, 0).label("pending"))
                .outerjoin(results, results.c.campaign_id == c.c.id)
                .outerjoin(pending, pending.c.campaign_id == c.c.id)
                .where(_in_project(project_id)).order_by(c.c.id))
        with self.engine.connect() as conn:
            return conn.execute(stmt).all()

    # -- one campaign's state ------------------------------------------------------------------

    def log(self, campaign_id: int) -> StoredCampaignLog:
        """The state of one campaign, as :class:`matforge.design.campaign.Campaign` uses it."""
        return StoredCampaignLog(self, int(campaign_id))

    def _frame(self, table, campaign_id: int, *where) -> pd.DataFrame:
        stmt = sa.select(table).where(table.c.campaign_id == campaign_id, *where)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(table.c.id)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=list(table.c.keys()))

    def observations(self, campaign_id: int) -> pd.DataFrame:
        """Every observation of the campaign, in the order recorded (the table's columns)."""
        return self._frame(campaign_observations, campaign_id)

    def suggestions(self, campaign_id: int, status: str | None = None) -> pd.DataFrame:
        """Every suggestion (of ``status``, if given), in the order made."""
        where = [campaign_suggestions.c.status == status] if status else []
        return self._frame(campaign_suggestions, campaign_id, *where)

    def batches(self, campaign_id: int) -> pd.DataFrame:
        """One row per batch of suggestions, in order."""
        return self._frame(campaign_batches, campaign_id)

    def suggestion_ids(self, campaign_id: int, ids: Collection[int]) -> set[int]:
        """Those of ``ids`` that are suggestions of the campaign."""
        S = campaign_suggestions
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(S.c.id).where(
                S.c.campaign_id == campaign_id, S.c.id.in_([int(i) for i in ids]))).scalars())

    def export(self, campaign_id: int) -> dict[str, list[dict]]:
        """The campaign's rows by table (``batches``, ``suggestions``, ``observations``), in
        order, as :meth:`create` takes them."""
        out = {}
        with self.engine.connect() as conn:
            for what, table in _STATE_TABLES.items():
                out[what] = [dict(r) for r in conn.execute(
                    sa.select(table).where(table.c.campaign_id == campaign_id)
                    .order_by(table.c.id)).mappings()]
        return out

    @staticmethod
    def _lock(conn: sa.Connection, campaign_id: int) -> None:
        # PostgreSQL: one step of a campaign at a time (SQLite's writer lock already is)
        conn.execute(sa.select(campaigns.c.id).where(campaigns.c.id == campaign_id)
                     .with_for_update())

    def add_batch(self, campaign_id: int, batch: Mapping, suggestions: Sequence[Mapping]
                  ) -> tuple[int, list[int], list[int]]:
        """Record a batch of suggestions (one transaction): the batch (``model``,
        ``acquisition``, ``strategy``, ``created_at``) numbered after the last one, and its
        suggestions, less those whose ``key`` is pending already (another process may have
        suggested since the caller read the state: a pending experiment is never proposed
        twice). Returns (batch number, ids of the suggestions written, their positions in
        ``suggestions``)."""
        from matforge.store.database import write_transaction

        S = campaign_suggestions
        with write_transaction(self.engine) as conn:
            self._lock(conn, campaign_id)
            number = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(campaign_batches.c.number), 0))
                .where(campaign_batches.c.campaign_id == campaign_id)
            ).scalar_one() + 1
            taken = set(conn.execute(sa.select(S.c.key).where(
                S.c.campaign_id == campaign_id, S.c.status == "pending")).scalars())
            batch_id = conn.execute(campaign_batches.insert().values(
                **_row(campaign_batches, {**batch, "campaign_id": campaign_id,
                                          "number": number}))).inserted_primary_key[0]
            kept = not_pending(suggestions, taken)
            ids = []
            for i in kept:
                row = _row(S, {**suggestions[i], "campaign_id": campaign_id,
                               "batch_id": batch_id})
                # one by one: the ids are needed, and batches are small
                ids.append(conn.execute(S.insert().values(**row)).inserted_primary_key[0])
        return number, ids, kept

    def record(self, campaign_id: int, plan: Callable, now: datetime) -> list[int]:
        """Record a batch of results (one transaction). ``plan(known, stored)`` is called with
        the campaign locked: ``known`` maps each suggestion id to its row (``id``, ``key``,
        ``design``, ``status``), ``stored`` lists the (design, values) of the observations
        already recorded; it returns the observation rows to write (without ``campaign_id``)
        and the ids of the suggestions they answer, which become ``observed``. An exception
        from ``plan`` writes nothing. Returns the new observations' ids."""
        from matforge.store.database import write_transaction

        S, Obs = campaign_suggestions, campaign_observations
        with write_transaction(self.engine) as conn:
            self._lock(conn, campaign_id)
            known = {r.id: r for r in conn.execute(
                sa.select(S.c.id, S.c.key, S.c.design, S.c.status).where(
                    S.c.campaign_id == campaign_id)).all()}
            stored = [(r.design, r.values) for r in conn.execute(
                sa.select(Obs.c.design, Obs.c["values"]).where(Obs.c.campaign_id == campaign_id))]
            rows, answered = plan(known, stored)
            ids = [conn.execute(Obs.insert().values(**_row(Obs, {**r, "campaign_id": campaign_id})))
                   .inserted_primary_key[0] for r in rows]
            if answered:
                conn.execute(S.update().where(S.c.id.in_(list(answered)),
                                              S.c.status != "observed")
                             .values(status="observed", updated_at=now))
        return ids

    def cancel(self, campaign_id: int, suggestion_ids: Collection[int] | None,
               now: datetime) -> int:
        """Mark pending suggestions (those of ``suggestion_ids``; None: all) cancelled; returns
        how many were."""
        from matforge.store.database import write_transaction

        S = campaign_suggestions
        stmt = S.update().where(S.c.campaign_id == campaign_id, S.c.status == "pending")
        if suggestion_ids is not None:
            stmt = stmt.where(S.c.id.in_([int(i) for i in suggestion_ids]))
        with write_transaction(self.engine) as conn:
            return conn.execute(stmt.values(status="cancelled", updated_at=now)).rowcount


class StoredCampaignLog:
    """One campaign's state in the store: what
    :class:`~matforge.design.campaign_log.MemoryLog` is in memory, method for method."""

    def __init__(self, repository: CampaignRepository, campaign_id: int):
        self.repository = repository
        self.campaign_id = campaign_id

    def observations(self) -> pd.DataFrame:
        return self.repository.observations(self.campaign_id)

    def suggestions(self, status: str | None = None) -> pd.DataFrame:
        return self.repository.suggestions(self.campaign_id, status)

    def batches(self) -> pd.DataFrame:
        return self.repository.batches(self.campaign_id)

    def export(self) -> dict[str, list[dict]]:
        return self.repository.export(self.campaign_id)

    def add_batch(self, batch: Mapping, suggestions: Sequence[Mapping]):
        return self.repository.add_batch(self.campaign_id, batch, suggestions)

    def record(self, plan: Callable, now: datetime) -> list[int]:
        return self.repository.record(self.campaign_id, plan, now)

    def cancel(self, suggestion_ids: Collection[int] | None, now: datetime) -> int:
        return self.repository.cancel(self.campaign_id, suggestion_ids, now)
