"""Users and API tokens.

A token is 32 random bytes (URL-safe base64, prefixed ``mf_`` so secret scanners recognise it),
shown once when it is made; the store keeps only its SHA-256. A request presents it as
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from matforge.errors import MatforgeError
from matforge.server import clock
from matforge.store import accounts
from matforge.store.database import write_transaction

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TOKEN_PREFIX = "mf_"


class AccountError(MatforgeError, ValueError):
    """A user or token operation was refused (bad name, unknown or duplicate user)."""


@dataclass(frozen=True)
class User:
    """An authenticated user: row id and name."""

    id: int
    name: str


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token, as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_user_name(name: str) -> str:
    """``name`` if it is a valid user name (letters, digits, ``.``, ``_``, ``-``; at most 64)."""
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise AccountError(
            f"invalid user name {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, at most 64 characters)"
        )
    return name


def add_user(engine: sa.Engine, name: str) -> User:
    """Create user ``name``; raises :class:`AccountError` if it exists."""
    check_user_name(name)
    u = accounts.users
    with write_transaction(engine) as conn:
        if conn.execute(sa.select(u.c.id).where(u.c.name == name)).first() is not None:
            raise AccountError(f"user {name!r} already exists")
        user_id = conn.execute(
            sa.insert(u).values(name=name, created_at=clock.now())
        ).inserted_primary_key[0]
    return User(user_id, name)


def get_user(engine: sa.Engine, name: str) -> User | None:
    """The user called ``name``, or None."""
    u = accounts.users
    with engine.connect() as conn:
        row = conn.execute(sa.select(u.c.id, u.c.name).where(u.c.name == name)).first()
    return None if row is None else User(row.id, row.name)


def list_users(engine: sa.Engine) -> list[User]:
    """Every user, by name."""
    u = accounts.users
    with engine.connect() as conn:
        rows = conn.execute(sa.select(u.c.id, u.c.name).order_by(u.c.name)).all()
    return [User(r.id, r.name) for r in rows]


def new_token(engine: sa.Engine, user_name: str, label: str = "") -> str:
    """A new API token for ``user_name``. The caller must show it now: it cannot be read back."""
    user = get_user(engine, user_name)
    if user is None:
        raise AccountError(f"no user {user_name!r}; create it first with `matforge user add`")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction(engine) as conn:
        conn.execute(
            sa.insert(accounts.api_tokens).values(
                user_id=user.id,
                token_hash=token_hash(token),
                label=label[:200],
                created_at=clock.now(),
            )
        )
    return token


def revoke_tokens(engine: sa.Engine, user_name: str) -> int:
    """Revoke every token of ``user_name``; returns how many were active."""
    user = get_user(engine, user_name)
    if user is None:
        raise AccountError(f"no user {user_name!r}")
    t = accounts.api_tokens
    with write_transaction(engine) as conn:
        result = conn.execute(
            sa.update(t)
            .where(t.c.user_id == user.id, t.c.revoked_at.is_(None))
            .values(revoked_at=clock.now())
        )
    return result.rowcount


def authenticate(engine: sa.Engine, token: str) -> User | None:
    """The user holding ``token``, or None for an unknown, revoked or malformed token."""
    if not token or len(token) > 200 or not token.startswith(TOKEN_PREFIX):
        return None
    t, u = accounts.api_tokens, accounts.users
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(u.c.id, u.c.name)
            .join_from(t, u, t.c.user_id == u.c.id)
            .where(
                t.c.token_hash == token_hash(token),
                t.c.revoked_at.is_(None),
                u.c.disabled.is_(False),
            )
        ).first()
    return None if row is None else User(row.id, row.name)
