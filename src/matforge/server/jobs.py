"""Background jobs that outlive requests and survive restarts.

A job is a row of the ``jobs`` table; its status (``queued`` → ``running`` → ``succeeded`` or
``failed``), progress and result are written there as it runs, so a client polls
``GET /jobs/{id}`` and a restarted server knows what was going on.

:class:`JobRunner` is the worker pool of one server process: a dispatcher thread claims queued
jobs (an ``UPDATE ... WHERE status = 'queued'`` that only one process can win, so several
servers may share a database) and runs them on worker threads. A claimed job holds a *lease*
(``lease_expires_at``, ``job_stale_s`` ahead) that a heartbeat thread renews every
``job_heartbeat_s``. A ``running`` job whose lease expired belongs to a worker that is gone,
whatever its recorded pid says: after a SIGKILL the restarted server often has the very same pid
(PID 1 in a container), so a pid alone cannot tell. At start-up, and again on every heartbeat,
such jobs (and those of a same-host pid that is dead, a shortcut) are re-queued if their kind is
restartable and attempts remain, else marked ``failed`` with "server restarted".

A job records the projects it reads (``job_projects``: the project a model is trained on, the
project of the model a screen or design uses, a campaign's project). Its status and result are
readable by its owner while the owner can read every one of those projects *now*
(:func:`matforge.store.repositories.jobs.list_readable`): a project made private again, or a membership removed, also hides what
was computed from it, answered 404 like anything else not visible.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, timedelta

from matforge.errors import JobCancelled, MatforgeError
from matforge.server import clock
from matforge.server.settings import ServerSettings
from matforge.store.database import write_transaction
from matforge.store.repositories import Connection, Engine
from matforge.store.repositories import jobs as repo

log = logging.getLogger("matforge.server.jobs")

RESTART_ERROR = "failed (server restarted)"


@dataclass
class JobContext:
    """What a job's function gets: its id, owner, parameters and a progress callback."""

    job_id: int
    owner_id: int
    params: dict
    report: Callable[[float, str], None]
    stopping: threading.Event

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress (0..1) and what is being done; raises JobCancelled on shutdown."""
        if self.stopping.is_set():
            raise JobCancelled("server shutting down")
        self.report(max(0.0, min(1.0, float(fraction))), message)


@dataclass(frozen=True)
class JobKind:
    """A kind of job: the function that runs it (returns a JSON-able result dict), and
    whether an interrupted run may simply be run again (``restartable``)."""

    name: str
    run: Callable[[JobContext], dict]
    restartable: bool = True
    #: called with (job_id, error message) when a job of this kind ends in failure
    on_failure: Callable[[int, str], None] | None = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _naive_utc(dt):
    # SQLite gives naive datetimes (written as UTC), PostgreSQL aware ones.
    if dt is None or dt.tzinfo is None:
        return dt
    return dt.astimezone(UTC).replace(tzinfo=None)


class JobRunner:
    """Runs the queued jobs of one store on a pool of threads (see the module docstring)."""

    def __init__(self, engine: Engine, kinds: dict[str, JobKind], settings: ServerSettings):
        self.engine = engine
        self.kinds = kinds
        self.settings = settings
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Recover jobs of dead processes, then start dispatching."""
        self.recover()
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, self.settings.job_workers), thread_name_prefix="matforge-job"
        )
        for target, name in (
            (self._dispatch_loop, "dispatch"),
            (self._heartbeat_loop, "heartbeat"),
        ):
            thread = threading.Thread(target=target, name=f"matforge-job-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; running ones are asked to stop at their next progress report
        and are re-queued (or failed) like after a crash."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._threads.clear()

    def wake(self) -> None:
        """Look at the queue now (after a job was submitted)."""
        self._wake.set()

    # --- queue -----------------------------------------------------------------------------

    def submit(
        self,
        conn: Connection,
        kind: str,
        owner_id: int,
        params: dict,
        *,
        project_ids: Iterable[int],
    ) -> int:
        """Queue a job in the caller's transaction ``conn``; returns its row id. ``project_ids``:
        every project whose data the job reads (its result then follows their access); required,
        so that a new kind of job cannot forget it and leave its result readable without the
        access check (``()`` for a job that reads no project, whose result only its owner reads)."""
        if kind not in self.kinds:
            raise MatforgeError(f"unknown job kind {kind!r}")
        job_id = repo.insert(conn, kind, owner_id, params, project_ids, clock.now())
        return job_id

    def recover(self) -> int:
        """Re-queue or fail the ``running`` jobs whose worker is gone (its lease expired, or
        its process on this host is dead); returns how many. Called at start-up and on every
        heartbeat, so a job of a killed server is recovered within ``job_stale_s`` even when
        the restarted server has the dead one's pid."""
        host = socket.gethostname()
        now = clock.now()
        stale_before = _naive_utc(now - timedelta(seconds=self.settings.job_stale_s))
        with self.engine.connect() as conn:  # read first: the periodic check rarely writes
            rows = repo.running_elsewhere(conn, self.worker_id)
        dead = []
        for row in rows:
            w_host, _, rest = (row.worker or "").partition(":")
            pid = rest.partition(":")[0]
            if w_host == host and pid.isdigit() and not _pid_alive(int(pid)):
                dead.append((row, ("worker", row.worker)))
            elif row.lease_expires_at is not None:
                if _naive_utc(row.lease_expires_at) <= _naive_utc(now):
                    # guarded by the lease itself: a heartbeat renewing it meanwhile wins
                    dead.append((row, ("lease_expired", now)))
            elif row.heartbeat_at is None or _naive_utc(row.heartbeat_at) < stale_before:
                # a job claimed before leases existed (migration 0007)
                dead.append((row, ("no_lease", None)))
        if not dead:
            return 0
        n = 0
        with write_transaction(self.engine) as conn:
            for row, still_dead in dead:
                kind = self.kinds.get(row.kind)
                if (
                    kind is not None
                    and kind.restartable
                    and row.attempts < self.settings.job_max_attempts
                ):
                    n += repo.take_back(
                        conn,
                        row.id,
                        still_dead,
                        status="queued",
                        worker=None,
                        lease_expires_at=None,
                        progress=0.0,
                        message="re-queued after a server restart",
                    )
                else:
                    failed = repo.take_back(
                        conn,
                        row.id,
                        still_dead,
                        status="failed",
                        error=RESTART_ERROR,
                        message=RESTART_ERROR,
                        lease_expires_at=None,
                        finished_at=clock.now(),
                    )
                    n += failed
                    if failed and kind is not None and kind.on_failure is not None:
                        kind.on_failure(row.id, RESTART_ERROR)
        if n:
            log.info("recovered %d job(s) of a server process that is gone", n)
            self._wake.set()
        return n

    def _lease(self) -> dict:
        """The heartbeat columns that renew a lease from now."""
        now = clock.now()
        return {
            "heartbeat_at": now,
            "lease_expires_at": now + timedelta(seconds=self.settings.job_stale_s),
        }

    def _claim(self) -> tuple[int, str, int, dict] | None:
        with self.engine.connect() as conn:
            candidates = repo.queued(conn, self.kinds, limit=5)
        for job_id in candidates:
            now = clock.now()
            with write_transaction(self.engine) as conn:
                row = repo.claim(
                    conn,
                    job_id,
                    worker=self.worker_id,
                    started_at=now,
                    **self._lease(),
                    message="started",
                )
                if row is None:
                    continue  # another process took it
            return job_id, row.kind, row.owner_id, row.params or {}
        return None

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                while not self._stop.is_set():
                    with self._lock:
                        free = len(self._running) < max(1, self.settings.job_workers)
                    if not free:
                        break
                    job = self._claim()
                    if job is None:
                        break
                    with self._lock:
                        self._running.add(job[0])
                    self._pool.submit(self._run, *job)
            except Exception:  # the database may be briefly unreachable; try again later
                log.exception("job dispatcher failed to read the queue")
            self._wake.wait(self.settings.job_poll_s)
            self._wake.clear()

    def _heartbeat_loop(self) -> None:
        """Renew the leases of the jobs this runner runs, then recover the jobs of workers
        whose leases expired (a server killed and restarted, or another server sharing the
        database that died)."""
        while not self._stop.wait(self.settings.job_heartbeat_s):
            with self._lock:
                running = list(self._running)
            try:
                if running:
                    with write_transaction(self.engine) as conn:
                        repo.renew(conn, running, self.worker_id, **self._lease())
                self.recover()
            except Exception:  # the database may be briefly unreachable; try again later
                log.exception("job heartbeat failed")

    # --- running ---------------------------------------------------------------------------

    def _update(self, job_id: int, **values) -> None:
        with write_transaction(self.engine) as conn:
            repo.update(conn, job_id, self.worker_id, **values)

    def _run(self, job_id: int, kind_name: str, owner_id: int, params: dict) -> None:
        kind = self.kinds[kind_name]

        def report(fraction: float, message: str) -> None:
            self._update(job_id, progress=fraction, message=message[:500], **self._lease())

        ctx = JobContext(job_id, owner_id, params, report, self._stop)
        try:
            result = kind.run(ctx)
        except JobCancelled:
            # Left "running" with its lease given up: the next start (even with this pid), or
            # another server sharing the store, re-queues or fails it as after a crash.
            self._update(job_id, lease_expires_at=clock.now())
            log.info("job %d interrupted by shutdown", job_id)
        except Exception as exc:
            if isinstance(exc, MatforgeError):
                error = str(exc)
            else:
                log.error("job %d (%s) crashed:\n%s", job_id, kind_name, traceback.format_exc())
                # the message of an unexpected exception may hold paths, SQL or another
                # user's data: the owner reads that the job crashed, the log says why
                error = f"internal error ({type(exc).__name__}); the server log has the details"
            self._update(
                job_id,
                status="failed",
                error=error[:10_000],
                message="failed",
                finished_at=clock.now(),
            )
            if kind.on_failure is not None:
                try:
                    kind.on_failure(job_id, error)
                except Exception:
                    log.exception("on_failure of job %d failed", job_id)
        else:
            self._update(
                job_id,
                status="succeeded",
                progress=1.0,
                message="done",
                result=result,
                finished_at=clock.now(),
            )
        finally:
            with self._lock:
                self._running.discard(job_id)
            self._wake.set()
