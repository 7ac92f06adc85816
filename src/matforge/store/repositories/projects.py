"""Projects as the server manages them: the ``projects`` row, its access (``project_access``:
owner and visibility), its members (``project_members``) and its datasets.

Who may read or change a project is :mod:`.visibility`'s rule; the callers check it with the
ids :func:`.visibility.roles` gives and pass only readable ``project_ids`` here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from matforge.store import accounts, schema

p, d, m = schema.projects, schema.datasets, schema.measurements
pa, pm, u = accounts.project_access, accounts.project_members, accounts.users


def _n_measurements():
    """Scalar subquery: how many measurements the project of the outer query holds."""
    return (
        sa.select(sa.func.count())
        .select_from(m.join(d, m.c.dataset_id == d.c.id))
        .where(d.c.project_id == p.c.id)
        .scalar_subquery()
    )


def select_summaries() -> sa.Select:
    """Every project (the local store's view: no visibility), by name: ``name``,
    ``description``, ``created_at``, ``n_datasets``, ``n_measurements``."""
    n_datasets = sa.select(sa.func.count()).where(d.c.project_id == p.c.id).scalar_subquery()
    return sa.select(
        p.c.name,
        p.c.description,
        p.c.created_at,
        n_datasets.label("n_datasets"),
        _n_measurements().label("n_measurements"),
    ).order_by(p.c.name)


def select_datasets(project: str | None = None) -> sa.Select:
    """Datasets (of the project named ``project``, or all), oldest first: ``id``, ``project``
    (its name), ``name``, ``source``, ``checksum``, ``n_rows``, ``created_at``, ``created_by``."""
    stmt = (
        sa.select(
            d.c.id,
            p.c.name.label("project"),
            d.c.name,
            d.c.source,
            d.c.checksum,
            d.c.n_rows,
            d.c.created_at,
            d.c.created_by,
        )
        .join_from(d, p, d.c.project_id == p.c.id)
        .order_by(d.c.id)
    )
    return stmt if project is None else stmt.where(p.c.name == project)


def _select_with_access(project_ids: Sequence[int]) -> sa.Select:
    n = _n_measurements()
    return (
        sa.select(
            p.c.id,
            p.c.name,
            p.c.description,
            p.c.created_at,
            pa.c.visibility,
            u.c.name.label("owner"),
            n.label("n_measurements"),
        )
        .join_from(p, pa, pa.c.project_id == p.c.id)
        .join(u, pa.c.owner_id == u.c.id)
        .where(p.c.id.in_(list(project_ids)))
        .order_by(p.c.name)
    )


def with_access(conn: sa.Connection, project_ids: Sequence[int]) -> list[sa.Row]:
    """``id, name, description, created_at, visibility, owner`` (the owner's name) and
    ``n_measurements`` of the server projects ``project_ids``, by name."""
    if not project_ids:
        return []
    return conn.execute(_select_with_access(project_ids)).all()


def one_with_access(conn: sa.Connection, project_id: int) -> sa.Row:
    """:func:`with_access` of one project (that exists)."""
    return conn.execute(_select_with_access([project_id])).one()


def create(
    conn: sa.Connection,
    name: str,
    description: str,
    *,
    owner_id: int,
    visibility: str,
    now: datetime,
) -> int | None:
    """Add project ``name`` owned by ``owner_id`` (its first member, as owner); its id, or None
    when a project of that name exists. A concurrent creation of the same name raises
    :data:`~matforge.store.repositories.IntegrityError` when the transaction writes."""
    if conn.execute(sa.select(p.c.id).where(p.c.name == name)).first() is not None:
        return None
    pid = conn.execute(
        sa.insert(p).values(name=name, description=description, created_at=now)
    ).inserted_primary_key[0]
    conn.execute(
        sa.insert(pa).values(
            project_id=pid, owner_id=owner_id, visibility=visibility, updated_at=now
        )
    )
    conn.execute(
        sa.insert(pm).values(project_id=pid, user_id=owner_id, role="owner", created_at=now)
    )
    return pid


def update(
    conn: sa.Connection,
    project_id: int,
    *,
    description: str | None = None,
    visibility: str | None = None,
    now: datetime,
) -> None:
    """Change the description and/or the visibility (those not None) of a project."""
    if description is not None:
        conn.execute(sa.update(p).where(p.c.id == project_id).values(description=description))
    if visibility is not None:
        conn.execute(
            sa.update(pa)
            .where(pa.c.project_id == project_id)
            .values(visibility=visibility, updated_at=now)
        )


def name(conn: sa.Connection, project_id: int) -> str:
    """The store's name of project ``project_id`` (that exists)."""
    return conn.execute(sa.select(p.c.name).where(p.c.id == project_id)).scalar_one()


# --- members ----------------------------------------------------------------------------------


def members(conn: sa.Connection, project_id: int) -> list[sa.Row]:
    """``name, role`` of every member of a project, by name."""
    return conn.execute(
        sa.select(u.c.name, pm.c.role)
        .join_from(pm, u, pm.c.user_id == u.c.id)
        .where(pm.c.project_id == project_id)
        .order_by(u.c.name)
    ).all()


def owners(conn: sa.Connection, project_id: int) -> list[int]:
    """User ids of the owners of a project."""
    return list(
        conn.execute(
            sa.select(pm.c.user_id).where(pm.c.project_id == project_id, pm.c.role == "owner")
        ).scalars()
    )


def user_id(conn: sa.Connection, user_name: str) -> int | None:
    """Id of the user ``user_name``, or None."""
    return conn.execute(sa.select(u.c.id).where(u.c.name == user_name)).scalar()


def set_member(
    conn: sa.Connection, project_id: int, member_id: int, role: str, now: datetime
) -> None:
    """Make ``member_id`` a member of the project with ``role`` (or change their role)."""
    exists = conn.execute(
        sa.select(pm.c.role).where(pm.c.project_id == project_id, pm.c.user_id == member_id)
    ).first()
    if exists is None:
        conn.execute(
            sa.insert(pm).values(
                project_id=project_id, user_id=member_id, role=role, created_at=now
            )
        )
    else:
        conn.execute(
            sa.update(pm)
            .where(pm.c.project_id == project_id, pm.c.user_id == member_id)
            .values(role=role)
        )


def share(conn: sa.Connection, project_id: int, now: datetime) -> None:
    """A ``private`` project becomes ``shared`` (others are left as they are)."""
    conn.execute(
        sa.update(pa)
        .where(pa.c.project_id == project_id, pa.c.visibility == "private")
        .values(visibility="shared", updated_at=now)
    )


def remove_member(conn: sa.Connection, project_id: int, member_id: int) -> None:
    """Take ``member_id`` off the project."""
    conn.execute(sa.delete(pm).where(pm.c.project_id == project_id, pm.c.user_id == member_id))


# --- datasets ---------------------------------------------------------------------------------


def datasets(conn: sa.Connection, project_id: int) -> list[sa.Row]:
    """Every ``datasets`` row of a project, oldest first."""
    return conn.execute(
        sa.select(d).where(d.c.project_id == project_id).order_by(d.c.id)
    ).all()


def dataset_project(conn: sa.Connection, dataset_id: int) -> int | None:
    """The project id of dataset ``dataset_id``, or None when there is no such dataset."""
    return conn.execute(sa.select(d.c.project_id).where(d.c.id == dataset_id)).scalar()
