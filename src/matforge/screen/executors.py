"""Where a screen's chunks run: in process, on a local process pool, or on a Dask cluster
(:func:`parse_executor` reads the spec; :func:`run_chunks` yields the results).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator, Sequence
from typing import Any

from matforge.errors import ScreenError
from matforge.screen.chunk import ChunkResult, ChunkTask, evaluate_chunk

__all__ = ["parse_executor", "run_chunks"]

_WORKER_TASK: ChunkTask | None = None


def _init_worker(payload: bytes) -> None:
    global _WORKER_TASK
    _WORKER_TASK = pickle.loads(payload)


def _worker_chunk(chunk_no: int) -> ChunkResult:
    return evaluate_chunk(_WORKER_TASK, chunk_no)


def _single_thread_env() -> None:
    # one BLAS/OpenMP thread per worker: the workers are the parallelism
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def parse_executor(spec) -> tuple[str, Any]:
    """``"serial"``, ``"processes:N"``, ``"dask:local:N"``, ``"dask:tcp://host:port"``,
    ``"local:N"`` / ``"tcp://..."`` (Dask shorthands) or a ``distributed.Client``."""
    if spec is None or spec == "serial":
        return "serial", None
    if not isinstance(spec, str):
        return "dask-client", spec
    s = spec.strip()
    if s.startswith("dask:"):
        s = s[5:]
        if not (s.startswith("local") or "://" in s):
            raise ScreenError(f"executor {spec!r}: use dask:local:N or dask:tcp://host:port")
    if s.startswith("processes"):
        _, _, n = s.partition(":")
        return "processes", int(n) if n else (os.cpu_count() or 1)
    if s.startswith("local"):
        _, _, n = s.partition(":")
        return "dask-local", int(n) if n else (os.cpu_count() or 1)
    if "://" in s:
        return "dask-address", s
    raise ScreenError(
        f"unknown executor {spec!r}: serial, processes:N, dask:local:N or dask:tcp://host:port"
    )


def run_chunks(task: ChunkTask, chunks: Sequence[int], executor) -> Iterator[ChunkResult]:
    """Chunk results, in completion order, from the chosen executor."""
    kind, arg = parse_executor(executor)
    if kind == "serial":
        for c in chunks:
            yield evaluate_chunk(task, c)
        return
    if kind == "processes":
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        _single_thread_env()
        payload = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        with ProcessPoolExecutor(
            max_workers=arg, mp_context=mp.get_context("spawn"),
            initializer=_init_worker, initargs=(payload,),
        ) as pool:  # fmt: skip
            todo = list(chunks)[::-1]
            running = set()
            while todo or running:
                while todo and len(running) < 2 * arg:
                    running.add(pool.submit(_worker_chunk, todo.pop()))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        return
    yield from _run_dask(task, chunks, kind, arg)


def _run_dask(task: ChunkTask, chunks: Sequence[int], kind: str, arg) -> Iterator[ChunkResult]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ScreenError("the Dask executor needs: pip install 'matforge[dask]'") from exc
    own_client = kind != "dask-client"
    cluster = None
    if kind == "dask-local":
        _single_thread_env()
        cluster = LocalCluster(
            n_workers=arg, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=40,
        )  # fmt: skip
        client = Client(cluster)
    elif kind == "dask-address":
        client = Client(arg, timeout="20s")
    else:
        client = arg
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        remote_task = client.scatter(task, broadcast=True, hash=False)
        todo = list(chunks)[::-1]
        ac = as_completed()
        for _ in range(min(len(todo), 2 * n_workers)):
            ac.add(client.submit(evaluate_chunk, remote_task, todo.pop(), pure=False))
        for fut in ac:
            result = fut.result()
            fut.release()
            if todo:
                ac.add(client.submit(evaluate_chunk, remote_task, todo.pop(), pure=False))
            yield result
    finally:
        if own_client:
            client.close()
            if cluster is not None:
                cluster.close()
