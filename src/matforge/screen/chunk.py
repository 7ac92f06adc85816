"""One chunk of a screen, evaluated independently of every other: generate, featurize,
funnel, predict, derive, domain, filter, rank (the steps of :mod:`matforge.screen.streaming`).

:class:`ChunkTask` is everything a worker needs (pickled once per worker);
:func:`evaluate_chunk` turns a chunk number into a :class:`ChunkResult`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matforge.chem.identity import composition_keys
from matforge.properties.derived import DerivedProperty
from matforge.properties.propagation import nan_mean_std
from matforge.screen.candidate_spaces import CandidateSpace
from matforge.screen.expression import Expression
from matforge.screen.property_model import PropertyModel
from matforge.screen.ranking import (
    ParetoFront,
    ProbabilityOfFeasibility,
    Ranking,
    pareto_mask,
)

__all__ = [
    "DOMAIN_COLUMNS",
    "ChunkResult",
    "ChunkTask",
    "cheap_columns",
    "evaluate_chunk",
    "full_columns",
    "model_domain_columns",
    "model_inputs",
]

_MC_BLOCK = 2048  # rows per Monte Carlo block: bounds the (rows × samples) temporaries
DOMAIN_COLUMNS = ("distance", "map_x", "map_y", "cluster")



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
class ChunkTask:
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


def model_inputs(task: ChunkTask, X: np.ndarray, batch, rows: np.ndarray) -> dict[Any, np.ndarray]:
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


def _domain_columns(task: ChunkTask, X: np.ndarray, inputs: dict) -> dict[str, np.ndarray]:
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


def cheap_columns(task: ChunkTask, X) -> dict[str, np.ndarray]:
    cols = {
        name: m.cheap_value(X[name] if isinstance(X, dict) else X)
        for name, m in task.models.items()
    }
    for d in task.derived:
        cols[d.name] = np.asarray(d(cols), dtype=np.float64)
    return cols


def full_columns(
    task: ChunkTask, X: np.ndarray, inputs: dict[str, np.ndarray] | None = None
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
        plain = {k: v for k, v in cols.items() if k in DOMAIN_COLUMNS or k in model_domain}
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


def _select(task: ChunkTask, score: np.ndarray, index: np.ndarray, keys: np.ndarray) -> np.ndarray:
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


def evaluate_chunk(task: ChunkTask, chunk_no: int) -> ChunkResult:
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
    per_model = model_inputs(task, X[rows], batch, rows)

    # stage 1: funnel
    if task.funnel_threshold is not None and len(rows):
        cheap = cheap_columns(task, per_model)
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
    cols, finite = full_columns(task, X[full_rows], {k: v[survive] for k, v in per_model.items()})
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
