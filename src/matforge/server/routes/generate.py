"""Generative design: sample new compositions, design against a trained model (background jobs,
the same style as screening)."""

from __future__ import annotations

from fastapi import APIRouter

from matforge.server.api import ERROR_RESPONSES, ApiError, CurrentUser, State
from matforge.server.routes.models import _visible_model, submit_job
from matforge.server.schemas import DesignCreate, GenerateSampleCreate, JobOut

router = APIRouter(responses=ERROR_RESPONSES)


@router.post("/generate/samples", status_code=202, response_model=JobOut, tags=["generate"])
def create_sample(body: GenerateSampleCreate, state: State, user: CurrentUser) -> JobOut:
    """Draw ``n`` compositions from a shipped generative model, as a background job.

    When the job has succeeded its ``result`` is ``{model, n_drawn, n_unique, cn_eb_rate,
    novel_rate, rows: [{formula, count, cn, cn_eb, novel, nearest_known, nearest_distance}]}``:
    one row per distinct composition, most often drawn first; ``cn`` charge-neutral, ``cn_eb``
    also electronegativity-balanced (SMACT's rules), ``novel`` not in the Materials Project
    corpus, ``nearest_distance`` the L1 distance of atomic fractions to ``nearest_known``."""
    from matforge.server.generating import check_sample

    params = body.model_dump()
    params["elements_in"] = sorted(set(body.elements_in))
    params["elements_out"] = sorted(set(body.elements_out))
    check_sample(params, state.generators)  # GenerateError (unseen element, top-p on the GAN, ...) answers 400
    return submit_job(state, user, "generate_sample", params, project_ids=())  # the shipped model


@router.post(
    "/models/{model_id}/designs", status_code=202, response_model=JobOut, tags=["generate"]
)
def create_design(model_id: str, body: DesignCreate, state: State, user: CurrentUser) -> JobOut:
    """Design new compositions for a goal on a trained model's property, as a background job:
    ``rl`` trains the shipped language model by reinforcement learning against the model, ``ga``
    evolves compositions, ``best-of-n`` and ``random`` are the baselines. ``budget`` counts the
    distinct compositions the model scores; known and not charge-balanced ones score nothing
    and cost nothing. Anyone who may read the model may design with it.

    When the job has succeeded its ``result`` is ``{model_id, property, unit, goal, method,
    budget, calls, seconds, top: [{formula, reward, mean, std, cn_eb, novel, nearest_known}],
    history: {calls: [...], best: [...]}}``: the ``top_k`` best designs by reward (0 to 1) and
    the best reward after each step of the search."""
    from matforge.generate.reward import element_restrictions
    from matforge.server.generating import goals_for

    with state.engine.connect() as conn:
        row = _visible_model(state, conn, user, model_id)
    if row.j_status != "succeeded" or not row.artifact:
        raise ApiError(409, f"the model is not trained (its job is {row.j_status})")
    goals_for(body.goal, row.property)  # unreadable, impossible or another property: 400
    element_restrictions(body.elements_in, body.elements_out)  # unknown or both: 400
    params = {
        "model_id": row.id,
        **body.model_dump(),
        "elements_in": sorted(set(body.elements_in)),
        "elements_out": sorted(set(body.elements_out)),
    }
    return submit_job(state, user, "generate_design", params, project_ids=[row.project_id])
