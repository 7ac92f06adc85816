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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matforge.errors import ScreenError
from matforge.properties.derived import DerivedProperty, get_derived
from matforge.properties.propagation import normal_draws
from matforge.screen.candidate_spaces import CandidateSpace
from matforge.screen.checkpoint import Checkpoint, ScreenState
from matforge.screen.chunk import (
    DOMAIN_COLUMNS,
    ChunkResult,
    ChunkTask,
    cheap_columns,
    evaluate_chunk,
    full_columns,
    model_domain_columns,
    model_inputs,
)
from matforge.screen.executors import parse_executor, run_chunks
from matforge.screen.expression import Expression
from matforge.screen.property_model import PropertyModel
from matforge.screen.ranking import (
    NoveltyWeighted,
    ProbabilityOfFeasibility,
    Ranking,
    parse_ranking,
)

__all__ = [
    "ChunkResult",
    "Funnel",
    "PropertyModel",
    "Screen",
    "ScreenResult",
    "evaluate_chunk",
    "model_domain_columns",
    "parse_executor",
]


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


# --------------------------------------------------------------------------------------------
# the screen
# --------------------------------------------------------------------------------------------


class Screen:
    """A high-throughput screen of a candidate space (see module docstring).

    Args:
        space: a :class:`~matforge.screen.candidate_spaces.CandidateSpace`.
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
            columns |= set(DOMAIN_COLUMNS)
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
        tmp = ChunkTask(**{**self._task_kwargs(None, False), "funnel_threshold": None})
        for a, b in self._reference_rows(size):
            chunk = self.space.chunk(a, b)
            if not len(chunk):
                continue
            valid = np.flatnonzero(chunk.batch.valid)
            X = self.featurizer.featurize_batch(chunk.batch)[valid]
            inputs = model_inputs(tmp, X, chunk.batch, valid)
            if cheap:
                cols = cheap_columns(tmp, inputs)
            else:
                cols, _ = full_columns(tmp, X, inputs)
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

    def prepare(self, save_all: bool = False) -> ChunkTask:
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
        return ChunkTask(**self._task_kwargs(threshold, save_all))

    def fingerprint(self, task: ChunkTask) -> str:
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
        state = ScreenState.new(n_chunks)
        ckpt = None
        if out is not None:
            out = Path(out)
            ckpt = Checkpoint(out / ".checkpoint", config)
            if resume:
                state = ckpt.load(state)
            else:
                ckpt.reset()
        todo = list(range(state.done, n_chunks))
        bar = _Progress(progress, len(self.space), self.space.name)
        bar.advance(state.counts.get("considered", 0), state.counts)
        pending: dict[int, ChunkResult] = {}
        try:
            for result in run_chunks(task, todo, executor):
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

    def _summary(self, task: ChunkTask, state: ScreenState, elapsed: float, executor) -> dict[str, Any]:
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
# progress
# --------------------------------------------------------------------------------------------


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
