"""The streaming screening pipeline.

>>> screen = Screen(
...     space,
...     models={"bulk_modulus": PropertyModel(bulk, log10=True),
...             "shear_modulus": PropertyModel(shear, log10=True)},
...     featurizer=featurizer,
...     derive=["hardness_vickers", "pugh_ratio"],
...     where="hardness_vickers > 40 and bulk_modulus > 250",
...     rank_by="ucb:hardness_vickers",
...     top_k=100,
... )
>>> result = screen.run(executor="processes:2", out="results/screen")
>>> result.top            # DataFrame, best first

Each chunk of the space goes through, independently of every other chunk:

1. **generate** the compositions (sparse matrix; unparseable rows become *rejects* with the reason);
2. **featurize** (one feature matrix shared by every model);
3. **funnel** (optional, :class:`Funnel`): each model's cheap estimator predicts a mean for every
   row, derived properties are computed from those means, and only rows whose funnel column
   clears a threshold go on. The threshold is fixed before the screen starts, from a
   deterministic reference sample of the space, so which rows survive does not depend on the
   chunking. Rows stopped here keep their cheap values (``stage == "cheap"``, no std) in the full
   results and are never ranked;
4. **predict** mean and std with every model (``stage == "full"``);
5. **derive** properties by Monte Carlo over the predictive distributions
   (:func:`matforge.properties.propagate`, common random numbers);
6. **domain**: each model's applicability domain, where it has one (every registry model
   does): ``domain_distance`` (the largest over the models) and ``in_domain`` (inside every
   model's domain; per model ``<name>_domain_distance`` / ``<name>_in_domain`` too when there
   are several), see :meth:`matforge.models.pipeline.CompositionModel.applicability_domain`;
   and (optional, ``domain=``) distance to a training set, map coordinates, cluster;
7. **filter** with the ``where`` expression on the means (:class:`~matforge.screen.expression.Expression`);
8. **rank** (:mod:`matforge.screen.ranking`) and keep the chunk's best ``top_k`` distinct
   compositions (or its Pareto front).

The driver merges chunk results *in chunk order*: top-k (ties broken by position, one row per
composition with ``dedupe``), counters, and — with ``save_all`` — the full results as Parquet.
Because every row's values depend only on that row, the result is the same for any chunk size
and any executor (in-process, a local process pool, a Dask cluster). After each chunk in order
the state is checkpointed, so ``resume=True`` continues a killed screen from the last finished
chunk and gives the same result as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matforge.errors import ScreenError
from matforge.properties.derived import DerivedProperty, get_derived
from matforge.properties.propagation import Predictive, nan_mean_std, normal_draws
from matforge.screen.expression import Expression
from matforge.screen.keys import composition_keys
from matforge.screen.ranking import (
    NoveltyWeighted,
    ParetoFront,
    ProbabilityOfFeasibility,
    Ranking,
    pareto_mask,
    parse_ranking,
)
from matforge.screen.spaces import CandidateSpace

__all__ = [
    "ChunkResult",
    "Funnel",
    "PropertyModel",
    "Screen",
    "ScreenResult",
    "evaluate_chunk",
    "model_domain_columns",
]

_MC_BLOCK = 2048  # rows per Monte Carlo block: bounds the (rows × samples) temporaries
_DOMAIN_COLUMNS = ("distance", "map_x", "map_y", "cluster")


class _StablePickler(pickle.Pickler):
    """Pickles structured arrays (scikit-learn's tree nodes) field by field: the padding bytes
    between their fields are uninitialised and differ between two loads of the same model."""

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray) and obj.dtype.names:
            fields = tuple(np.ascontiguousarray(obj[n]).tobytes() for n in obj.dtype.names)
            return tuple, ((str(obj.dtype), obj.shape, *fields),)
        return NotImplemented


def _stable_pickle(obj) -> bytes:
    """Bytes that identify ``obj`` for a fingerprint (never unpickled): equal for equal models,
    also when loaded separately from the same file."""
    import io

    buf = io.BytesIO()
    _StablePickler(buf, protocol=4).dump(obj)
    return buf.getvalue()


@dataclass
class PropertyModel:
    """One property's model, as a screen uses it.

    Args:
        estimator: fitted, with ``predict(X, return_std=True) -> (mean, std)`` on the screen's
            feature matrix (e.g. :class:`matforge.models.BoostedEnsembleUQ`).
        log10: the estimator predicts log10 of the property; the predictive distribution is
            then log-normal and the result columns are in the property's own units.
        unit: the property's unit (for reports), e.g. ``"GPa"``.
        lower: clip Monte Carlo samples below this (e.g. 0 for a modulus, normal models only).
        cheap: optional fast estimator with ``predict(X) -> mean`` (same features, same scale as
            ``estimator``) used by a :class:`Funnel` on every candidate.
        featurizer: this model's own featurizer, if it differs from the screen's (features are
            computed once per chunk per distinct featurizer).
        domain: the model's applicability domain (a fitted
            :class:`~matforge.models.domain.DomainModel` with ``threshold_``): adds
            ``domain_distance`` and ``in_domain`` to the results.
        domain_featurizer: the features ``domain`` is measured in, if not the model's.
    """

    estimator: Any
    log10: bool = False
    unit: str = ""
    lower: float | None = None
    cheap: Any = None
    featurizer: Any = None
    domain: Any = None
    domain_featurizer: Any = None

    @classmethod
    def from_composition_model(cls, model, *, unit: str = "", lower: float | None = None):
        """Wrap a fitted :class:`matforge.models.pipeline.CompositionModel` (e.g. from
        :func:`matforge.models.registry.load_model`): its featurizer, imputation, target
        transform and std scale are applied, predictions are in the model's target units, and
        its applicability domain gives every candidate ``domain_distance`` and ``in_domain``."""
        if getattr(model, "task", "regression") != "regression":
            raise ScreenError("only regression models can be screened on")
        # The model is only read (fit and load_model built all of this), never completed here.
        featurizer = getattr(model, "featurizer_", None)
        if featurizer is None:  # a model assembled by hand
            from matforge.models.pipeline import build_featurizer

            featurizer = build_featurizer(model.featurizer)
        domain = model.applicability_domain()
        domain_featurizer = getattr(model, "domain_featurizer_", None)
        if domain_featurizer is None:  # a model assembled by hand
            domain_featurizer = model._new_domain_featurizer(featurizer)
        return cls(
            _CompositionModelOnFeatures(model), unit=unit or getattr(model, "unit", "") or "",
            lower=lower, featurizer=featurizer, domain=domain,
            domain_featurizer=domain_featurizer,
        )  # fmt: skip

    def predictive(self, X: np.ndarray) -> Predictive:
        mean, std = self.estimator.predict(X, return_std=True)
        return Predictive(
            np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64),
            self.log10, self.lower,
        )  # fmt: skip

    def cheap_value(self, X: np.ndarray) -> np.ndarray:
        if self.cheap is None:
            raise ScreenError("a funnel needs a cheap estimator on every model")
        v = np.asarray(self.cheap.predict(X), dtype=np.float64)
        return np.power(10.0, v) if self.log10 else v


class _CompositionModelOnFeatures:
    """A CompositionModel's own feature-level prediction
    (:meth:`~matforge.models.pipeline.CompositionModel.predict_features`: imputation,
    estimator, inverse target transform, ``std_scale_``) on features its featurizer computed,
    so a screen predicts exactly what ``predict`` does."""

    def __init__(self, model):
        self.model = model

    def predict(self, X, return_std: bool = False):
        return self.model.predict_features(X, return_std=return_std)


@dataclass(frozen=True)
class Funnel:
    """Pre-screen every candidate with the models' cheap estimators; evaluate the full models
    (with uncertainty) only on the rows that clear the threshold.

    Args:
        keep: fraction of the space meant to pass; the threshold is the matching quantile of the
            funnel column on a reference sample of the space (ignored if ``threshold`` is set).
        threshold: fixed threshold on the funnel column (its cheap value).
        column: the funnel column (a model or derived property); default: the ranking's.
        reference_size: candidates in the reference sample (evenly spread over the space).
    """

    keep: float = 0.05
    threshold: float | None = None
    column: str | None = None
    reference_size: int = 20_000


@dataclass
class ChunkResult:
    """What one chunk sends back to the driver."""

    chunk: int
    start: int
    stop: int
    counts: dict[str, int]
    filtered: dict[str, int]
    top: Any  # pandas DataFrame of the chunk's best rows (or its Pareto front)
    full: Any = None  # pandas DataFrame of every featurized row (save_all)
    rejects: Any = None  # pandas DataFrame: index, formula, reason
    seconds: float = 0.0


@dataclass
class ScreenResult:
    """The outcome of :meth:`Screen.run`.

    Attributes:
        top: the ranked candidates, best first (a pandas DataFrame).
        summary: counts, timings and settings (also written to ``summary.json``).
        out: the output folder, if any (``top.csv``, ``summary.json``, ``rejects.csv``,
            ``results.parquet`` with ``save_all``).
    """

    top: Any
    summary: dict[str, Any]
    out: Path | None = None


@dataclass
class _Task:
    """Everything a worker needs to evaluate any chunk (pickled once per worker)."""

    space: CandidateSpace
    featurizer: Any
    models: dict[str, PropertyModel]
    derived: list[DerivedProperty]
    where: Expression | None
    ranking: Ranking
    top_k: int | None
    funnel_threshold: float | None
    funnel_column: str | None
    funnel_descending: bool
    domain: Any
    dedupe: bool
    draws: np.ndarray
    save_all: bool
    chunk_size: int
    labels: tuple[str, ...] = field(default=("formula",))


# --------------------------------------------------------------------------------------------
# one chunk
# --------------------------------------------------------------------------------------------


def _model_inputs(task: _Task, X: np.ndarray, batch, rows: np.ndarray) -> dict[Any, np.ndarray]:
    """Feature matrix (rows ``rows`` of ``batch``) for each model: the screen's ``X`` unless the
    model brings its own featurizer (computed once per distinct featurizer); under
    ``("domain", name)`` the features of a model's domain where they are not the model's."""
    out: dict[Any, np.ndarray] = {}
    own: dict[int, np.ndarray] = {}

    def features(featurizer) -> np.ndarray:
        if featurizer is None or featurizer is task.featurizer:
            return X
        if id(featurizer) not in own:
            own[id(featurizer)] = featurizer.featurize_batch(batch)[rows]
        return own[id(featurizer)]

    for name, m in task.models.items():
        out[name] = features(m.featurizer)
        if m.domain is not None and m.domain_featurizer not in (None, m.featurizer):
            out[("domain", name)] = features(m.domain_featurizer)
    return out


def _domain_columns(task: _Task, X: np.ndarray, inputs: dict) -> dict[str, np.ndarray]:
    """``domain_distance`` (largest over the models) and ``in_domain`` (inside every model's
    domain), and per model when several models have a domain."""
    with_domain = [(name, m) for name, m in task.models.items() if m.domain is not None]
    if not with_domain:
        return {}
    cols: dict[str, np.ndarray] = {}
    dists, inside = [], []
    for name, m in with_domain:
        d = m.domain.distance(inputs.get(("domain", name), inputs.get(name, X)))
        ok = m.domain.in_domain(d)
        if len(with_domain) > 1:
            cols[f"{name}_domain_distance"], cols[f"{name}_in_domain"] = d, ok
        dists.append(d)
        inside.append(ok)
    cols["domain_distance"] = np.max(dists, axis=0)
    cols["in_domain"] = np.all(inside, axis=0)
    return cols


def model_domain_columns(models: Mapping[str, PropertyModel]) -> tuple[str, ...]:
    """Names of the applicability-domain columns a screen of ``models`` adds."""
    names = [name for name, m in models.items() if m.domain is not None]
    if not names:
        return ()
    per_model = [f"{n}_{c}" for n in names for c in ("domain_distance", "in_domain")]
    return ("domain_distance", "in_domain", *(per_model if len(names) > 1 else ()))


def _cheap_columns(task: _Task, X) -> dict[str, np.ndarray]:
    cols = {
        name: m.cheap_value(X[name] if isinstance(X, dict) else X)
        for name, m in task.models.items()
    }
    for d in task.derived:
        cols[d.name] = np.asarray(d(cols), dtype=np.float64)
    return cols


def _full_columns(
    task: _Task, X: np.ndarray, inputs: dict[str, np.ndarray] | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Means/stds of models and derived properties, domain columns, and P(where) if ranked on.

    ``X``: the screen's features; ``inputs``: per-model features where they differ.
    Returns (columns, finite mask of the model predictions).
    """
    n = len(X)
    names = list(task.models)
    inputs = inputs or {}
    preds = {name: task.models[name].predictive(inputs.get(name, X)) for name in names}
    cols: dict[str, np.ndarray] = {}
    finite = np.ones(n, dtype=bool)
    for name, p in preds.items():
        finite &= np.isfinite(p.loc) & np.isfinite(p.scale)
        cols[name] = p.mean()
        cols[f"{name}_std"] = p.std()
    model_domain = _domain_columns(task, X, inputs)
    cols.update(model_domain)
    if task.domain is not None:
        cols.update(task.domain.transform(X))
    want_p = isinstance(task.ranking, ProbabilityOfFeasibility)
    if task.derived or want_p:
        for d in task.derived:
            cols[d.name] = np.full(n, np.nan)
            cols[f"{d.name}_std"] = np.full(n, np.nan)
        if want_p:
            cols["probability"] = np.full(n, np.nan)
        plain = {k: v for k, v in cols.items() if k in _DOMAIN_COLUMNS or k in model_domain}
        for lo in range(0, n, _MC_BLOCK):
            block = slice(lo, min(lo + _MC_BLOCK, n))
            samples = {
                name: preds[name].take(block).sample(task.draws[:, j])
                for j, name in enumerate(names)
            }
            for d in task.derived:
                s = np.asarray(d(samples), dtype=np.float64)
                samples[d.name] = s
                cols[d.name][block], cols[f"{d.name}_std"][block] = nan_mean_std(s)
            if want_p:
                env = dict(samples)
                for k, v in plain.items():
                    env[k] = v[block, None]
                ok = np.asarray(task.where.evaluate(env), dtype=bool)
                cols["probability"][block] = ok.mean(axis=1)
    return cols, finite


def _select(task: _Task, score: np.ndarray, index: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Rows (positions into the arrays) to keep: best score first, ties by index, one per key."""
    cand = np.flatnonzero(np.isfinite(score))
    if not len(cand):
        return cand
    order = cand[np.lexsort((index[cand], -score[cand]))]
    if task.dedupe:
        _, first = np.unique(keys[order], return_index=True)
        order = order[np.sort(first)]
    if isinstance(task.ranking, ParetoFront):
        return order  # the driver keeps the front
    return order[: task.top_k] if task.top_k else order


def _frame(columns: dict[str, np.ndarray], rows: np.ndarray, labels: dict[str, list]):
    import pandas as pd

    data: dict[str, Any] = {}
    for k, v in labels.items():
        data[k] = v
    for k, v in columns.items():
        data[k] = np.asarray(v)[rows]
    return pd.DataFrame(data)


def evaluate_chunk(task: _Task, chunk_no: int) -> ChunkResult:
    """Run positions ``[chunk_no·chunk_size, …)`` of the space through the pipeline."""
    import pandas as pd

    t0 = time.perf_counter()
    start = chunk_no * task.chunk_size
    stop = min(start + task.chunk_size, len(task.space))
    chunk = task.space.chunk(start, stop)
    batch = chunk.batch
    n = len(chunk)
    reject_rows: list[int] = [r for r, _ in batch.errors]
    reject_why: list[str] = [m for _, m in batch.errors]

    X = task.featurizer.featurize_batch(batch) if n else np.zeros((0, 1))
    usable = batch.valid.copy()
    if n:
        no_features = usable & ~np.isfinite(X).any(axis=1)
        for r in np.flatnonzero(no_features):
            reject_rows.append(int(r))
            reject_why.append("no finite features")
        usable &= ~no_features
    rows = np.flatnonzero(usable)
    per_model = _model_inputs(task, X[rows], batch, rows)

    # stage 1: funnel
    if task.funnel_threshold is not None and len(rows):
        cheap = _cheap_columns(task, per_model)
        v = cheap[task.funnel_column]
        survive = (
            v >= task.funnel_threshold if task.funnel_descending else v <= task.funnel_threshold
        )
        survive &= np.isfinite(v)
    else:
        cheap = None
        survive = np.ones(len(rows), dtype=bool)

    # stage 2: full models on the survivors
    full_rows = rows[survive]
    cols, finite = _full_columns(task, X[full_rows], {k: v[survive] for k, v in per_model.items()})
    for r in full_rows[~finite]:
        reject_rows.append(int(r))
        reject_why.append("model prediction is not finite")
    if not finite.all():
        full_rows = full_rows[finite]
        cols = {k: v[finite] for k, v in cols.items()}
    m = len(full_rows)
    if isinstance(task.ranking, ProbabilityOfFeasibility):
        passed = cols["probability"] > task.ranking.minimum
    elif task.where is not None:
        passed = np.asarray(task.where.evaluate(cols), dtype=bool) & np.ones(m, dtype=bool)
    else:
        passed = np.ones(m, dtype=bool)
    score = np.asarray(task.ranking.score(cols), dtype=np.float64) if m else np.zeros(0)
    score = np.where(passed, score, np.nan)
    cols["score"] = score
    index = chunk.index[full_rows]
    keys = composition_keys(batch.fractions[full_rows]) if m else np.zeros(0, dtype=np.uint64)
    keep = _select(task, score, index, keys)
    if isinstance(task.ranking, ParetoFront) and len(keep):
        front = pareto_mask(task.ranking.matrix({k: v[keep] for k, v in cols.items()}))
        keep = keep[front]
    top_cols = {"index": index, **cols, "_key": keys}
    top = _frame(top_cols, keep, chunk.labels(full_rows[keep]))

    full = None
    if task.save_all:
        full = _full_table(task, chunk, rows, survive, full_rows, cols, passed, cheap)
    rejects = None
    if reject_rows:
        order = np.argsort(reject_rows, kind="stable")
        rr = np.asarray(reject_rows, dtype=np.int64)[order]
        text = chunk.labels(rr)["formula"]
        rejects = pd.DataFrame(
            {"index": chunk.index[rr], "formula": text, "reason": [reject_why[i] for i in order]}
        )
    counts = {
        "considered": chunk.n_considered,
        "candidates": n,
        "rejected": len(reject_rows),
        "featurized": int(len(rows)),
        "evaluated": m,
        "passed": int(passed.sum()),
    }
    if "in_domain" in cols:
        counts["out_of_domain"] = int(m - np.count_nonzero(cols["in_domain"]))
    return ChunkResult(
        chunk_no, start, stop, counts, dict(chunk.filtered), top, full, rejects,
        time.perf_counter() - t0,
    )  # fmt: skip


def _full_table(task, chunk, rows, survive, full_rows, cols, passed, cheap):
    """Every featurized row: full-stage values where evaluated, cheap means elsewhere."""
    import pandas as pd

    n = len(rows)
    where_full = np.full(len(chunk), -1, dtype=np.int64)
    where_full[full_rows] = np.arange(len(full_rows))
    pos = where_full[rows]
    is_full = pos >= 0
    data: dict[str, Any] = {"index": chunk.index[rows]}
    data.update(chunk.labels(rows))
    names = list(cols)
    for k in names:
        v = np.asarray(cols[k])
        if v.dtype.kind == "b":  # in_domain: NA where only the cheap stage ran
            values = np.zeros(n, dtype=bool)
            values[is_full] = v[pos[is_full]]
            data[k] = pd.arrays.BooleanArray(values, ~is_full)
            continue
        out = np.full(
            n,
            -1 if v.dtype.kind == "i" else np.nan,
            dtype=v.dtype if v.dtype.kind == "i" else np.float64,
        )
        out[is_full] = v[pos[is_full]]
        if cheap is not None and k in cheap:
            out[~is_full] = cheap[k][~is_full]
        data[k] = out
    p = np.zeros(n, dtype=bool)
    p[is_full] = passed[pos[is_full]]
    data["passed"] = p
    data["stage"] = np.where(is_full, "full", "cheap")
    return pd.DataFrame(data)


# --------------------------------------------------------------------------------------------
# executors
# --------------------------------------------------------------------------------------------

_WORKER_TASK: _Task | None = None


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


def _run_chunks(task: _Task, chunks: Sequence[int], executor) -> Iterator[ChunkResult]:
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


def _run_dask(task: _Task, chunks: Sequence[int], kind: str, arg) -> Iterator[ChunkResult]:
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


# --------------------------------------------------------------------------------------------
# the screen
# --------------------------------------------------------------------------------------------


class Screen:
    """A high-throughput screen of a candidate space (see module docstring).

    Args:
        space: a :class:`~matforge.screen.spaces.CandidateSpace`.
        models: property name → :class:`PropertyModel` (or a bare estimator with
            ``predict(X, return_std=True)``, taken as a normal model in the property's units).
        featurizer: a composition featurizer with ``featurize_batch``; the models without a
            featurizer of their own must have been trained on its columns (default: the
            models' own featurizer when they all have one, else Magpie + stoichiometry +
            valence orbitals).
        derive: derived properties (names from :data:`matforge.properties.DERIVED` or
            :class:`~matforge.properties.DerivedProperty` objects), computed by Monte Carlo.
        where: filter expression on result columns (means), e.g.
            ``"hardness_vickers > 40 and bulk_modulus > 250"``.
        rank_by: a ranking spec or object (:func:`~matforge.screen.ranking.parse_ranking`);
            default: the first derived property, else the first model, largest first.
        top_k: candidates kept (None: all that pass — mind the memory).
        funnel: a :class:`Funnel` (needs ``cheap`` estimators on every model).
        domain: a fitted :class:`~matforge.screen.domain.DomainModel` (adds ``distance``,
            ``map_x``, ``map_y``, ``cluster``; needed for novelty ranking). The models' own
            applicability domains (:class:`PropertyModel` ``domain``) add ``domain_distance``
            and ``in_domain`` independently of it.
        dedupe: keep one row per composition in the ranking.
        n_samples, seed, correlation: Monte Carlo settings (``correlation``: between the models'
            errors, in ``models`` order; scalar or matrix).
        chunk_size: positions per chunk.
    """

    def __init__(
        self,
        space: CandidateSpace,
        models: Mapping[str, Any],
        *,
        featurizer=None,
        derive: Sequence[str | DerivedProperty] = (),
        where: str | None = None,
        rank_by: str | Ranking | None = None,
        top_k: int | None = 100,
        funnel: Funnel | None = None,
        domain=None,
        dedupe: bool = True,
        n_samples: int = 256,
        seed: int = 0,
        correlation=None,
        chunk_size: int = 20_000,
    ):
        if not models:
            raise ScreenError("a screen needs at least one model")
        self.space = space
        self.models = {
            k: m if isinstance(m, PropertyModel) else PropertyModel(m) for k, m in models.items()
        }
        own = [m.featurizer for m in self.models.values() if m.featurizer is not None]
        if featurizer is None and len(own) == len(self.models):
            featurizer = own[0]  # e.g. registry models: no extra feature set to compute
        if featurizer is None:
            from matforge.features import (
                FeatureSet,
                MagpieFeaturizer,
                Stoichiometry,
                ValenceOrbital,
            )

            featurizer = FeatureSet([MagpieFeaturizer(), Stoichiometry(), ValenceOrbital()])
        self.featurizer = featurizer
        self.derived = [get_derived(d) for d in derive]
        available = set(self.models)
        for d in self.derived:
            missing = [i for i in d.inputs if i not in available]
            if missing:
                raise ScreenError(
                    f"derived property {d.name!r} needs {', '.join(missing)}; models give "
                    f"{', '.join(sorted(self.models))}"
                )
            available.add(d.name)
        columns = set(available)
        columns |= {f"{c}_std" for c in available}
        columns |= set(model_domain_columns(self.models))
        if domain is not None:
            columns |= set(_DOMAIN_COLUMNS)
        self.columns = columns
        self.where = Expression(where) if where else None
        if self.where is not None:
            self.where.check_columns(columns)
        if rank_by is None:
            rank_by = self.derived[0].name if self.derived else next(iter(self.models))
        self.ranking = parse_ranking(rank_by)
        if isinstance(self.ranking, ProbabilityOfFeasibility) and self.where is None:
            raise ScreenError("rank_by='probability' needs a where= expression (the constraints)")
        needs = [c for c in self.ranking.needs if c != "probability"]
        missing = [c for c in needs if c not in columns]
        if missing:
            hint = " (a domain= model gives 'distance')" if "distance" in missing else ""
            raise ScreenError(
                f"ranking {self.ranking.describe()!r} needs column(s) {', '.join(missing)}{hint}; "
                f"available: {', '.join(sorted(columns))}"
            )
        if top_k is not None and top_k < 1:
            raise ScreenError(f"top_k must be >= 1 or None, got {top_k!r}")
        self.top_k = top_k
        self.funnel = funnel
        if funnel is not None:
            col = funnel.column or self.ranking.funnel_column
            if col is None or col not in available:
                raise ScreenError(f"funnel column {col!r} is not a model or derived property")
            if any(m.cheap is None for m in self.models.values()):
                raise ScreenError("a funnel needs a cheap estimator on every model")
        self.domain = domain
        self.dedupe = dedupe
        self.n_samples = n_samples
        self.seed = seed
        self.correlation = correlation
        if chunk_size < 1:
            raise ScreenError(f"chunk_size must be >= 1, got {chunk_size!r}")
        self.chunk_size = int(chunk_size)

    # -- set-up ------------------------------------------------------------------------------
    def _reference_rows(self, size: int) -> list[tuple[int, int]]:
        """Evenly spread slices of the space (deterministic: depends on its length only)."""
        n = len(self.space)
        if n <= size:
            return [(0, n)]
        blocks = 20
        width = max(1, size // blocks)
        starts = np.linspace(0, n - width, blocks).astype(np.int64)
        return [(int(s), int(s) + width) for s in starts]

    def _reference_values(self, column: str, size: int, cheap: bool) -> np.ndarray:
        out = []
        tmp = _Task(**{**self._task_kwargs(None, False), "funnel_threshold": None})
        for a, b in self._reference_rows(size):
            chunk = self.space.chunk(a, b)
            if not len(chunk):
                continue
            valid = np.flatnonzero(chunk.batch.valid)
            X = self.featurizer.featurize_batch(chunk.batch)[valid]
            inputs = _model_inputs(tmp, X, chunk.batch, valid)
            if cheap:
                cols = _cheap_columns(tmp, inputs)
            else:
                cols, _ = _full_columns(tmp, X, inputs)
            out.append(cols[column])
        v = np.concatenate(out) if out else np.zeros(0)
        return v[np.isfinite(v)]

    def _task_kwargs(self, threshold, save_all) -> dict[str, Any]:
        descending = self.ranking.funnel_descending
        return dict(
            space=self.space,
            featurizer=self.featurizer,
            models=self.models,
            derived=self.derived,
            where=self.where,
            ranking=self.ranking,
            top_k=self.top_k,
            funnel_threshold=threshold,
            funnel_column=(self.funnel.column if self.funnel else None)
            or self.ranking.funnel_column,
            funnel_descending=descending,
            domain=self.domain,
            dedupe=self.dedupe,
            draws=normal_draws(
                self.n_samples, len(self.models), seed=self.seed, correlation=self.correlation
            ),
            save_all=save_all,
            chunk_size=self.chunk_size,
            labels=self.space.label_columns(),
        )

    def prepare(self, save_all: bool = False) -> _Task:
        """Resolve the funnel threshold and novelty scaling; the task every worker runs."""
        threshold = None
        if self.funnel is not None:
            col = self.funnel.column or self.ranking.funnel_column
            if self.funnel.threshold is not None:
                threshold = float(self.funnel.threshold)
            else:
                v = self._reference_values(col, self.funnel.reference_size, cheap=True)
                if not len(v):
                    raise ScreenError("funnel: no reference candidate could be evaluated")
                q = 1.0 - self.funnel.keep if self.ranking.funnel_descending else self.funnel.keep
                threshold = float(np.quantile(v, q))
        if isinstance(self.ranking, NoveltyWeighted) and (
            self.ranking.center is None or self.ranking.scale is None
        ):
            v = self._reference_values(self.ranking.column, 4000, cheap=False)
            q25, q50, q75 = np.quantile(v, [0.25, 0.5, 0.75]) if len(v) else (0.0, 0.0, 1.0)
            scale = float(q75 - q25) / 1.349 or 1.0
            self.ranking = NoveltyWeighted(
                self.ranking.column, self.ranking.weight,
                self.ranking.center if self.ranking.center is not None else float(q50),
                self.ranking.scale if self.ranking.scale is not None else scale,
            )  # fmt: skip
        return _Task(**self._task_kwargs(threshold, save_all))

    def fingerprint(self, task: _Task) -> str:
        """Identity of the screen's configuration (a checkpoint resumes only the same one)."""
        h = hashlib.sha256()
        h.update(self.space.fingerprint().encode())
        for name, m in self.models.items():
            h.update(name.encode())
            h.update(_stable_pickle((m.estimator, m.cheap, m.log10, m.lower)))
            if m.domain is not None:
                h.update(_stable_pickle(m.domain))
        h.update(repr(self.featurizer).encode())
        h.update(repr([d.name for d in self.derived]).encode())
        h.update(repr(self.where.text if self.where else None).encode())
        h.update(repr(self.ranking).encode())
        h.update(
            repr((self.top_k, task.funnel_threshold, task.funnel_column, self.dedupe)).encode()
        )
        h.update(repr((self.n_samples, self.seed, self.chunk_size, task.save_all)).encode())
        h.update(np.ascontiguousarray(task.draws).tobytes())
        if self.domain is not None:
            h.update(_stable_pickle(self.domain))
        return h.hexdigest()[:24]

    # -- running -----------------------------------------------------------------------------
    def run(
        self,
        *,
        executor="serial",
        out: str | os.PathLike | None = None,
        save_all: bool = False,
        resume: bool = False,
        progress: bool | Callable[[dict], None] = False,
    ) -> ScreenResult:
        """Screen the whole space.

        Args:
            executor: ``"serial"``, ``"processes:N"``, ``"dask:local:N"``,
                ``"dask:tcp://host:port"`` or a ``distributed.Client``.
            out: output folder (``top.csv``, ``top.parquet``, ``summary.json``,
                ``rejects.csv``, ``results.parquet``, and the checkpoint ``.checkpoint/``).
                Needed for ``save_all`` and ``resume``.
            save_all: also write every featurized candidate to ``out/results.parquet``.
            resume: continue from ``out/.checkpoint`` (same configuration only).
            progress: True for a Rich progress bar, or a callable receiving a dict per chunk.
        """
        import pandas as pd

        if (save_all or resume) and out is None:
            raise ScreenError("save_all and resume need an output folder (out=...)")
        t_start = time.perf_counter()
        task = self.prepare(save_all)
        config = self.fingerprint(task)
        n_chunks = -(-len(self.space) // self.chunk_size)
        state = _State.new(n_chunks)
        ckpt = None
        if out is not None:
            out = Path(out)
            ckpt = _Checkpoint(out / ".checkpoint", config)
            if resume:
                state = ckpt.load(state)
            else:
                ckpt.reset()
        todo = list(range(state.done, n_chunks))
        bar = _Progress(progress, len(self.space), self.space.name)
        bar.advance(state.counts.get("considered", 0), state.counts)
        pending: dict[int, ChunkResult] = {}
        try:
            for result in _run_chunks(task, todo, executor):
                pending[result.chunk] = result
                while state.done in pending:
                    r = pending.pop(state.done)
                    state.merge(r, self)
                    if ckpt is not None:
                        ckpt.commit(state, r)
                    bar.advance(r.counts["considered"], state.counts)
        finally:
            bar.close()
        elapsed = time.perf_counter() - t_start + state.previous_seconds
        top = state.top.drop(columns=["_key"], errors="ignore").reset_index(drop=True)
        top.insert(0, "rank", np.arange(1, len(top) + 1))
        summary = self._summary(task, state, elapsed, executor)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            top.to_csv(out / "top.csv", index=False)
            top.to_parquet(out / "top.parquet", index=False)
            n_rejects = ckpt.merge_rejects(out / "rejects.csv")
            summary["rejects_file"] = str(out / "rejects.csv") if n_rejects else None
            if save_all:
                ckpt.merge_parts(out / "results.parquet")
                summary["results_file"] = str(out / "results.parquet")
            (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        else:
            top = top if isinstance(top, pd.DataFrame) else pd.DataFrame(top)
        return ScreenResult(top, summary, out)

    def _summary(self, task: _Task, state: _State, elapsed: float, executor) -> dict[str, Any]:
        import resource

        c = state.counts
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        has_domain = bool(model_domain_columns(self.models))
        out_top = None
        if has_domain:
            top = state.top
            out_top = int((~top["in_domain"].astype(bool)).sum()) if len(top) else 0
        return {
            "space": self.space.name,
            "positions": len(self.space),
            "candidates": c.get("candidates", 0),
            "filtered": state.filtered,
            "rejected": c.get("rejected", 0),
            "featurized": c.get("featurized", 0),
            "evaluated_full": c.get("evaluated", 0),
            "passed": c.get("passed", 0),
            "kept": len(state.top),
            # candidates outside a model's applicability domain: evaluated, and in the top
            "out_of_domain": c.get("out_of_domain", 0) if has_domain else None,
            "out_of_domain_top": out_top,
            "models": {k: type(m.estimator).__name__ for k, m in self.models.items()},
            "derived": [d.name for d in self.derived],
            "where": self.where.text if self.where else None,
            "ranking": self.ranking.describe(),
            "top_k": self.top_k,
            "funnel": None
            if task.funnel_threshold is None
            else {
                "column": task.funnel_column,
                "threshold": task.funnel_threshold,
                "keep": self.funnel.keep if self.funnel.threshold is None else None,
                "cheap_models": {k: type(m.cheap).__name__ for k, m in self.models.items()},
            },
            "executor": executor if isinstance(executor, str) else type(executor).__name__,
            "chunk_size": self.chunk_size,
            "seconds": round(elapsed, 3),
            "candidates_per_s": round(len(self.space) / elapsed, 1) if elapsed > 0 else None,
            "peak_rss_mb_driver": round(peak, 1),
            "monte_carlo": {"samples": self.n_samples, "seed": self.seed},
        }


# --------------------------------------------------------------------------------------------
# driver state, checkpoint, progress
# --------------------------------------------------------------------------------------------


@dataclass
class _State:
    done: int
    n_chunks: int
    counts: dict[str, int]
    filtered: dict[str, int]
    top: Any
    previous_seconds: float = 0.0

    @classmethod
    def new(cls, n_chunks: int) -> _State:
        import pandas as pd

        return cls(0, n_chunks, {}, {}, pd.DataFrame())

    def merge(self, r: ChunkResult, screen: Screen) -> None:
        import pandas as pd

        for k, v in r.counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        for k, v in r.filtered.items():
            self.filtered[k] = self.filtered.get(k, 0) + v
        if len(r.top):
            both = pd.concat([self.top, r.top], ignore_index=True) if len(self.top) else r.top
            self.top = _merge_top(both, screen)
        self.done += 1


def _merge_top(df, screen: Screen):
    score = df["score"].to_numpy(dtype=np.float64)
    index = df["index"].to_numpy(dtype=np.int64)
    order = np.lexsort((index, -score))
    if screen.dedupe:
        keys = df["_key"].to_numpy()[order]
        _, first = np.unique(keys, return_index=True)
        order = order[np.sort(first)]
    if isinstance(screen.ranking, ParetoFront):
        sub = df.iloc[order]
        front = pareto_mask(screen.ranking.matrix({c: sub[c].to_numpy() for c in sub.columns}))
        return sub[front].reset_index(drop=True)
    if screen.top_k:
        order = order[: screen.top_k]
    return df.iloc[order].reset_index(drop=True)


class _Checkpoint:
    """``.checkpoint/``: ``state.json`` (atomic) + ``top-N.parquet`` + per-chunk parts."""

    def __init__(self, path: Path, config: str):
        self.path = path
        self.config = config

    def reset(self) -> None:
        if self.path.exists():
            shutil.rmtree(self.path)
        (self.path / "parts").mkdir(parents=True)
        (self.path / "rejects").mkdir(parents=True)

    def load(self, state: _State) -> _State:
        import pandas as pd

        f = self.path / "state.json"
        if not f.exists():
            self.reset()
            return state
        saved = json.loads(f.read_text())
        if saved.get("config") != self.config:
            raise ScreenError(
                f"{self.path}: the checkpoint belongs to a different screen configuration "
                "(space, models, filter, ranking or chunk size changed); run without --resume"
            )
        state.done = int(saved["done"])
        state.counts = {k: int(v) for k, v in saved["counts"].items()}
        state.filtered = {k: int(v) for k, v in saved["filtered"].items()}
        state.previous_seconds = float(saved.get("seconds", 0.0))
        top_file = self.path / saved["top"] if saved.get("top") else None
        state.top = pd.read_parquet(top_file) if top_file and top_file.exists() else pd.DataFrame()
        (self.path / "parts").mkdir(parents=True, exist_ok=True)
        (self.path / "rejects").mkdir(parents=True, exist_ok=True)
        return state

    def commit(self, state: _State, r: ChunkResult) -> None:
        if r.full is not None and len(r.full):
            _atomic_parquet(r.full, self.path / "parts" / f"part-{r.chunk:07d}.parquet")
        if r.rejects is not None and len(r.rejects):
            _atomic_parquet(r.rejects, self.path / "rejects" / f"part-{r.chunk:07d}.parquet")
        top_name = f"top-{state.done:07d}.parquet"
        if len(state.top):
            _atomic_parquet(state.top, self.path / top_name)
        tmp = self.path / "state.json.tmp"
        tmp.write_text(
            json.dumps(
                {
                    "config": self.config,
                    "done": state.done,
                    "n_chunks": state.n_chunks,
                    "counts": state.counts,
                    "filtered": state.filtered,
                    "top": top_name if len(state.top) else None,
                    "seconds": state.previous_seconds + r.seconds,
                }
            )
        )
        os.replace(tmp, self.path / "state.json")
        for old in self.path.glob("top-*.parquet"):
            if old.name != top_name:
                old.unlink(missing_ok=True)

    def _parts(self, folder: str, n_done: int | None = None) -> list[Path]:
        return sorted((self.path / folder).glob("part-*.parquet"))

    def merge_parts(self, target: Path) -> None:
        """Concatenate the per-chunk result parts into one Parquet file (streaming)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        tmp = target.with_suffix(".parquet.tmp")
        try:
            for part in self._parts("parts"):
                table = pq.read_table(part)
                if writer is None:
                    schema = table.schema
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_table(table.cast(schema) if table.schema != schema else table)
            if writer is None:
                pq.write_table(pa.table({"index": pa.array([], pa.int64())}), tmp)
        finally:
            if writer is not None:
                writer.close()
        os.replace(tmp, target)

    def merge_rejects(self, target: Path) -> int:
        import pandas as pd

        parts = self._parts("rejects")
        n = 0
        with open(target, "w", encoding="utf-8", newline="") as fh:
            fh.write("index,formula,reason\n")
            for part in parts:
                df = pd.read_parquet(part)
                df.to_csv(fh, header=False, index=False)
                n += len(df)
        if n == 0:
            target.unlink(missing_ok=True)
        return n


def _atomic_parquet(df, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


class _Progress:
    """A Rich progress bar (candidates, candidates/s, ETA) or a callback, or nothing."""

    def __init__(self, progress, total: int, name: str):
        self.callback = progress if callable(progress) else None
        self.bar = None
        self.t0 = time.perf_counter()
        self.seen0 = None
        self.total = total
        if progress is True:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]screening[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TimeElapsedColumn(),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task(name, total=total, rate="")
        self.seen = 0

    def advance(self, n: int, counts: dict) -> None:
        if self.seen0 is None:
            self.seen0 = n
        self.seen += n
        dt = time.perf_counter() - self.t0
        rate = (self.seen - self.seen0) / dt if dt > 0 else 0.0
        if self.bar is not None:
            self.bar.update(self.task, completed=self.seen, rate=f"{rate:,.0f} cand/s")
        if self.callback is not None:
            self.callback({"done": self.seen, "total": self.total, "rate": rate, **counts})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
