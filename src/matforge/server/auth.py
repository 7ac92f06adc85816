"""Users and API tokens.

A token is 32 random bytes (URL-safe base64, prefixed ``mf_`` so secret scanners recognise it),
shown once when it is made; the store keeps only its SHA-256. A request presents it as
``Authorization: Bearer <token>``.

A token may expire (``expires_at``, compared with :func:`matforge.server.clock.now` on every
request), be revoked alone (by its id) or with all of its user's, and a disabled user's tokens
are all refused. :func:`check_token` says which of these refused a token; the time a token was
last used is recorded to :data:`LAST_USED_RESOLUTION`, off the request's path.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from matforge.errors import AccountError, TokenRefused
from matforge.server import clock
from matforge.store.database import write_transaction
from matforge.store.repositories import Engine, is_in_memory
from matforge.store.repositories import accounts as repo

log = logging.getLogger("matforge.server.auth")

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TOKEN_PREFIX = "mf_"
#: ``last_used_at`` is written at most this often per token: a request that only reads does not
#: become a write each time.
LAST_USED_RESOLUTION = timedelta(minutes=5)
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([dhm])\s*$")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


@dataclass(frozen=True)
class User:
    """An authenticated user: row id and name."""

    id: int
    name: str


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a token (never the secret): timestamps are timezone-aware UTC."""

    id: int
    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired`` at ``now`` (default: the server's clock)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or clock.now()):
            return "expired"
        return "active"


def _utc(dt: datetime | None) -> datetime | None:
    # SQLite hands timestamps back naive; they were written as UTC
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h`` or ``30m`` as a duration (days, hours, minutes; a positive whole number)."""
    m = _DURATION.match(text or "")
    if m is None or int(m.group(1)) == 0:
        raise AccountError(
            f"invalid duration {text!r}: write a positive whole number of days, hours or "
            "minutes, e.g. 90d, 12h or 30m"
        )
    return int(m.group(1)) * _UNITS[m.group(2)]


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


def add_user(engine: Engine, name: str) -> User:
    """Create user ``name``; raises :class:`AccountError` if it exists."""
    check_user_name(name)
    with write_transaction(engine) as conn:
        if repo.user_by_name(conn, name) is not None:
            raise AccountError(f"user {name!r} already exists")
        user_id = repo.insert_user(conn, name, clock.now())
    return User(user_id, name)


def get_user(engine: Engine, name: str) -> User | None:
    """The user called ``name``, or None."""
    with engine.connect() as conn:
        row = repo.user_by_name(conn, name)
    return None if row is None else User(row.id, row.name)


def list_users(engine: Engine) -> list[User]:
    """Every user, by name."""
    with engine.connect() as conn:
        rows = repo.list_users(conn)
    return [User(r.id, r.name) for r in rows]


def new_token(
    engine: Engine, user_name: str, label: str = "", expires_in: timedelta | None = None
) -> str:
    """A new API token for ``user_name``, refused from ``expires_in`` on (None: never expires).
    The caller must show it now: it cannot be read back."""
    user = get_user(engine, user_name)
    if user is None:
        raise AccountError(f"no user {user_name!r}; create it first with `matforge user add`")
    if expires_in is not None and expires_in <= timedelta(0):
        raise AccountError(f"a token must expire in the future, not in {expires_in}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    with write_transaction(engine) as conn:
        repo.insert_token(
            conn,
            user.id,
            token_hash(token),
            label[:200],
            now,
            None if expires_in is None else now + expires_in,
        )
    return token


def list_tokens(engine: Engine, user_name: str) -> list[TokenInfo]:
    """Every token of ``user_name`` (revoked and expired ones too), oldest first."""
    user = get_user(engine, user_name)
    if user is None:
        raise AccountError(f"no user {user_name!r}")
    with engine.connect() as conn:
        rows = repo.tokens_of(conn, user.id)
    return [_token_info(r, user.name) for r in rows]


def _token_info(r, user_name: str) -> TokenInfo:
    return TokenInfo(
        id=r.id,
        user=user_name,
        label=r.label,
        created_at=_utc(r.created_at),
        expires_at=_utc(r.expires_at),
        last_used_at=_utc(r.last_used_at),
        revoked_at=_utc(r.revoked_at),
    )


def revoke_token(engine: Engine, token_id: int) -> TokenInfo:
    """Revoke the token with id ``token_id`` (as :func:`list_tokens` shows it); revoking a
    revoked token changes nothing. Returns the token as it is now."""
    with write_transaction(engine) as conn:
        row = repo.revoke_token(conn, token_id, clock.now())
    if row is None:
        raise AccountError(f"no token with id {token_id}; `matforge token list USER` shows them")
    return _token_info(row, row.user_name)


def set_user_disabled(engine: Engine, user_name: str, disabled: bool) -> User:
    """Disable (every token of the user is refused, their data and tokens are kept) or enable
    again the user ``user_name``."""
    with write_transaction(engine) as conn:
        user_id = repo.set_disabled(conn, user_name, disabled)
        if user_id is None:
            raise AccountError(f"no user {user_name!r}")
    return User(user_id, user_name)


def is_disabled(engine: Engine, user_name: str) -> bool:
    """Whether the user ``user_name`` is disabled."""
    with engine.connect() as conn:
        row = repo.user_by_name(conn, user_name)
    if row is None or row.disabled is None:
        raise AccountError(f"no user {user_name!r}")
    return bool(row.disabled)


def revoke_tokens(engine: Engine, user_name: str) -> int:
    """Revoke every token of ``user_name``; returns how many were active."""
    user = get_user(engine, user_name)
    if user is None:
        raise AccountError(f"no user {user_name!r}")
    with write_transaction(engine) as conn:
        return repo.revoke_tokens_of(conn, user.id, clock.now())


def check_token(engine: Engine, token: str) -> User:
    """The user holding ``token``; :class:`TokenRefused` saying why for a malformed, unknown,
    revoked or expired token or a disabled user."""
    if not token or len(token) > 200 or not token.startswith(TOKEN_PREFIX):
        raise TokenRefused("invalid API token")
    with engine.connect() as conn:
        row = repo.token_holder(conn, token_hash(token))
    if row is None:
        raise TokenRefused("invalid API token")
    if row.revoked_at is not None:
        raise TokenRefused("API token revoked")
    now = clock.now()
    expires_at = _utc(row.expires_at)
    if expires_at is not None and expires_at <= now:
        raise TokenRefused(
            f"API token expired at {expires_at:%Y-%m-%dT%H:%M:%SZ}; ask for a new one "
            "(`matforge token new USER --expires 90d`)"
        )
    if row.disabled:
        raise TokenRefused(f"user {row.name!r} is disabled")
    last_used = _utc(row.last_used_at)
    if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
        _record_use(engine, row.token_id, now)
    return User(row.id, row.name)


def authenticate(engine: Engine, token: str) -> User | None:
    """The user holding ``token``, or None where :func:`check_token` refuses it."""
    try:
        return check_token(engine, token)
    except TokenRefused:
        return None


_recording: set[int] = set()
_recording_lock = threading.Lock()


def _record_use(engine: Engine, token_id: int, at: datetime) -> None:
    """Write ``last_used_at`` on a thread of its own: on SQLite a write waits for any other
    writer (an upload being stored), and the request must not wait with it. At most one such
    write per token is in flight; losing one (the server stops) loses only a timestamp."""
    if is_in_memory(engine):
        return  # in-memory SQLite: its one connection is not to be used from another thread
    with _recording_lock:
        if token_id in _recording:
            return
        _recording.add(token_id)

    def write() -> None:
        try:
            with write_transaction(engine) as conn:
                repo.record_use(conn, token_id, at)
        except Exception as exc:  # a timestamp is not worth a failure anywhere
            log.debug("could not record the use of token %s: %s", token_id, exc)
        finally:
            with _recording_lock:
                _recording.discard(token_id)

    threading.Thread(target=write, name=f"token-{token_id}-used", daemon=True).start()
