"""Deleting measurements and datasets (owners and editors), and each project's audit log.

A deletion is never lost without trace: :mod:`matforge.store.audit` writes who, when and what in
the transaction that deletes. A measurement or dataset the caller cannot read answers 404 exactly
like a made-up id; one the caller can read without the editor role answers 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

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
from matforge.server.routes.data import After, Limit, after_id, next_cursor, page_size
from matforge.server.schemas import AuditOut, AuditPage
from matforge.store import audit
from matforge.store.database import write_transaction
from matforge.store.repositories import Connection
from matforge.store.repositories.projects import dataset_project

router = APIRouter(tags=["data"], responses=ERROR_RESPONSES)

_NO_CONTENT = {204: {"description": "Deleted, and recorded in the project's audit log."}}
#: public-id kind of what each action deleted
_TARGET = {"delete_measurement": "measurement", "delete_dataset": "dataset"}
#: store row ids inside an audit entry's detail, shown as public ids
_DETAIL_IDS = {"dataset_id": "dataset", "material_id": "material"}


def _may_edit(conn: Connection, user, project_id: int | None, what: str) -> None:
    role = access.roles(conn, user).get(project_id) if project_id is not None else None
    if role is None:
        raise not_found(what)
    if not access.at_least(role, "editor"):
        raise ApiError(403, f"this needs the editor role in the project; you are {role}")


@router.delete(
    "/measurements/{measurement_id}",
    status_code=204,
    response_class=Response,
    responses=_NO_CONTENT,
)
def delete_measurement(measurement_id: str, state: State, user: CurrentUser) -> Response:
    """Delete one measurement (editors and owners of its project). The measurement is kept
    whole in the project's audit log (`GET /projects/{project_id}/audit`)."""
    row_id = state.codec.decode("measurement", measurement_id)
    with write_transaction(state.engine) as conn:
        rows = audit.measurement_rows(conn, [row_id]) if row_id is not None else []
        _may_edit(conn, user, rows[0].project_id if rows else None, "measurement")
        audit.delete_measurements(conn, [row_id], user.name)
    return Response(status_code=204)


@router.delete(
    "/datasets/{dataset_id}", status_code=204, response_class=Response, responses=_NO_CONTENT
)
def delete_dataset(dataset_id: str, state: State, user: CurrentUser) -> Response:
    """Delete a dataset (one upload or JSON batch) with all its measurements (editors and owners
    of its project), recorded in the project's audit log with its provenance and counts."""
    row_id = state.codec.decode("dataset", dataset_id)
    with write_transaction(state.engine) as conn:
        project_id = None
        if row_id is not None:
            project_id = dataset_project(conn, row_id)
        _may_edit(conn, user, project_id, "dataset")
        audit.delete_dataset(conn, row_id, user.name)
    return Response(status_code=204)


def _public_detail(state: ServerState, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (state.codec.encode(_DETAIL_IDS[k], v) if k in _DETAIL_IDS and v is not None else v)
        for k, v in detail.items()
    }


@router.get("/projects/{project_id}/audit", response_model=AuditPage)
def list_audit(
    project_id: str,
    state: State,
    user: CurrentUser,
    limit: Limit = None,
    after: After = None,
) -> AuditPage:
    """What was deleted from the project, by whom and when, oldest first (editors and owners)."""
    pid = decode(state, "project", project_id, "project")
    size = page_size(state, limit)
    with state.engine.connect() as conn:
        project_role(conn, user, pid, "editor")
        rows = audit.entries(conn, [pid], after=after_id(state, after), limit=size + 1)
    more = len(rows) > size
    items = [
        AuditOut(
            id=state.codec.encode("audit", r.id),
            project_id=project_id,
            at=utc(r.at),
            actor=r.actor,
            action=r.action,
            target_id=state.codec.encode(_TARGET[r.action], r.target_id),
            detail=_public_detail(state, r.detail),
        )
        for r in rows[:size]
    ]
    return AuditPage(items=items, next=next_cursor(state, rows[size - 1].id) if more else None)


