"""Who may see and change which project, for the server's authenticated :class:`User`.

The rule (roles ``viewer`` < ``editor`` < ``owner``; visibility ``private``, ``shared``,
``public``) is written once, in :mod:`matforge.store.repositories.visibility`; this module only
turns the server's user into the id the store asks for. Every query of the API restricts itself
to the project ids :func:`roles` returns, so nothing else can be read, listed or counted.
"""

from __future__ import annotations

from matforge.server.auth import User
from matforge.store.repositories import Connection, visibility

RANK = visibility.RANK
at_least = visibility.at_least


def roles(conn: Connection, user: User | None) -> dict[int, str]:
    """``{project_id: role}`` of every project ``user`` (None: anonymous) may read."""
    return visibility.roles(conn, None if user is None else user.id)


def readable(conn: Connection, user: User | None) -> list[int]:
    """Sorted ids of the projects ``user`` (None: anonymous) may read."""
    return sorted(roles(conn, user))
