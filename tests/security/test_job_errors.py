"""A job that crashes tells its owner that it crashed, not what the exception said (paths,
SQL, data); a MatforgeError's message, written for users, is shown as it is (issue #18 §4)."""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa

from matforge.errors import MatforgeError
from matforge.server.settings import ServerSettings


def _wait(engine, job_id, timeout=20.0):
    from matforge.store import accounts

    j = accounts.jobs
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(sa.select(j.c.status, j.c.error).where(j.c.id == job_id)).one()
        if row.status in ("succeeded", "failed"):
            return row
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {row.status}")


def test_a_crashed_job_hides_the_exception_text_and_logs_it(tmp_path, caplog):
    from matforge.server.auth import add_user
    from matforge.server.jobs import JobKind, JobRunner
    from matforge.store import Store

    secret = "OperationalError at /srv/matforge/lab.db: SELECT value FROM measurements"

    def crash(ctx):
        raise RuntimeError(secret)

    def refuse(ctx):
        raise MatforgeError("the project has no measurements of band_gap")

    kinds = {"crash": JobKind("crash", crash), "refuse": JobKind("refuse", refuse)}
    settings = ServerSettings(model_root=tmp_path / "m", job_poll_s=0.05, job_heartbeat_s=0.05)
    with Store(tmp_path / "s.db") as store:
        owner = add_user(store.engine, "alice").id
        runner = JobRunner(store.engine, kinds, settings)
        with store.engine.begin() as conn:
            crashed = runner.submit(conn, "crash", owner, {}, project_ids=())
            refused = runner.submit(conn, "refuse", owner, {}, project_ids=())
        runner.start()
        try:
            with caplog.at_level(logging.ERROR):
                row = _wait(store.engine, crashed)
                assert row.status == "failed"
                assert row.error == "internal error (RuntimeError); the server log has the details"
                assert "/srv" not in row.error and "SELECT" not in row.error
                assert _wait(store.engine, refused).error == (
                    "the project has no measurements of band_gap"
                )
        finally:
            runner.stop()
    assert secret in caplog.text  # the log keeps what the owner does not see
