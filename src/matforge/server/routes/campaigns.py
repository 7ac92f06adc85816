"""Campaigns: create one from a project's measurements and candidate formulas, propose the next
experiments (background job), record their results, follow the best so far."""

from __future__ import annotations

import math

import pandas as pd
from fastapi import APIRouter

from matforge.server import access
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
from matforge.server.campaigns import campaign_row, campaign_rows, known_suggestions
from matforge.server.routes.models import submit_job
from matforge.server.schemas import (
    CampaignCreate,
    CampaignObserve,
    CampaignOut,
    CampaignSuggest,
    CampaignSummaryOut,
    JobOut,
    ObservationOut,
    ObserveOut,
    SuggestionOut,
)
from matforge.server.training import training_data

router = APIRouter(tags=["campaigns"], responses=ERROR_RESPONSES)


def _goal(config: dict) -> str:
    from matforge.design.objectives import Minimize, objective_from_dict

    return "min" if isinstance(objective_from_dict(config["objectives"][0]), Minimize) else "max"


def _property(config: dict) -> str:
    return str(config["objectives"][0]["name"])


def _summary(state: ServerState, row) -> dict:
    return dict(
        id=state.codec.encode("campaign", row.id),
        project_id=state.codec.encode("project", row.project_id),
        name=row.name,
        property=_property(row.config),
        goal=_goal(row.config),
        created_at=utc(row.created_at),
    )


def _visible_campaign(state: ServerState, user: User, campaign_id: str, needed: str = "viewer"):
    """The campaign's row (with its project row id); 404 unless the caller can read the project
    (403 if ``needed`` is a higher role than theirs)."""
    cid = decode(state, "campaign", campaign_id, "campaign")
    row = campaign_row(state.store, cid)
    if row is None:
        raise not_found("campaign")
    with state.engine.connect() as conn:
        if access.roles(conn, user).get(row.project_id) is None:
            raise not_found("campaign")
        project_role(conn, user, row.project_id, needed)
    return row


def _number(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _campaign_out(state: ServerState, row) -> CampaignOut:
    from matforge.design.campaign import Campaign

    campaign = Campaign.open(state.store, row.id)
    prop = _property(row.config)
    unit = state.store.property_unit(prop)
    s = campaign.suggestions()
    suggestions = [
        SuggestionOut(
            id=state.codec.encode("suggestion", int(r["suggestion_id"])),
            batch=None if pd.isna(r["batch"]) else int(r["batch"]),
            status=str(r["status"]),
            formula=str(r["formula"]),
            mean=_number(r[f"{prop}_mean"]),
            std=_number(r[f"{prop}_std"]),
            acquisition=_number(r["acquisition"]),
        )
        for r in s.to_dict("records")
    ]
    h = campaign.history()
    history = [
        ObservationOut(
            formula=str(r["formula"]),
            value=_number(r.get(prop)),
            source=str(r["source"]),
            batch=int(r["batch"]),
            best_so_far=_number(r.get("best_so_far")),
        )
        for r in h.to_dict("records")
    ]
    best = campaign.best()
    best_out = None
    if len(best):
        b = best.iloc[0]
        best_out = ObservationOut(
            formula=str(b["formula"]),
            value=_number(b[prop]),
            source=str(b["source"]),
            batch=int(b["batch"]),
            best_so_far=_number(b.get("best_so_far")),
        )
    return CampaignOut(
        **_summary(state, row),
        unit=unit,
        n_candidates=len(campaign.space),
        observations=len(h),
        pending=sum(1 for x in suggestions if x.status == "pending"),
        batches=len(campaign.batches()),
        best=best_out,
        suggestions=suggestions,
        history=history,
    )


@router.get("/projects/{project_id}/campaigns", response_model=list[CampaignSummaryOut])
def list_campaigns(project_id: str, state: State, user: CurrentUser) -> list[CampaignSummaryOut]:
    """The project's campaigns, oldest first."""
    pid = decode(state, "project", project_id, "project")
    with state.engine.connect() as conn:
        project_role(conn, user, pid)
    return [CampaignSummaryOut(**_summary(state, r)) for r in campaign_rows(state.store, [pid])]


@router.post("/projects/{project_id}/campaigns", status_code=201, response_model=CampaignOut)
def create_campaign(
    project_id: str, body: CampaignCreate, state: State, user: CurrentUser
) -> CampaignOut:
    """A campaign (editors and owners) over ``candidates`` that optimises ``property``
    (``goal``: max or min); the project's measurements of it are its initial results."""
    from matforge.design.campaign import Campaign, CampaignError
    from matforge.design.objectives import Maximize, Minimize
    from matforge.design.spaces import CompositionPool

    pid = decode(state, "project", project_id, "project")
    with state.engine.connect() as conn:
        project_role(conn, user, pid, "editor")
        formulas, values = training_data(conn, pid, body.property)
    if any(r.name == body.name for r in campaign_rows(state.store, [pid])):
        raise ApiError(409, f"the project already has a campaign named {body.name!r}")
    objective = (Maximize if body.goal == "max" else Minimize)(body.property)
    pool = CompositionPool(pd.DataFrame({"formula": body.candidates}))
    initial = pd.DataFrame({"formula": formulas, body.property: values}) if formulas else None
    try:
        campaign = Campaign.create(
            state.store,
            body.name,
            pool,
            [objective],
            seed=body.seed,
            initial=initial,
            source=f"initial:{user.name}",
            project_id=pid,
        )
    except CampaignError as exc:
        if "already exists" in str(exc):
            raise ApiError(409, f"the project already has a campaign named {body.name!r}") from None
        raise ApiError(400, str(exc)) from None
    return _campaign_out(state, campaign_row(state.store, campaign.id))


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: str, state: State, user: CurrentUser) -> CampaignOut:
    """A campaign: its suggestions (with the prediction that chose each), every result in the
    order recorded with the best so far, and the best result."""
    return _campaign_out(state, _visible_campaign(state, user, campaign_id))


@router.post("/campaigns/{campaign_id}/suggest", status_code=202, response_model=JobOut)
def suggest(campaign_id: str, body: CampaignSuggest, state: State, user: CurrentUser) -> JobOut:
    """Propose ``n`` experiments (editors and owners), as a background job; when it has
    succeeded they are the campaign's pending suggestions."""
    row = _visible_campaign(state, user, campaign_id, "editor")
    return submit_job(
        state,
        user,
        "campaign_suggest",
        {"campaign_id": row.id, "n": body.n},
        project_ids=[row.project_id],  # its result follows the project's access
    )


@router.post("/campaigns/{campaign_id}/observe", response_model=ObserveOut)
def observe(campaign_id: str, body: CampaignObserve, state: State, user: CurrentUser) -> ObserveOut:
    """Record measured values of the objective for suggestions (editors and owners)."""
    from matforge.design.campaign import Campaign

    row = _visible_campaign(state, user, campaign_id, "editor")
    ids = []
    for r in body.results:
        sid = state.codec.decode("suggestion", r.suggestion_id)
        if sid is None:
            raise not_found("suggestion")
        ids.append(sid)
    if set(ids) - known_suggestions(state.store, row.id, ids):
        raise not_found("suggestion")
    campaign = Campaign.open(state.store, row.id)
    results = pd.DataFrame(
        {"suggestion_id": ids, _property(row.config): [r.value for r in body.results]}
    )
    report = campaign.observe(results, source=user.name)
    return ObserveOut(
        matched=report.matched, unplanned=report.unplanned, duplicates=report.duplicates
    )
