"""Deleting measurements and datasets, and the audit trail that keeps a record of each deletion.

Measurements are facts a lab relies on, so they are never lost without trace: every deletion
writes one ``audit_log`` row in the same transaction as the ``DELETE`` (both happen, or
neither), with who, when and what:

* a deleted **measurement** is kept whole in ``detail`` (formula as ingested, property, value,
  unit, uncertainty, method, conditions, source, raw value and unit, flag, its dataset, who
  wrote it and when), so the row can be read back, or re-entered, from the log alone;
* a deleted **dataset** (an ingested file or one JSON batch, with all its measurements) is
  recorded by its provenance (name, source, checksum, rows ingested, who and when) and the number
  of measurements it still held per property. A file's checksum names the file it came from; the
  values themselves are in that file, not copied into the log.

The table lives on :data:`matforge.store.schema.metadata` and is created by migration ``0009``.
Callers decide who may delete (the server: owners and editors of the project); these functions
take an open write transaction and trust it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from matforge.store import schema
from matforge.store.schema import BigId, JSONType, metadata

Timestamp = sa.DateTime(timezone=True)

#: What an audit row records.
ACTIONS = ("delete_measurement", "delete_dataset")

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    # No foreign key: a project's record of deletions must outlive the rows it describes.
    sa.Column("project_id", sa.Integer, nullable=False, index=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    # the store row id of what was deleted (a measurement or a dataset)
    sa.Column("target_id", BigId, nullable=False),
    sa.Column("detail", JSONType, nullable=False),
)

# Measurements per DELETE ... WHERE id IN (...): well under SQLite's parameter limit.
_IDS_PER_STATEMENT = 5_000


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)).isoformat()


def measurement_rows(conn: sa.Connection, ids: Iterable[int]) -> list[sa.Row]:
    """The measurements ``ids`` with their project, formula and property (unknown ids are absent)."""
    m, mat, p, d = schema.measurements, schema.materials, schema.properties, schema.datasets
    ids = sorted({int(i) for i in ids})
    rows: list[sa.Row] = []
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = ids[start : start + _IDS_PER_STATEMENT]
        rows += conn.execute(
            sa.select(
                m,
                d.c.project_id,
                mat.c.formula,
                p.c.name.label("property"),
            )
            .join_from(m, d, m.c.dataset_id == d.c.id)
            .join(mat, m.c.material_id == mat.c.id)
            .join(p, m.c.property_id == p.c.id)
            .where(m.c.id.in_(chunk))
            .order_by(m.c.id)
        ).all()
    return rows


def _measurement_detail(r: sa.Row) -> dict:
    return {
        "formula": r.formula,
        "formula_as_ingested": r.formula_as_ingested,
        "property": r.property,
        "value": r.value,
        "unit": r.unit,
        "uncertainty": r.uncertainty,
        "method": r.method,
        "conditions": r.conditions,
        "source": r.source,
        "raw_value": r.raw_value,
        "raw_unit": r.raw_unit,
        "flag": r.flag,
        "dataset_id": r.dataset_id,
        "material_id": r.material_id,
        "created_at": _iso(r.created_at),
        "created_by": r.created_by,
    }


def delete_measurements(conn: sa.Connection, ids: Iterable[int], actor: str) -> list[dict]:
    """Delete the measurements ``ids`` and log each; returns the audit entries written.

    Unknown ids are ignored (the caller has checked what the user may see); an id given twice is
    deleted once.
    """
    rows = measurement_rows(conn, ids)
    if not rows:
        return []
    at = _now()
    entries = [
        {
            "project_id": r.project_id,
            "at": at,
            "actor": actor,
            "action": "delete_measurement",
            "target_id": r.id,
            "detail": _measurement_detail(r),
        }
        for r in rows
    ]
    conn.execute(sa.insert(audit_log), entries)
    m = schema.measurements
    found = [r.id for r in rows]
    for start in range(0, len(found), _IDS_PER_STATEMENT):
        conn.execute(sa.delete(m).where(m.c.id.in_(found[start : start + _IDS_PER_STATEMENT])))
    return entries


def delete_dataset(conn: sa.Connection, dataset_id: int, actor: str) -> dict | None:
    """Delete dataset ``dataset_id`` with every measurement it holds, and log it; returns the
    audit entry, or None when there is no such dataset."""
    d, m, p = schema.datasets, schema.measurements, schema.properties
    ds = conn.execute(sa.select(d).where(d.c.id == dataset_id)).first()
    if ds is None:
        return None
    counts = conn.execute(
        sa.select(p.c.name, sa.func.count())
        .join_from(m, p, m.c.property_id == p.c.id)
        .where(m.c.dataset_id == dataset_id)
        .group_by(p.c.name)
        .order_by(p.c.name)
    ).all()
    entry = {
        "project_id": ds.project_id,
        "at": _now(),
        "actor": actor,
        "action": "delete_dataset",
        "target_id": ds.id,
        "detail": {
            "name": ds.name,
            "source": ds.source,
            "checksum": ds.checksum,
            "n_rows": ds.n_rows,
            "created_at": _iso(ds.created_at),
            "created_by": ds.created_by,
            "measurements_deleted": {name: int(n) for name, n in counts},
        },
    }
    conn.execute(sa.insert(audit_log), [entry])
    conn.execute(sa.delete(m).where(m.c.dataset_id == dataset_id))
    conn.execute(sa.delete(d).where(d.c.id == dataset_id))
    return entry


def entries(
    conn: sa.Connection,
    project_ids: Iterable[int],
    *,
    after: int | None = None,
    limit: int | None = None,
) -> list[sa.Row]:
    """Audit rows of the projects ``project_ids``, oldest first (``after``: an audit row id)."""
    stmt = (
        sa.select(audit_log)
        .where(audit_log.c.project_id.in_(sorted({int(i) for i in project_ids})))
        .order_by(audit_log.c.id)
    )
    if after is not None:
        stmt = stmt.where(audit_log.c.id > after)
    if limit is not None:
        stmt = stmt.limit(limit)
    return conn.execute(stmt).all()


def select_log(project: str | None = None) -> sa.Select:
    """The audit log (of the project named ``project``, or all), oldest first: ``id``,
    ``project`` (its name), ``at``, ``actor``, ``action``, ``target_id``, ``detail``."""
    p = schema.projects
    stmt = (
        sa.select(
            audit_log.c.id,
            p.c.name.label("project"),
            audit_log.c.at,
            audit_log.c.actor,
            audit_log.c.action,
            audit_log.c.target_id,
            audit_log.c.detail,
        )
        .join_from(audit_log, p, audit_log.c.project_id == p.c.id, isouter=True)
        .order_by(audit_log.c.id)
    )
    return stmt if project is None else stmt.where(p.c.name == project)
