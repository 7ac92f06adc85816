"""Engines, write transactions and schema versions.

SQLite (the embedded default) runs in WAL mode, so readers never block the one writer, with a
busy timeout, and every write transaction starts with ``BEGIN IMMEDIATE``: a second writer then
waits for the lock at the start of its transaction instead of failing with "database is locked"
half-way through it. A new SQLite file (and so its ``-wal`` and ``-shm``) is created readable
by its owner only. PostgreSQL needs none of this; there, schema upgrades are serialised with
an advisory lock.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from matforge.errors import StoreError

DEFAULT_PATH = Path("~/.matforge/matforge.db")
# How long a writer waits for another one to finish before giving up (milliseconds).
BUSY_TIMEOUT_MS = 120_000
_WRITE = "matforge_write"
# Arbitrary constant naming the PostgreSQL advisory lock that serialises migrations.
_PG_MIGRATION_LOCK = 0x6D6174666F726765  # "matforge"


def missing_sqlite_file(url: str | os.PathLike | None = None) -> Path | None:
    """The SQLite file ``url`` (as :func:`resolve_url` reads it) names when that file does not
    exist yet; None for one that exists, an in-memory database or a server URL."""
    if url is None:
        url = os.environ.get("MATFORGE_DB") or DEFAULT_PATH
    text = os.fspath(url)
    if text in (":memory:", "sqlite://", "sqlite:///:memory:"):
        return None
    if "://" not in text:
        path = Path(text).expanduser().resolve()
    elif text.startswith("sqlite:///"):
        path = Path(sa.make_url(text).database or "")
    else:
        return None
    return None if path.is_file() else path


def resolve_url(url: str | os.PathLike | None = None) -> str:
    """The SQLAlchemy URL for ``url``, ``$MATFORGE_DB`` or ``~/.matforge/matforge.db``.

    Accepts a SQLAlchemy URL or a file path (taken as a SQLite file, its folder created).
    ``postgresql://`` and ``postgres://`` URLs are given the psycopg 3 driver.
    """
    if url is None:
        url = os.environ.get("MATFORGE_DB") or DEFAULT_PATH
    text = os.fspath(url)
    if text == ":memory:":
        return "sqlite://"
    if "://" not in text:
        path = Path(text).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    for prefix in ("postgresql://", "postgres://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    return text


def create_private_file(path: Path) -> None:
    """Create ``path`` empty, readable and writable by its owner only (0600), unless it exists.

    SQLite would create a new store file with the process's umask (usually 0644: readable by
    every local user). An empty file is a valid empty database, and SQLite gives the ``-wal``
    and ``-shm`` files it makes next to it the mode of the database file, so all three stay
    private. An existing file keeps its mode: that is its owner's choice.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a folder that does not exist or is not writable: SQLite says so, in context
    os.close(fd)


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url`` with matforge's SQLite settings (see the module docstring)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"not a database URL or path: {url!r} ({exc})") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"a store is a SQLite file or a PostgreSQL database, not {backend}: {url!r}"
        )
    if backend == "postgresql":
        try:
            return sa.create_engine(parsed, pool_pre_ping=True)
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            raise StoreError(f"cannot use {parsed.render_as_string()}: {exc}") from None

    memory = parsed.database in (None, "", ":memory:")
    if not memory and not parsed.query.get("uri"):  # a plain path, not a "file:" URI
        create_private_file(Path(parsed.database))
    if memory:
        # One connection shared by everyone, or each would see its own empty database.
        engine = sa.create_engine(parsed, poolclass=sa.pool.StaticPool)
    else:
        engine = sa.create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take transaction control away from the sqlite3 module: it would otherwise issue a
        # deferred BEGIN itself, before the first write, where a busy database fails at once.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not memory:
            # Switching a new file to WAL takes an exclusive lock, which SQLite may refuse at
            # once (without its busy handler) while another process opens the same new file.
            _retry_while_locked(lambda: cursor.execute("PRAGMA journal_mode = WAL"))
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql(
            "BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN"
        )

    return engine


def _retry_while_locked(action, timeout_s: float = BUSY_TIMEOUT_MS / 1000):
    """``action()``, tried again while SQLite answers "database is locked" or "busy".

    SQLite skips its busy handler in a few short windows: while another connection switches
    a new file to WAL, recovers a WAL after a crash, or cleans up as the last one to close.
    Several processes opening one new store at once meet those windows; waiting them out
    is all there is to do (SQLite's documentation, "Sometimes Queries Return SQLITE_BUSY
    In WAL Mode").
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            return action()
        except (sqlite3.OperationalError, sa.exc.OperationalError) as exc:
            message = str(exc).lower()
            if not ("locked" in message or "busy" in message) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.25)


@contextlib.contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One write transaction: committed when the block ends, rolled back on any exception."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


# --- schema versions -----------------------------------------------------------------------


def _alembic_config(conn: sa.Connection | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "matforge.store:migrations")
    cfg.attributes["connection"] = conn
    return cfg


@functools.cache
def _script_directory():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The newest schema revision this version of matforge knows."""
    return _script_directory().get_current_head()


def _current_revisions(conn: sa.Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    return tuple(MigrationContext.configure(conn).get_current_heads())


def _check_known(revisions: tuple[str, ...], where: str) -> None:
    from alembic.util import CommandError

    script = _script_directory()
    for rev in revisions:
        try:
            known = script.get_revision(rev)
        except CommandError:
            known = None
        if known is None:
            raise StoreError(
                f"the store at {where} has schema revision {rev!r}, newer than this matforge "
                f"knows (newest: {head_revision()!r}); upgrade matforge to open it"
            )


def ensure_schema(engine: sa.Engine, where: str) -> None:
    """Create the schema in an empty database, upgrade an older one, refuse a newer one."""
    head = head_revision()

    def read_revisions() -> tuple[str, ...]:
        with engine.connect() as conn:
            return _current_revisions(conn)

    try:
        current = _retry_while_locked(read_revisions)
    except sa.exc.OperationalError as exc:
        raise StoreError(f"cannot open the store at {where}: {exc.orig}") from None
    if current == (head,):
        return
    _check_known(current, where)

    from alembic import command

    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        # Another process may have migrated while we waited for the lock.
        current = _current_revisions(conn)
        if current == (head,):
            return
        _check_known(current, where)
        if not current:
            foreign = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
            if foreign:
                raise StoreError(
                    f"{where} is not a matforge store: it has tables {sorted(foreign)} "
                    "but no matforge schema version"
                )
        command.upgrade(_alembic_config(conn), "head")
