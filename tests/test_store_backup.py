"""`matforge backup` / `matforge restore` of a SQLite store (issue #18 section 5)."""

from __future__ import annotations

import sqlite3
import stat
import threading

import pandas as pd
import pytest
from typer.testing import CliRunner

from matforge.cli.main import app
from matforge.errors import StoreError
from matforge.store import Store
from matforge.store.backup import backup_store, restore_store


def _fill(db, n: int, project: str = "p") -> None:
    with Store(db) as store:
        store.add_measurements(
            pd.DataFrame({"formula": [f"Fe{i + 1}O" for i in range(n)], "value": [1.0] * n}),
            project=project, property="band_gap", unit="eV",
        )  # fmt: skip


def _count(db) -> int:
    with Store(db, create=False) as store:
        return len(store.measurements())


def test_backup_and_restore_round_trip_while_the_store_is_written(tmp_path):
    db = tmp_path / "lab.db"
    _fill(db, 50)
    writer_done = threading.Event()

    def write_more():  # a server writing while the backup runs
        for k in range(5):
            _fill(db, 10, project=f"w{k}")
        writer_done.set()

    t = threading.Thread(target=write_more)
    t.start()
    copy = backup_store(db, tmp_path / "copy.db")
    t.join()
    assert writer_done.is_set()
    n_copy = _count(copy)
    assert 50 <= n_copy <= 100 and n_copy % 10 == 0  # a consistent snapshot: whole batches
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not (tmp_path / "copy.db-wal").exists()  # one self-contained file

    restored = restore_store(copy, tmp_path / "new" / "lab.db")
    assert _count(restored) == n_copy
    with pytest.raises(StoreError, match="pass --force"):
        restore_store(copy, db)
    restore_store(copy, db, force=True)
    assert _count(db) == n_copy


def test_refusals(tmp_path):
    db = tmp_path / "lab.db"
    _fill(db, 3)
    backup_store(db, tmp_path / "b.db")
    with pytest.raises(StoreError, match="exists; pass --force"):
        backup_store(db, tmp_path / "b.db")
    with pytest.raises(StoreError, match="no store at"):
        backup_store(tmp_path / "missing.db", tmp_path / "c.db")
    with pytest.raises(StoreError, match="pg_dump"):
        backup_store("postgresql://u:secret@localhost/x", tmp_path / "c.db")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="not a matforge store"):
        restore_store(other, tmp_path / "d.db")
    (tmp_path / "junk.db").write_text("not a database")
    with pytest.raises(StoreError, match="not a matforge store"):
        restore_store(tmp_path / "junk.db", tmp_path / "d.db")


def test_cli(tmp_path):
    db, out = tmp_path / "lab.db", tmp_path / "lab-backup.db"
    _fill(db, 4)
    runner = CliRunner()
    res = runner.invoke(app, ["backup", str(out), "--db", str(db)])
    assert res.exit_code == 0 and "backed up" in res.output, res.output
    res = runner.invoke(app, ["restore", str(out), "--db", str(tmp_path / "r.db")])
    assert res.exit_code == 0, res.output
    assert _count(tmp_path / "r.db") == 4
    res = runner.invoke(app, ["restore", str(out), "--db", str(db)])
    assert res.exit_code != 0 and "--force" in str(res.exception)
