"""Jobs and models: train a model in the background, poll it, predict with it."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
from fastapi import APIRouter

from matforge.chem.formula import MAX_AMOUNT
from matforge.jsonable import finite_or_none
from matforge.server import access, clock
from matforge.server.api import (
    ERROR_RESPONSES,
    ApiError,
    CurrentUser,
    ServerState,
    State,
    decode,
    not_found,
    project_role,
    utc,
)
from matforge.server.auth import User
from matforge.server.schemas import (
    JobOut,
    ModelCreate,
    ModelCvOut,
    ModelOut,
    PredictIn,
    PredictionOut,
    PredictOut,
    ScreenCreate,
    UserOut,
)
from matforge.server.training import ESTIMATOR, MIN_TRAIN_ROWS, training_data
from matforge.store.database import write_transaction
from matforge.store.repositories import Connection
from matforge.store.repositories import jobs as jobs_repo
from matforge.store.repositories import models as models_repo
from matforge.store.repositories.measurements import property_unit

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/me", response_model=UserOut, tags=["users"])
def me(user: CurrentUser) -> UserOut:
    """The user the token belongs to."""
    return UserOut(name=user.name)


def _job_out(state: ServerState, r) -> JobOut:
    return JobOut(
        id=state.codec.encode("job", r.id),
        kind=r.kind,
        status=r.status,
        progress=r.progress,
        message=r.message,
        result=_public_result(state, r.result),
        error=r.error,
        attempts=r.attempts,
        created_at=utc(r.created_at),
        started_at=utc(r.started_at),
        finished_at=utc(r.finished_at),
    )


def _public_result(state: ServerState, result: dict | None) -> dict | None:
    if result is None:
        return None
    # every job kind that names a model names it by its row id: public ids only leave
    if "model_id" in result:
        return {**result, "model_id": state.codec.encode("model", int(result["model_id"]))}
    return result


@router.get("/jobs", response_model=list[JobOut], tags=["jobs"])
def list_jobs(state: State, user: CurrentUser) -> list[JobOut]:
    """The caller's jobs, newest first (at most 1000), less those that read a project the caller
    can no longer read."""
    with state.engine.connect() as conn:
        rows = jobs_repo.list_readable(conn, user.id, access.readable(conn, user), limit=1000)
    return [_job_out(state, r) for r in rows]


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
def get_job(job_id: str, state: State, user: CurrentUser) -> JobOut:
    """Status, progress and result of one of the caller's jobs; 404 once it reads a project the
    caller can no longer read (made private again, membership removed)."""
    jid = decode(state, "job", job_id, "job")
    with state.engine.connect() as conn:
        row = jobs_repo.get_readable(conn, jid, user.id, access.readable(conn, user))
    if row is None:
        raise not_found("job")
    return _job_out(state, row)


def _model_out(state: ServerState, r) -> ModelOut:
    job = SimpleNamespace(**{c: getattr(r, f"j_{c}") for c in jobs_repo.COLUMNS})
    info = r.info or {}
    return ModelOut(
        id=state.codec.encode("model", r.id),
        name=r.name,
        project_id=state.codec.encode("project", r.project_id),
        property=r.property,
        unit=r.unit,
        owner=r.owner,
        estimator=ESTIMATOR,
        status=r.j_status,
        job=_job_out(state, job),
        n_train=info.get("n_train"),
        metrics=info.get("metrics"),
        created_at=utc(r.created_at),
    )


def _visible_model(state: ServerState, conn: Connection, user: User, model_id: str):
    """A model whose project the caller can read (models follow their project's access)."""
    mid = decode(state, "model", model_id, "model")
    roles = access.roles(conn, user)
    row = models_repo.with_job(conn, mid)
    if row is None or row.project_id not in roles:
        raise not_found("model")
    return row


@router.post("/models", status_code=202, response_model=ModelOut, tags=["models"])
def create_model(body: ModelCreate, state: State, user: CurrentUser) -> ModelOut:
    """Train a model of ``property`` on the project's measurements, as a background job
    (Magpie features + RandomForestUQ). Poll ``GET /models/{id}`` or ``GET /jobs/{job id}``."""
    pid = decode(state, "project", body.project_id, "project")
    with write_transaction(state.engine) as conn:
        project_role(conn, user, pid)
        formulas, _ = training_data(conn, pid, body.property)
        if len(formulas) < MIN_TRAIN_ROWS:
            raise ApiError(
                400,
                f"a model needs at least {MIN_TRAIN_ROWS} measurements of {body.property!r}; "
                f"the project has {len(formulas)}",
            )
        unit = property_unit(conn, body.property)
        params = {"n_estimators": body.n_estimators, "random_state": body.random_state}
        job_id = state.jobs.submit(conn, "train_model", user.id, {}, project_ids=[pid])
        model_id = models_repo.insert(
            conn,
            owner_id=user.id,
            project_id=pid,
            job_id=job_id,
            name=body.name or body.property,
            property=body.property,
            unit=unit,
            params=params,
            now=clock.now(),
        )
        jobs_repo.set_params(conn, job_id, {"model_id": model_id})
    with state.engine.connect() as conn:  # read before the workers may start it: "queued"
        out = _model_out(state, models_repo.with_job(conn, model_id))
    state.jobs.wake()
    return out


@router.get("/models", response_model=list[ModelOut], tags=["models"])
def list_models(state: State, user: CurrentUser) -> list[ModelOut]:
    """Models of the projects the caller can read, newest first."""
    with state.engine.connect() as conn:
        rows = models_repo.list_in_projects(conn, access.readable(conn, user))
    return [_model_out(state, r) for r in rows]


@router.get("/models/{model_id}", response_model=ModelOut, tags=["models"])
def get_model(model_id: str, state: State, user: CurrentUser) -> ModelOut:
    with state.engine.connect() as conn:
        return _model_out(state, _visible_model(state, conn, user, model_id))


# every number in a formula is an amount (element symbols hold no digits); as the parser reads them
_AMOUNT = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?")
_SUBSCRIPT_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")


def amount_problem(formula: str) -> str | None:
    """Why ``formula`` writes a non-finite or absurd amount (over
    :data:`matforge.chem.formula.MAX_AMOUNT` atoms per formula unit, the parser's bound), or
    None. Other defects (unknown elements, syntax, a total over the bound reached through
    brackets) are answered per row by the model's parser."""
    for m in _AMOUNT.finditer(formula.translate(_SUBSCRIPT_DIGITS)):
        value = float(m.group())
        if not math.isfinite(value):
            return f"amount {m.group()!r} at position {m.start()} is not finite"
        if value > MAX_AMOUNT:
            return (
                f"amount {m.group()!r} at position {m.start()} is more than "
                f"{MAX_AMOUNT:,.0f} atoms per formula unit"
            )
    return None


def _check_amounts(formulas: list[str]) -> None:
    """422 naming the first formula with a non-finite or absurd amount (it would make every
    feature computed from it overflow)."""
    bad = [(i, f, p) for i, f in enumerate(formulas) if (p := amount_problem(f)) is not None]
    if bad:
        i, formula, problem = bad[0]
        more = f" (and {len(bad) - 1} more formula(s))" if len(bad) > 1 else ""
        raise ApiError(422, f"formulas[{i}] {formula!r}: {problem}{more}")


@router.post("/models/{model_id}/predict", response_model=PredictOut, tags=["models"])
def predict(model_id: str, body: PredictIn, state: State, user: CurrentUser) -> PredictOut:
    """Predicted mean and standard deviation (the property's canonical unit) per formula, with
    its distance to the model's training compositions and whether that is inside the model's
    applicability domain (``domain_threshold``); a formula that cannot be parsed gets
    ``error`` instead. A formula stating a non-finite amount or more than 10^6 atoms per
    formula unit (``Zn1e308O``) is refused with 422."""
    if len(body.formulas) > state.settings.max_predict_formulas:
        raise ApiError(413, f"at most {state.settings.max_predict_formulas} formulas per request")
    _check_amounts(body.formulas)
    with state.engine.connect() as conn:
        row = _visible_model(state, conn, user, model_id)
    if row.j_status != "succeeded" or not row.artifact:
        raise ApiError(409, f"the model is not trained (its job is {row.j_status})")
    frame, threshold = state.models.predict(row.id, row.artifact, body.formulas)
    out = []
    for formula, p in zip(body.formulas, frame.itertuples(index=False), strict=True):
        mu, sigma = float(p.mean), float(p.std)
        if p.error or not (math.isfinite(mu) and math.isfinite(sigma)):
            out.append(
                PredictionOut(
                    formula=formula, mean=None, std=None, error=p.error or "no prediction"
                )
            )
        else:
            out.append(
                PredictionOut(
                    formula=formula,
                    mean=mu,
                    std=sigma,
                    domain_distance=float(p.domain_distance),
                    in_domain=bool(p.in_domain),
                )
            )
    return PredictOut(
        model_id=model_id,
        property=row.property,
        unit=row.unit,
        domain_threshold=threshold,
        predictions=out,
    )


@router.get("/models/{model_id}/cv", response_model=ModelCvOut, tags=["models"])
def model_cv(model_id: str, state: State, user: CurrentUser) -> ModelCvOut:
    """The model's held-out predictions of its own training rows (mean, std) next to the
    measured values, and its calibration curve: for central intervals of each expected
    coverage, the fraction of held-out rows they actually cover."""
    from matforge.models.calibration import coverage_curve

    with state.engine.connect() as conn:
        row = _visible_model(state, conn, user, model_id)
    if row.j_status != "succeeded" or not row.artifact:
        raise ApiError(409, f"the model is not trained (its job is {row.j_status})")
    oof = getattr(state.models.model(row.id, row.artifact), "oof_", None) or {}
    y, mean, std = (np.asarray(oof.get(k, []), dtype=float) for k in ("y", "mean", "std"))
    ok = np.isfinite(y) & np.isfinite(mean) & np.isfinite(std)
    expected, observed = (
        coverage_curve(y[ok], mean[ok], std[ok], n_levels=21) if ok.any() else ([], [])
    )
    info = row.info or {}
    return ModelCvOut(
        model_id=model_id,
        property=row.property,
        unit=row.unit,
        formula=[str(f) for f in oof.get("formula", [])],
        y=[finite_or_none(v) for v in y],
        mean=[finite_or_none(v) for v in mean],
        std=[finite_or_none(v) for v in std],
        expected_coverage=[float(x) for x in expected],
        observed_coverage=[float(x) for x in observed],
        metrics=info.get("metrics"),
    )


@router.post("/models/{model_id}/screens", status_code=202, response_model=JobOut, tags=["models"])
def create_screen(model_id: str, body: ScreenCreate, state: State, user: CurrentUser) -> JobOut:
    """Screen every composition of ``elements`` (``arities`` distinct elements, at most
    ``max_atoms`` atoms per formula unit, charge-balanced if asked) with a trained model, as a
    background job; anyone who may read the model may screen with it.

    When the job has succeeded its ``result`` is ``{model_id, property, unit, ranking,
    n_positions, n_screened, top: [{formula, mean, std}], sample: {formula: [...], mean: [...],
    std: [...]}}``: the ``top_k`` best candidates by ``rank_by`` and at most 500 screened
    candidates drawn at random (values in ``unit``)."""
    from matforge.server.screening import space_for

    with state.engine.connect() as conn:
        row = _visible_model(state, conn, user, model_id)
    if row.j_status != "succeeded" or not row.artifact:
        raise ApiError(409, f"the model is not trained (its job is {row.j_status})")
    params = {
        "model_id": row.id,
        "elements": sorted(set(body.elements)),
        "max_atoms": body.max_atoms,
        "arities": sorted(set(body.arities)),
        "charge_balanced": body.charge_balanced,
        "rank_by": body.rank_by,
        "top_k": body.top_k,
    }
    if len(params["elements"]) < min(params["arities"]):
        raise ApiError(
            400,
            f"{len(params['elements'])} distinct element(s) make no compound of "
            f"{min(params['arities'])} elements",
        )
    n = len(space_for(params))  # ScreenError (unknown element, ...) answers 400
    limit = state.settings.max_screen_candidates
    if n > limit:
        raise ApiError(
            400,
            f"these settings enumerate {n:,} compositions; the server screens at most {limit:,} "
            "per job (fewer elements, atoms or arities)",
        )
    return submit_job(state, user, "screen", params, project_ids=[row.project_id])


def submit_job(
    state: ServerState, user: User, kind: str, params: dict, *, project_ids: list[int] | tuple
) -> JobOut:
    """Queue a job of ``kind`` for ``user``, wake the workers, and answer with the job.
    ``project_ids``: the projects the job reads; its result is readable while they are."""
    with write_transaction(state.engine) as conn:
        job_id = state.jobs.submit(conn, kind, user.id, params, project_ids=project_ids)
    with state.engine.connect() as conn:
        job = jobs_repo.get(conn, job_id)
    state.jobs.wake()
    return _job_out(state, job)
