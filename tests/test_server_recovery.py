"""Crash recovery of the lab server (issue #18 §3): jobs of a killed server are recovered by
their expired lease, not by their pid (which a restarted server may share), and the temporary
files of uploads live in a server-owned folder that start-up empties."""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from matforge.server import clock
from matforge.server.settings import ServerSettings


def settings(tmp_path, **kw) -> ServerSettings:
    base = dict(model_root=tmp_path / "models", job_poll_s=0.05, job_heartbeat_s=0.05)
    return ServerSettings(**{**base, **kw})


class FakeClock:
    """``clock.now`` that a test moves forward."""

    def __init__(self):
        self.t = clock.now()

    def __call__(self):
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture
def fake_clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake)
    return fake


def _running_job(engine, owner, kind, worker, *, lease_s: float | None, heartbeat=True) -> int:
    """A ``running`` row as a server that claimed it left it; ``lease_s`` from now."""
    from matforge.store import accounts

    now = clock.now()
    with engine.begin() as conn:
        return conn.execute(
            sa.insert(accounts.jobs).values(
                kind=kind,
                owner_id=owner,
                status="running",
                params={"x": 2},
                attempts=1,
                worker=worker,
                created_at=now,
                started_at=now,
                heartbeat_at=now if heartbeat else None,
                lease_expires_at=None if lease_s is None else now + timedelta(seconds=lease_s),
            )
        ).inserted_primary_key[0]


def _statuses(engine, ids):
    from matforge.store import accounts

    j = accounts.jobs
    with engine.connect() as conn:
        rows = conn.execute(sa.select(j.c.id, j.c.status, j.c.error).where(j.c.id.in_(ids)))
        return {r.id: (r.status, r.error) for r in rows}


def _kinds():
    from matforge.server.jobs import JobKind

    return {
        "again": JobKind("again", lambda ctx: {"double": ctx.params["x"] * 2}),
        "once": JobKind("once", lambda ctx: {}, restartable=False),
    }


def test_a_job_of_a_killed_server_with_our_pid_is_recovered_at_start_up(
    store_url, tmp_path, fake_clock
):
    """PID reuse: the killed server had this very pid (PID 1 in a container), so the pid looks
    alive; its expired lease still tells the job is orphaned. A job with a live lease (another
    server sharing the store) is left alone."""
    from matforge.server.auth import add_user
    from matforge.server.jobs import RESTART_ERROR, JobRunner
    from matforge.store import Store

    me = f"{socket.gethostname()}:{os.getpid()}"
    with Store(store_url) as store:
        owner = add_user(store.engine, "alice").id
        again = _running_job(store.engine, owner, "again", f"{me}:killed", lease_s=60)
        once = _running_job(store.engine, owner, "once", f"{me}:killed", lease_s=60)
        live = _running_job(store.engine, owner, "again", f"{me}:other", lease_s=600)
        fake_clock.advance(61)  # the killed server's leases ran out
        runner = JobRunner(store.engine, _kinds(), settings(tmp_path))
        assert runner.recover() == 2
        assert _statuses(store.engine, [again, once, live]) == {
            again: ("queued", None),
            once: ("failed", RESTART_ERROR),
            live: ("running", None),
        }


def test_a_job_whose_worker_stopped_heartbeating_is_recovered_by_the_periodic_check(
    store_url, tmp_path, fake_clock
):
    """The restarted server came up while the dead one's lease was still valid: the job is
    left alone at start-up and recovered (then run again) once the lease expires, without a
    restart. A job whose lease is renewed stays with its worker."""
    from matforge.server.auth import add_user
    from matforge.server.jobs import JobRunner
    from matforge.store import Store, accounts

    me = f"{socket.gethostname()}:{os.getpid()}"
    with Store(store_url) as store:
        owner = add_user(store.engine, "alice").id
        orphan = _running_job(store.engine, owner, "again", f"{me}:killed", lease_s=30)
        # a pre-0007 row: no lease, judged by its heartbeat
        legacy = _running_job(store.engine, owner, "again", "elsewhere:7:old", lease_s=None)
        live = _running_job(store.engine, owner, "again", "elsewhere:8:alive", lease_s=30)
        runner = JobRunner(store.engine, _kinds(), settings(tmp_path, job_stale_s=60))
        runner.start()
        try:
            time.sleep(0.3)  # several heartbeats: nothing has expired yet
            assert {s for s, _ in _statuses(store.engine, [orphan, legacy, live]).values()} == {
                "running"
            }
            fake_clock.advance(31)
            with store.engine.begin() as conn:  # the other server renews its lease
                conn.execute(
                    sa.update(accounts.jobs)
                    .where(accounts.jobs.c.id == live)
                    .values(lease_expires_at=clock.now() + timedelta(seconds=30))
                )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if _statuses(store.engine, [orphan])[orphan][0] == "succeeded":
                    break
                time.sleep(0.05)
            assert _statuses(store.engine, [orphan, legacy, live]) == {
                orphan: ("succeeded", None),
                legacy: ("running", None),  # heartbeat 31 s old, job_stale_s is 60
                live: ("running", None),
            }
            fake_clock.advance(30)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if _statuses(store.engine, [legacy])[legacy][0] == "succeeded":
                    break
                time.sleep(0.05)
            assert _statuses(store.engine, [legacy])[legacy][0] == "succeeded"
        finally:
            runner.stop()


def test_a_running_job_keeps_its_lease_while_it_runs(store_url, tmp_path, fake_clock):
    """The runner's own job is never taken for dead: its heartbeat renews the lease however
    long it runs."""
    import threading

    from matforge.server.auth import add_user
    from matforge.server.jobs import JobKind, JobRunner
    from matforge.store import Store, accounts
    from matforge.store.database import write_transaction

    started, release = threading.Event(), threading.Event()

    def slow(ctx):
        started.set()
        release.wait(20)
        return {"ok": True}

    with Store(store_url) as store:
        owner = add_user(store.engine, "alice").id
        runner = JobRunner(store.engine, {"slow": JobKind("slow", slow)}, settings(tmp_path))
        with write_transaction(store.engine) as conn:
            job = runner.submit(conn, "slow", owner, {}, project_ids=())
        runner.start()
        try:
            assert started.wait(20)
            j = accounts.jobs
            for _ in range(3):  # hours pass; each heartbeat pushes the lease ahead of the clock
                fake_clock.advance(3600)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    with store.engine.connect() as conn:
                        lease = conn.execute(
                            sa.select(j.c.lease_expires_at).where(j.c.id == job)
                        ).scalar_one()
                    if lease.replace(tzinfo=None) > clock.now().replace(tzinfo=None):
                        break
                    time.sleep(0.02)
                assert lease.replace(tzinfo=None) > clock.now().replace(tzinfo=None)
                assert _statuses(store.engine, [job])[job][0] == "running"
            release.set()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and _statuses(store.engine, [job])[job][0] != (
                "succeeded"
            ):
                time.sleep(0.05)
            with store.engine.connect() as conn:
                row = conn.execute(sa.select(j).where(j.c.id == job)).one()
            assert (row.status, row.attempts) == ("succeeded", 1)
        finally:
            release.set()
            runner.stop()


# --- temporary upload folders --------------------------------------------------------------


def test_upload_folders_left_by_a_killed_server_are_removed_at_start_up(tmp_path):
    """Start-up removes the ``matforge-upload-*`` folders nobody holds (a killed server's, with
    a lab's CSV in them), not one a live server is using, nor anything else in the folder."""
    from fastapi.testclient import TestClient

    from matforge.server import create_app, tempdirs

    uploads = tmp_path / "uploads"
    leftover = uploads / "matforge-upload-k1ll3d"
    leftover.mkdir(parents=True)
    (leftover / "gaps.csv").write_text("formula,value\nZnO,3.3\n")
    (uploads / "notes.txt").write_text("not the server's")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with tempdirs.upload_tempdir(uploads) as in_use:  # another live server's upload
        with TestClient(create_app(url, settings(tmp_path, upload_dir=uploads))):
            assert not leftover.exists()
            assert in_use.is_dir() and (uploads / "notes.txt").is_file()
    assert not in_use.exists()


def test_the_default_upload_folder_is_next_to_the_model_folder_and_cleaned(tmp_path):
    from fastapi.testclient import TestClient

    from matforge.server import create_app

    leftover = tmp_path / "uploads" / "matforge-upload-x"
    leftover.mkdir(parents=True)
    app = create_app(f"sqlite:///{tmp_path / 'store.db'}", settings(tmp_path))
    assert app.state.matforge.settings.upload_dir == tmp_path / "uploads"
    with TestClient(app):
        assert not leftover.exists()


@pytest.mark.parametrize(
    "csv, status", [("formula,value\nZnO,3.3\n", 201), ("formula,value\nQz,1\n", 400)]
)
def test_an_upload_is_copied_into_the_server_folder_and_removed_after_the_request(
    tmp_path, monkeypatch, csv, status
):
    from fastapi.testclient import TestClient

    import matforge.store
    from matforge.server import create_app
    from matforge.server.testing import user_headers

    seen = []
    ingest = matforge.store.ingest_csv

    def spy(store, path, **kw):
        seen.append((Path(path), Path(path).read_text()))
        return ingest(store, path, **kw)

    monkeypatch.setattr(matforge.store, "ingest_csv", spy)
    uploads = tmp_path / "server-owned"
    app = create_app(f"sqlite:///{tmp_path / 'store.db'}", settings(tmp_path, upload_dir=uploads))
    headers = user_headers(app.state.matforge.engine, "alice")
    with TestClient(app) as client:
        pid = client.post("/api/v1/projects", json={"name": "p"}, headers=headers).json()["id"]
        r = client.post(
            f"/api/v1/projects/{pid}/uploads",
            files={"file": ("gaps.csv", csv.encode(), "text/csv")},
            data={"property": "band_gap", "unit": "eV"},
            headers=headers,
        )
    assert r.status_code == status, r.text
    path, text = seen[0]
    assert path.parent.parent == uploads and path.parent.name.startswith("matforge-upload-")
    assert text == csv
    assert list(uploads.iterdir()) == []


# --- end to end: `matforge serve` as PID 1, SIGKILLed mid-job, restarted as PID 1 ---------------


def _unshare_works() -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--kill-child", "sh", "-c", "echo $$"],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0 and probe.stdout.strip() == "1"


@pytest.mark.slow
def test_a_job_of_a_sigkilled_pid_1_server_runs_again_after_a_restart_as_pid_1(tmp_path):
    """The container case of issue #18 §3: the server is PID 1 in its own PID namespace, is
    SIGKILLed while training, and the restarted server is PID 1 again, so the dead worker's pid
    is "alive". The job is re-run once its lease expires; the killed server's upload folders
    are gone."""
    import subprocess
    import sys

    from fastapi.testclient import TestClient

    from matforge.server import create_app
    from matforge.server.testing import free_port, stop_process, user_headers, wait_for_port
    from matforge.store import Store, accounts

    if not _unshare_works():
        pytest.skip("needs `unshare --pid` (root or user namespaces)")
    db = tmp_path / "store.db"
    app = create_app(str(db), settings(tmp_path / "unused"))
    headers = user_headers(app.state.matforge.engine, "alice")
    client = TestClient(app)  # no lifespan: the job stays queued for the subprocess
    pid = client.post("/api/v1/projects", json={"name": "p"}, headers=headers).json()["id"]
    rows = [{"formula": f"Zn{i}O{i + 1}", "value": 1.0 + 0.1 * i} for i in range(1, 40)]
    r = client.post(
        f"/api/v1/projects/{pid}/measurements",
        json={"property": "band_gap", "unit": "eV", "rows": rows},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/models",
        json={"project_id": pid, "property": "band_gap", "n_estimators": 1000},
        headers=headers,
    )
    assert r.status_code in (201, 202), r.text
    app.state.matforge.store.close()

    env = {
        **os.environ,
        "MATFORGE_SERVER_JOB_HEARTBEAT_S": "0.2",
        "MATFORGE_SERVER_JOB_STALE_S": "8",  # longer than a restart: the pid check alone fails
        "MATFORGE_SERVER_JOB_POLL_S": "0.05",
    }

    def serve():
        port = free_port()
        cmd = ["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-m", "matforge"]
        cmd += ["serve", "--db", str(db), "--port", str(port), "--log-level", "warning"]
        process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        wait_for_port(port, process=process)
        return process

    def job():
        with Store(str(db)) as store, store.engine.connect() as conn:
            return conn.execute(sa.select(accounts.jobs)).one()

    def wait(predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = job()
            if predicate(row):
                return row
            time.sleep(0.02)
        raise AssertionError(f"job still {row.status} (attempts {row.attempts}, {row.worker})")

    first = serve()
    try:
        row = wait(lambda r: r.status != "queued", 60)
        assert row.status == "running" and row.worker.split(":")[1] == "1"  # PID 1
        first.kill()  # SIGKILL to unshare; --kill-child passes it to the server
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    leftover = tmp_path / "uploads" / "matforge-upload-k1ll3d"
    leftover.mkdir(parents=True)
    second = serve()
    try:
        assert not leftover.exists()
        row = wait(lambda r: r.attempts == 2, 60)
        assert row.worker is None or row.worker.split(":")[1] == "1"
        row = wait(lambda r: r.status in ("succeeded", "failed"), 120)
        assert (row.status, row.attempts) == ("succeeded", 2), row.error
    finally:
        stop_process(second)


def test_a_job_interrupted_by_a_shutdown_is_recovered_by_the_next_start_with_the_same_pid(
    store_url, tmp_path
):
    """A graceful stop gives up the leases of the jobs it interrupts, so the next server (here
    in the same process, as PID 1 is in a container) re-runs them at once, not a lease later."""
    import threading

    from matforge.server.auth import add_user
    from matforge.server.jobs import JobKind, JobRunner
    from matforge.store import Store
    from matforge.store.database import write_transaction

    started = threading.Event()

    def endless(ctx):
        started.set()
        while True:
            ctx.progress(0.5, "working")
            time.sleep(0.01)

    with Store(store_url) as store:
        owner = add_user(store.engine, "alice").id
        kinds = {"endless": JobKind("endless", endless)}
        first = JobRunner(store.engine, kinds, settings(tmp_path, job_heartbeat_s=5))
        with write_transaction(store.engine) as conn:
            job = first.submit(conn, "endless", owner, {}, project_ids=())
        first.start()
        assert started.wait(20)
        first.stop()
        assert _statuses(store.engine, [job])[job][0] == "running"
        second = JobRunner(store.engine, kinds, settings(tmp_path))
        assert second.recover() == 1
        assert _statuses(store.engine, [job])[job] == ("queued", None)


# --- end to end: `matforge serve` SIGKILLed while it ingests an upload ---------------------------


@pytest.mark.slow
def test_a_server_sigkilled_during_an_upload_leaves_no_data_and_its_next_start_no_files(tmp_path):
    """Issue #18 §3/§5: a server killed while it ingests an upload leaves its copy of the file in
    its upload folder and nothing in the store (the ingest is one transaction); the next start
    removes the copy, and the same upload then succeeds."""
    import subprocess
    import sys
    import threading

    import httpx
    from fastapi.testclient import TestClient

    from matforge.server import create_app
    from matforge.server.testing import free_port, stop_process, user_headers, wait_for_port
    from matforge.store import Store

    db, uploads = tmp_path / "store.db", tmp_path / "uploads"
    app = create_app(str(db), settings(tmp_path / "unused"))
    headers = user_headers(app.state.matforge.engine, "alice")
    client = TestClient(app)
    pid = client.post("/api/v1/projects", json={"name": "p"}, headers=headers).json()["id"]
    app.state.matforge.store.close()
    # 100,000 distinct formulas: seconds of validation, so the kill lands inside the ingest
    rows = "".join(f"Zn{i}O{i + 1},{1 + i % 7 * 0.1:.1f}\n" for i in range(1, 100_001))
    content = ("formula,value\n" + rows).encode()
    env = {**os.environ, "MATFORGE_SERVER_UPLOAD_DIR": str(uploads)}

    def serve():
        port = free_port()
        cmd = [sys.executable, "-m", "matforge", "serve", "--db", str(db), "--port", str(port),
               "--log-level", "warning"]  # fmt: skip
        process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        wait_for_port(port, process=process)
        return process, f"http://127.0.0.1:{port}"

    def upload(base):
        return httpx.post(
            f"{base}/api/v1/projects/{pid}/uploads",
            files={"file": ("gaps.csv", content, "text/csv")},
            data={"property": "band_gap", "unit": "eV"},
            headers=headers,
            timeout=300,
        )

    first, base = serve()
    answers = []
    sender = threading.Thread(target=lambda: answers.append(_answer_or_error(upload, base)))
    try:
        sender.start()
        deadline = time.monotonic() + 120
        while not list(uploads.glob("matforge-upload-*/*")) and time.monotonic() < deadline:
            time.sleep(0.005)
        copies = list(uploads.glob("matforge-upload-*/*"))
        assert copies, "the upload never reached the server's folder"
        first.kill()
        first.wait()
        sender.join(60)
    finally:
        if first.poll() is None:
            first.kill()
    assert answers and isinstance(answers[0], httpx.TransportError), answers  # no answer came
    assert list(uploads.glob("matforge-upload-*")), "the killed server left no copy to clean"
    with Store(str(db)) as store:
        assert store.datasets().empty and store.measurements().empty
    second, base = serve()
    try:
        assert list(uploads.glob("matforge-upload-*")) == []
        r = upload(base)
        assert r.status_code == 201, r.text
        assert r.json()["n_written"] == 100_000
    finally:
        stop_process(second)
    assert list(uploads.glob("matforge-upload-*")) == []


def _answer_or_error(send, *args):
    try:
        return send(*args)
    except Exception as exc:  # noqa: BLE001 - the test looks at what it was
        return exc
