"""Users (``users``) and their API tokens (``api_tokens``).

The rules (valid names, token format and hashing, expiry, what refuses a token) are the
server's (:mod:`matforge.server.auth`); this module holds the statements. Timestamps are
written as given (UTC) and read back as the driver returns them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from matforge.store import accounts

u, t = accounts.users, accounts.api_tokens


def user_by_name(conn: sa.Connection, name: str) -> sa.Row | None:
    """``id, name, disabled`` of the user called ``name``, or None."""
    return conn.execute(sa.select(u.c.id, u.c.name, u.c.disabled).where(u.c.name == name)).first()


def insert_user(conn: sa.Connection, name: str, now: datetime) -> int:
    """Add user ``name``; returns its id."""
    return conn.execute(sa.insert(u).values(name=name, created_at=now)).inserted_primary_key[0]


def list_users(conn: sa.Connection) -> list[sa.Row]:
    """``id, name`` of every user, by name."""
    return conn.execute(sa.select(u.c.id, u.c.name).order_by(u.c.name)).all()


def set_disabled(conn: sa.Connection, name: str, disabled: bool) -> int | None:
    """Disable or enable the user called ``name``; its id, or None when there is none."""
    if conn.execute(sa.update(u).where(u.c.name == name).values(disabled=disabled)).rowcount == 0:
        return None
    return conn.execute(sa.select(u.c.id).where(u.c.name == name)).scalar_one()


def insert_token(
    conn: sa.Connection,
    user_id: int,
    token_hash: str,
    label: str,
    now: datetime,
    expires_at: datetime | None,
) -> int:
    """Store a token (its hash only); returns its id."""
    return conn.execute(
        sa.insert(t).values(
            user_id=user_id,
            token_hash=token_hash,
            label=label,
            created_at=now,
            expires_at=expires_at,
        )
    ).inserted_primary_key[0]


def tokens_of(conn: sa.Connection, user_id: int) -> list[sa.Row]:
    """Every ``api_tokens`` row of user ``user_id``, oldest first."""
    return conn.execute(sa.select(t).where(t.c.user_id == user_id).order_by(t.c.id)).all()


def revoke_token(conn: sa.Connection, token_id: int, now: datetime) -> sa.Row | None:
    """Revoke token ``token_id`` unless it is revoked already; the token's row as it is now,
    with ``user_name``, or None when there is no such token."""
    conn.execute(
        sa.update(t).where(t.c.id == token_id, t.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return conn.execute(
        sa.select(t, u.c.name.label("user_name"))
        .join_from(t, u, t.c.user_id == u.c.id)
        .where(t.c.id == token_id)
    ).first()


def revoke_tokens_of(conn: sa.Connection, user_id: int, now: datetime) -> int:
    """Revoke every active token of user ``user_id``; how many were active."""
    return conn.execute(
        sa.update(t)
        .where(t.c.user_id == user_id, t.c.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount


def token_holder(conn: sa.Connection, token_hash: str) -> sa.Row | None:
    """The token with ``token_hash`` and its user: ``token_id``, ``revoked_at``,
    ``expires_at``, ``last_used_at``, ``id`` (the user's), ``name``, ``disabled``; or None."""
    return conn.execute(
        sa.select(
            t.c.id.label("token_id"),
            t.c.revoked_at,
            t.c.expires_at,
            t.c.last_used_at,
            u.c.id,
            u.c.name,
            u.c.disabled,
        )
        .join_from(t, u, t.c.user_id == u.c.id)
        .where(t.c.token_hash == token_hash)
    ).first()


def record_use(conn: sa.Connection, token_id: int, at: datetime) -> None:
    """Set the time token ``token_id`` was last used."""
    conn.execute(sa.update(t).where(t.c.id == token_id).values(last_used_at=at))
