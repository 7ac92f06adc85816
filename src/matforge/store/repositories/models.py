"""The server's trained models (``models``), each with the job that trains it.

A model follows its project's access: :func:`list_in_projects` and the callers of
:func:`with_job` check ``project_id`` against the reader's ``project_ids``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from matforge.store import accounts

mo, j, u = accounts.models, accounts.jobs, accounts.users


def _select_with_job() -> sa.Select:
    """Models with ``owner`` (the user's name) and their job's columns prefixed ``j_``."""
    return (
        sa.select(
            mo,
            u.c.name.label("owner"),
            *[c.label(f"j_{c.name}") for c in j.c],
        )
        .join_from(mo, j, mo.c.job_id == j.c.id)
        .join(u, mo.c.owner_id == u.c.id)
    )


def with_job(conn: sa.Connection, model_id: int) -> sa.Row | None:
    """Model ``model_id`` with its owner's name and its job (columns ``j_<name>``), or None."""
    return conn.execute(_select_with_job().where(mo.c.id == model_id)).first()


def list_in_projects(conn: sa.Connection, project_ids: Sequence[int]) -> list[sa.Row]:
    """The models of ``project_ids`` (as :func:`with_job`), newest first."""
    stmt = _select_with_job().where(mo.c.project_id.in_(list(project_ids)))
    return conn.execute(stmt.order_by(mo.c.id.desc())).all()


def get(conn: sa.Connection, model_id: int) -> sa.Row | None:
    """The ``models`` row of ``model_id``, or None."""
    return conn.execute(sa.select(mo).where(mo.c.id == model_id)).first()


def insert(
    conn: sa.Connection,
    *,
    owner_id: int,
    project_id: int,
    job_id: int,
    name: str,
    property: str,
    unit: str | None,
    params: dict,
    now: datetime,
) -> int:
    """Add a model (trained by job ``job_id``); returns its id."""
    return conn.execute(
        sa.insert(mo).values(
            owner_id=owner_id,
            project_id=project_id,
            job_id=job_id,
            name=name,
            property=property,
            unit=unit,
            params=params,
            created_at=now,
        )
    ).inserted_primary_key[0]


def set_trained(conn: sa.Connection, model_id: int, artifact: str, info: dict) -> None:
    """Record the registry artifact and the training summary of model ``model_id``."""
    conn.execute(sa.update(mo).where(mo.c.id == model_id).values(artifact=artifact, info=info))
