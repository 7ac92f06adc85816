"""Who may read and change which project: the filter every read made for a user takes.

A project managed by the server has an owner, members with a role (``viewer`` reads,
``editor`` also adds measurements, ``owner`` also manages members and visibility) and a
visibility:

``private``  only its owners;
``shared``   its members, each with their role;
``public``   everyone, anonymous OPTIMADE callers included, as viewers (members keep their role).

:func:`roles` is the one place this rule is written; the ids it returns are the
``project_ids`` that the reads of :mod:`~matforge.store.repositories.measurements` (and every
other read for a user) restrict themselves to.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from matforge.store import accounts, schema

RANK = {"viewer": 1, "editor": 2, "owner": 3}


def roles(conn: sa.Connection, user_id: int | None) -> dict[int, str]:
    """``{project_id: role}`` of every project the user ``user_id`` (None: anonymous) may read."""
    pa, pm = accounts.project_access, accounts.project_members
    result = {
        pid: "viewer"
        for pid in conn.execute(
            sa.select(pa.c.project_id).where(pa.c.visibility == "public")
        ).scalars()
    }
    if user_id is None:
        return result
    rows = conn.execute(
        sa.select(pm.c.project_id, pm.c.role, pa.c.visibility)
        .join_from(pm, pa, pm.c.project_id == pa.c.project_id)
        .where(pm.c.user_id == user_id)
    ).all()
    for pid, role, visibility in rows:
        if visibility == "private" and role != "owner":
            continue  # un-shared: members keep their row but lose access
        if RANK[role] > RANK.get(result.get(pid, ""), 0):
            result[pid] = role
    return result


def project_ids(conn: sa.Connection, user_id: int | None) -> list[int]:
    """Sorted ids of the projects the user ``user_id`` (None: anonymous) may read."""
    return sorted(roles(conn, user_id))


def at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` includes the rights of ``needed``."""
    return role is not None and RANK[role] >= RANK[needed]


def visible_material(project_ids: Sequence[int]):
    """EXISTS: the material of the outer query has a measurement in ``project_ids``.

    A material is visible when at least one of its measurements is in a visible project:
    materials are shared between projects, so a material known only from someone else's
    private project stays invisible, and a visible one shows only visible measurements.
    """
    m, d, mat = schema.measurements, schema.datasets, schema.materials
    return sa.exists(
        sa.select(sa.literal(1))
        .select_from(m.join(d, m.c.dataset_id == d.c.id))
        .where(m.c.material_id == mat.c.id, d.c.project_id.in_(list(project_ids)))
    )
