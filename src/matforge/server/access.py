"""Who may see and change which project.

A project managed by the server has an owner, members with a role (``viewer`` reads,
``editor`` also adds measurements, ``owner`` also manages members and visibility) and a
visibility:

``private``  only its owners;
``shared``   its members, each with their role;
``public``   everyone, anonymous OPTIMADE callers included, as viewers (members keep their role).

Everything a user can read is derived from :func:`roles`; every query of the API restricts
itself to the project ids it returns, so nothing else can be read, listed or counted.
"""

from __future__ import annotations

import sqlalchemy as sa

from matforge.server.auth import User
from matforge.store import accounts

RANK = {"viewer": 1, "editor": 2, "owner": 3}


def roles(conn: sa.Connection, user: User | None) -> dict[int, str]:
    """``{project_id: role}`` of every project ``user`` (None: anonymous) may read."""
    pa, pm = accounts.project_access, accounts.project_members
    result = {
        pid: "viewer"
        for pid in conn.execute(
            sa.select(pa.c.project_id).where(pa.c.visibility == "public")
        ).scalars()
    }
    if user is None:
        return result
    rows = conn.execute(
        sa.select(pm.c.project_id, pm.c.role, pa.c.visibility)
        .join_from(pm, pa, pm.c.project_id == pa.c.project_id)
        .where(pm.c.user_id == user.id)
    ).all()
    for pid, role, visibility in rows:
        if visibility == "private" and role != "owner":
            continue  # un-shared: members keep their row but lose access
        if RANK[role] > RANK.get(result.get(pid, ""), 0):
            result[pid] = role
    return result


def at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` includes the rights of ``needed``."""
    return role is not None and RANK[role] >= RANK[needed]
