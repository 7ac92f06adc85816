"""Back up and restore a SQLite store (``matforge backup`` / ``matforge restore``).

A backup is a consistent copy taken with SQLite's online backup API: it may run while a server
writes to the store (the WAL is read through SQLite, not copied as a file), and the copy is a
single self-contained ``.db`` file. A restore puts such a copy in place of a store that does
not exist yet (or, with ``force``, replaces one), then opens it once so that a backup from an
older matforge is upgraded to the current schema.

PostgreSQL stores are backed up with PostgreSQL's own tools (``pg_dump -Fc`` and
``pg_restore``; see docs/security.md); :func:`backup_store` says so instead of half-doing it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from matforge.errors import StoreError
from matforge.store.database import missing_sqlite_file, resolve_url
from matforge.store.repositories import backend, display_url

__all__ = ["backup_store", "restore_store"]

#: a table every matforge store has (Alembic's bookkeeping of the schema revision)
_MARKER = "alembic_version"


def _sqlite_path(url, what: str) -> Path:
    resolved = resolve_url(url)
    name, database = backend(resolved)
    if name != "sqlite":
        raise StoreError(
            f"{what} works on SQLite stores; for PostgreSQL use pg_dump -Fc / pg_restore "
            f"(docs/security.md), not {display_url(resolved)}"
        )
    if not database:
        raise StoreError(f"{what} needs a store file, not an in-memory database")
    return Path(database)


def _copy(source: Path, dest: Path) -> None:
    """SQLite's online backup of ``source`` into a new file ``dest`` (owner-only mode)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        old = os.umask(0o077)
        try:
            out = sqlite3.connect(tmp)
        finally:
            os.umask(old)
        try:
            src.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
        finally:
            out.close()
    finally:
        src.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, dest)


def _is_store(path: Path) -> bool:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_MARKER,)
            ).fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return False
    return row is not None


def backup_store(url, dest: str | os.PathLike, *, force: bool = False) -> Path:
    """Copy the SQLite store at ``url`` (path or URL; default ``$MATFORGE_DB``) to the file
    ``dest``, consistently even while it is being written. Refuses to overwrite ``dest``
    unless ``force``. Returns ``dest``."""
    source = _sqlite_path(url, "backup")
    if missing_sqlite_file(str(source)) is not None:
        raise StoreError(f"no store at {source}: nothing to back up")
    dest = Path(dest).expanduser().resolve()
    if dest == source.resolve():
        raise StoreError(f"{dest} is the store itself: name another file")
    if dest.exists() and not force:
        raise StoreError(f"{dest} exists; pass --force to overwrite it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _copy(source, dest)
    return dest


def restore_store(backup: str | os.PathLike, url, *, force: bool = False) -> Path:
    """Put the backup file ``backup`` in place as the SQLite store ``url`` (default
    ``$MATFORGE_DB``), upgraded to the current schema. Refuses a file that is not a matforge
    store, and an existing store unless ``force``. Returns the store's path."""
    from matforge.store.store import Store

    backup = Path(backup).expanduser().resolve()
    if not backup.is_file():
        raise StoreError(f"no backup file at {backup}")
    if not _is_store(backup):
        raise StoreError(f"{backup} is not a matforge store (no {_MARKER} table)")
    target = _sqlite_path(url, "restore")
    if target.resolve() == backup:
        raise StoreError(f"{backup} is the store itself: restore it somewhere else")
    if target.exists() and not force:
        raise StoreError(
            f"a store exists at {target}; pass --force to replace it with {backup.name}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):  # the replaced store's journal must not be replayed
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    _copy(backup, target)
    Store(target).close()  # upgrade an older backup to the current schema
    return target
