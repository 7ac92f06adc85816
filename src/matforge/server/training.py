"""The ``train_model`` job and the cache of trained models that serves predictions.

A model learns one property from one project's measurements: the ``rf`` model recipe
(:func:`matforge.models.presets.make_model`) on Magpie composition features
(:class:`matforge.features.MagpieFeaturizer`), a :class:`matforge.models.RandomForestUQ`
(calibrated mean and standard deviation) in a
:class:`~matforge.models.pipeline.CompositionModel`, saved with
:func:`matforge.models.registry.save_model`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from matforge.errors import MatforgeError
from matforge.jsonable import finite_or_none
from matforge.server.jobs import JobContext, JobKind
from matforge.store.database import write_transaction
from matforge.store.repositories import Engine, backend
from matforge.store.repositories import models as models_repo
from matforge.store.repositories.measurements import training_data

#: fewest measurements a model is trained on (the forest's out-of-bag calibration needs some)
MIN_TRAIN_ROWS = 5
ESTIMATOR = "Magpie + RandomForestUQ"
#: most prediction requests answered by one call of a model
MAX_BATCH_REQUESTS = 64


def model_root(store_url: str, configured: Path | None) -> Path:
    """Folder of the server's trained models (see :class:`ServerSettings.model_root`)."""
    if configured is not None:
        return Path(configured)
    name, database = backend(store_url)
    if name == "sqlite" and database not in (None, "", ":memory:"):
        db = Path(database)
        return db.with_name(f"{db.stem}-models")
    from matforge.models.registry import registry_root

    return registry_root() / "server"


def train_model_kind(engine: Engine, root: Path, cache: ModelCache) -> JobKind:
    """The ``train_model`` job kind: params ``{"model_id": <models row id>}``."""

    def run(ctx: JobContext) -> dict:
        from matforge.chem import CompositionBatch
        from matforge.models.registry import save_model

        model_id = int(ctx.params["model_id"])
        with engine.connect() as conn:
            row = models_repo.get(conn, model_id)
            if row is None:
                raise MatforgeError("the model no longer exists")
            ctx.progress(0.05, "reading measurements")
            formulas, values = training_data(conn, row.project_id, row.property)
        # Rows stored before the parser's bounds (Zn1e308O) or with a value that is no finite
        # number are left out and reported, as `matforge train` does: one bad row must not
        # make every model of the project impossible.
        batch = CompositionBatch.from_formulas(
            formulas, errors="collect", source="the training set"
        )
        reasons = dict(batch.errors)
        for i, v in enumerate(values):
            if i not in reasons and finite_or_none(v) is None:
                reasons[i] = f"{formulas[i]!r}: value {v!r} is not a finite number"
        skipped = [reasons[i] for i in sorted(reasons)]
        if reasons:
            formulas = [f for i, f in enumerate(formulas) if i not in reasons]
            values = [v for i, v in enumerate(values) if i not in reasons]
        if len(formulas) < MIN_TRAIN_ROWS:
            raise MatforgeError(
                f"a model needs at least {MIN_TRAIN_ROWS} measurements of {row.property!r}; "
                f"the project has {len(formulas)}"
                + (f" usable ({len(skipped)} skipped; first: {skipped[0]})" if skipped else "")
            )
        params = row.params or {}
        ctx.progress(0.15, f"fitting on {len(formulas)} measurements")
        model = _model(params, row.property, row.unit)
        model.fit(formulas, values)
        ctx.progress(0.8, "saving the model")
        artifact = f"model-{row.id}-{ctx.job_id}"
        save_model(
            model,
            artifact,
            root=root,
            overwrite=True,
            extra={"server_model_id": row.id, "project_id": row.project_id},
        )
        info = {
            "n_train": int(model.n_train_),
            "metrics": {k: finite_or_none(v) for k, v in model.cv_metrics_.items()},
            "n_skipped": len(skipped),
        }
        with write_transaction(engine) as conn:
            models_repo.set_trained(conn, model_id, artifact, info)
        cache.forget(model_id)
        return {"model_id": row.id, **info, "skipped": skipped[:20]}

    return JobKind("train_model", run, restartable=True)


def _model(params: dict, prop: str, unit: str | None):
    """The unfitted model of a ``models`` row's ``params``: the ``rf`` recipe on Magpie
    features (:data:`ESTIMATOR`) with the row's ``n_estimators`` (default 200) and
    ``random_state`` (default 0)."""
    from matforge.models.presets import make_model

    model = make_model(
        "rf",
        featurizer=["magpie"],
        random_state=int(params.get("random_state", 0)),
        target=prop,
        unit=unit,
    )
    model.estimator.set_params(n_estimators=int(params.get("n_estimators", 200)))
    return model


@dataclass
class _Request:
    formulas: list[str]
    result: tuple | None = None
    error: BaseException | None = None
    done: bool = False


class _Batcher:
    """One loaded model and its queue of prediction requests.

    Requests that arrive while the model is busy are predicted together in one call: a forest's
    fixed cost per call (hundreds of trees, each a Python-level ``predict``) then buys many
    requests instead of one, so throughput grows with load instead of the queue. (The batching
    is for throughput only: predicting does not change a CompositionModel, so overlapping
    calls would be safe.)
    A failure is its own request's alone: when the shared call raises, each request of the
    batch is predicted again by itself, and only those that still fail get the exception.
    """

    def __init__(self, artifact: str, model):
        self.artifact = artifact
        self.model = model
        self._cv = threading.Condition()
        self._pending: list[_Request] = []
        self._running = False

    def predict(self, formulas: list[str]):
        """:meth:`~matforge.models.pipeline.CompositionModel.predict_frame` of ``formulas``,
        predicted alone or with concurrent requests."""
        request = _Request(list(formulas))
        with self._cv:
            self._pending.append(request)
            while not request.done:
                if self._running:  # another thread predicts; it may take this request along
                    self._cv.wait()
                    continue
                self._running = True
                batch = self._pending[:MAX_BATCH_REQUESTS]
                del self._pending[:MAX_BATCH_REQUESTS]
                self._cv.release()
                try:
                    self._run(batch)
                finally:
                    self._cv.acquire()
                    self._running = False
                    for r in batch:
                        if not r.done:  # interrupted by a BaseException: do not leave them waiting
                            r.error, r.done = RuntimeError("prediction interrupted"), True
                    self._cv.notify_all()
        if request.error is not None:
            raise request.error
        return request.result

    def _run(self, batch: list[_Request]) -> None:
        formulas = [f for r in batch for f in r.formulas]
        try:
            frame = self.model.predict_frame(formulas)
        except Exception as exc:  # noqa: BLE001 — handed to the request(s) that caused it
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            # One request's input broke the shared call: predict each request alone, so that
            # only the request that caused the failure gets it and every other its answer.
            for r in batch:
                self._run([r])
            return
        start = 0
        for r in batch:
            stop = start + len(r.formulas)
            r.result = frame.iloc[start:stop].reset_index(drop=True)
            r.done = True
            start = stop


class ModelCache:
    """Trained models loaded from the registry, the most recently used kept in memory; each
    serves predictions through a :class:`_Batcher`."""

    def __init__(self, root: Path, size: int):
        self.root = root
        self.size = max(1, size)
        self._models: OrderedDict[int, _Batcher] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[int, threading.Lock] = {}

    def forget(self, model_id: int) -> None:
        with self._lock:
            self._models.pop(model_id, None)

    def _get(self, model_id: int, artifact: str) -> _Batcher:
        with self._lock:
            hit = self._models.get(model_id)
            if hit is not None and hit.artifact == artifact:
                self._models.move_to_end(model_id)
                return hit
            loading = self._loading.setdefault(model_id, threading.Lock())
        with loading:  # one thread loads; the others wait for it instead of loading again
            with self._lock:
                hit = self._models.get(model_id)
                if hit is not None and hit.artifact == artifact:
                    return hit
            from matforge.models.registry import load_model

            batcher = _Batcher(artifact, load_model(artifact, root=self.root))
            with self._lock:
                self._models[model_id] = batcher
                self._models.move_to_end(model_id)
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
        return batcher

    def model(self, model_id: int, artifact: str):
        """The loaded model itself (read-only use: its held-out predictions, its metadata)."""
        return self._get(model_id, artifact).model

    def predict(self, model_id: int, artifact: str, formulas: list[str]):
        """``(frame, threshold)``: a DataFrame of ``formulas`` with ``mean``, ``std``,
        ``domain_distance``, ``in_domain`` and ``error`` (why a row has no prediction, or "")
        (:meth:`~matforge.models.pipeline.CompositionModel.predict_frame`), and the model's
        applicability-domain threshold."""
        batcher = self._get(model_id, artifact)
        frame = batcher.predict(formulas)
        return frame, float(batcher.model.applicability_domain().threshold_)


def trained_model(engine: Engine, cache: ModelCache, model_id: int):
    """``(row, model)`` of a trained model for a job: its ``models`` row and the loaded model
    (raises MatforgeError when it was deleted or never trained since the job was queued)."""
    with engine.connect() as conn:
        row = models_repo.get(conn, int(model_id))
    if row is None or not row.artifact:
        raise MatforgeError("the model no longer exists or is not trained")
    return row, cache.model(row.id, row.artifact)
