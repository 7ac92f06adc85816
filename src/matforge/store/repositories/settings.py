"""The server's settings (``server_settings``: name → text value), such as the public-id key."""

from __future__ import annotations

import sqlalchemy as sa

from matforge.store import accounts

s = accounts.server_settings


def get(conn: sa.Connection, name: str) -> str | None:
    """The value of setting ``name``, or None when it is not set."""
    return conn.execute(sa.select(s.c.value).where(s.c.name == name)).scalar()


def insert(conn: sa.Connection, name: str, value: str) -> None:
    """Set ``name`` (not set yet; a concurrent setter makes this raise
    :data:`~matforge.store.repositories.IntegrityError`)."""
    conn.execute(sa.insert(s).values(name=name, value=value))
