"""Background jobs (``jobs``) and the projects each reads (``job_projects``).

The server's :class:`~matforge.server.jobs.JobRunner` decides when a job is claimed, renewed,
re-queued or failed; this module holds the statements. A job's status and result are readable
by its owner while the owner can read every project it read *now*: :func:`list_readable` and
:func:`get_readable` take those ``project_ids`` (visibility, as everywhere).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

import sqlalchemy as sa

from matforge.store import accounts

j, jp = accounts.jobs, accounts.job_projects

#: the columns of a ``jobs`` row
COLUMNS = tuple(c.name for c in j.c)


def _readable_by(user_id: int, project_ids: Collection[int]) -> sa.ColumnElement[bool]:
    """The jobs of user ``user_id`` that read no project outside ``project_ids``."""
    hidden = (
        sa.select(jp.c.job_id)
        .where(jp.c.job_id == j.c.id, jp.c.project_id.not_in(list(project_ids)))
        .exists()
    )
    return sa.and_(j.c.owner_id == user_id, ~hidden)


def list_readable(
    conn: sa.Connection, user_id: int, project_ids: Collection[int], limit: int = 1000
) -> list[sa.Row]:
    """The jobs of ``user_id`` readable with ``project_ids``, newest first."""
    stmt = sa.select(j).where(_readable_by(user_id, project_ids))
    return conn.execute(stmt.order_by(j.c.id.desc()).limit(limit)).all()


def get_readable(
    conn: sa.Connection, job_id: int, user_id: int, project_ids: Collection[int]
) -> sa.Row | None:
    """Job ``job_id`` if it is of ``user_id`` and readable with ``project_ids``, else None."""
    stmt = sa.select(j).where(j.c.id == job_id, _readable_by(user_id, project_ids))
    return conn.execute(stmt).first()


def get(conn: sa.Connection, job_id: int) -> sa.Row | None:
    """The row of job ``job_id``, or None."""
    return conn.execute(sa.select(j).where(j.c.id == job_id)).first()


def insert(
    conn: sa.Connection,
    kind: str,
    owner_id: int,
    params: dict,
    project_ids: Iterable[int],
    now: datetime,
) -> int:
    """Queue a job (and the projects it reads); returns its id."""
    job_id = conn.execute(
        sa.insert(j).values(
            kind=kind,
            owner_id=owner_id,
            status="queued",
            progress=0.0,
            message="queued",
            params=params,
            attempts=0,
            created_at=now,
        )
    ).inserted_primary_key[0]
    projects = sorted({int(p) for p in project_ids})
    if projects:
        conn.execute(sa.insert(jp), [{"job_id": job_id, "project_id": p} for p in projects])
    return job_id


def set_params(conn: sa.Connection, job_id: int, params: dict) -> None:
    """Replace the parameters of job ``job_id``."""
    conn.execute(sa.update(j).where(j.c.id == job_id).values(params=params))


# --- the runner's statements ------------------------------------------------------------------


def running_elsewhere(conn: sa.Connection, worker_id: str) -> list[sa.Row]:
    """``id, kind, worker, attempts, heartbeat_at, lease_expires_at`` of the running jobs of
    workers other than ``worker_id``."""
    return conn.execute(
        sa.select(
            j.c.id,
            j.c.kind,
            j.c.worker,
            j.c.attempts,
            j.c.heartbeat_at,
            j.c.lease_expires_at,
        ).where(j.c.status == "running", j.c.worker.is_distinct_from(worker_id))
    ).all()


#: Why a running job is taken back, re-checked as it is: ``("worker", w)`` its worker is still
#: ``w``, ``("lease_expired", now)`` its lease still ended by ``now`` (a heartbeat renewing it
#: meanwhile wins), ``("no_lease", None)`` it still has no lease.
Guard = tuple[str, object]


def _guard(guard: Guard):
    what, value = guard
    if what == "worker":
        return j.c.worker.is_not_distinct_from(value)
    if what == "lease_expired":
        return j.c.lease_expires_at <= value
    if what == "no_lease":
        return j.c.lease_expires_at.is_(None)
    raise ValueError(f"unknown guard {what!r}")


def take_back(conn: sa.Connection, job_id: int, guard: Guard, **values) -> int:
    """Set ``values`` on running job ``job_id`` if ``guard`` still holds; 1 if it did, else 0."""
    where = (j.c.id == job_id, j.c.status == "running", _guard(guard))
    return conn.execute(sa.update(j).where(*where).values(**values)).rowcount


def queued(conn: sa.Connection, kinds: Iterable[str], limit: int = 5) -> list[int]:
    """Ids of the oldest queued jobs of ``kinds``."""
    return list(
        conn.execute(
            sa.select(j.c.id)
            .where(j.c.status == "queued", j.c.kind.in_(list(kinds)))
            .order_by(j.c.id)
            .limit(limit)
        ).scalars()
    )


def claim(conn: sa.Connection, job_id: int, **values) -> sa.Row | None:
    """Take queued job ``job_id`` (set ``values``, count an attempt); its ``kind``,
    ``owner_id`` and ``params``, or None when another process took it first."""
    claimed = conn.execute(
        sa.update(j)
        .where(j.c.id == job_id, j.c.status == "queued")
        .values(status="running", attempts=j.c.attempts + 1, **values)
    ).rowcount
    if claimed != 1:
        return None
    return conn.execute(
        sa.select(j.c.kind, j.c.owner_id, j.c.params).where(j.c.id == job_id)
    ).one()


def renew(conn: sa.Connection, job_ids: Iterable[int], worker_id: str, **values) -> None:
    """Set ``values`` (a new lease) on the running jobs ``job_ids`` of ``worker_id``."""
    conn.execute(
        sa.update(j)
        .where(j.c.id.in_(list(job_ids)), j.c.worker == worker_id, j.c.status == "running")
        .values(**values)
    )


def update(conn: sa.Connection, job_id: int, worker_id: str, **values) -> None:
    """Set ``values`` on job ``job_id`` while ``worker_id`` holds it."""
    conn.execute(sa.update(j).where(j.c.id == job_id, j.c.worker == worker_id).values(**values))
