"""Properties, materials and measurements: query, page, export as CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from matforge.errors import InvalidFormula
from matforge.server import access
from matforge.server.api import (
    ERROR_RESPONSES,
    ApiError,
    CurrentUser,
    ServerState,
    State,
    decode,
    elements_list,
    not_found,
    utc,
)
from matforge.server.auth import User
from matforge.server.schemas import (
    MaterialDetail,
    MaterialPage,
    MeasurementOut,
    MeasurementPage,
    Method,
    PropertyOut,
)
from matforge.store.properties import builtin_property_names
from matforge.store.repositories import Connection
from matforge.store.repositories import measurements as repo
from matforge.store.spreadsheet import safe_cell

router = APIRouter(tags=["data"], responses=ERROR_RESPONSES)

#: Rows fetched per round trip while streaming an export.
EXPORT_BATCH = 5_000
#: the columns of the CSV export: those of ``GET /measurements``
EXPORT_COLUMNS = repo.columns()

Elements = Annotated[
    str | None,
    Query(
        max_length=500,
        description="Materials containing all these elements: 'Fe,O' or 'Fe-O'.",
    ),
]
ExactElements = Annotated[
    bool, Query(description="Only materials made of exactly these elements (a chemical system).")
]
Limit = Annotated[int | None, Query(ge=1, le=100_000, description="Page size (server-capped).")]
After = Annotated[str | None, Query(max_length=40, description="`next` of the previous page.")]
ProjectFilter = Annotated[str | None, Query(max_length=40, description="Only this project.")]
Text = Annotated[str | None, Query(max_length=1000)]


def parse_elements(text: str | None) -> list[str] | None:
    if text is None or not text.strip():
        return None
    from matforge.store.store import element_list

    try:
        return element_list(text)
    except InvalidFormula as exc:
        raise ApiError(400, str(exc)) from None


def scope(state: ServerState, conn: Connection, user: User, project_id: str | None) -> list[int]:
    """Ids of the projects a query may read: all visible ones, or the one asked for."""
    roles = access.roles(conn, user)
    if project_id is None:
        return sorted(roles)
    pid = decode(state, "project", project_id, "project")
    if pid not in roles:
        raise not_found("project")
    return [pid]


def page_size(state: ServerState, limit: int | None) -> int:
    return min(limit or state.settings.default_page_size, state.settings.max_page_size)


def after_id(state: ServerState, after: str | None) -> int | None:
    """The row id a page cursor (``next`` of an earlier page) points after. Cursors are a kind
    of id of their own, made only by the server from rows the caller could read, so a known id
    of another user's row cannot be used as a starting point to learn where it lies."""
    if after is None:
        return None
    row_id = state.codec.decode("cursor", after)
    if row_id is None:
        raise ApiError(400, f"`after` is not a page cursor (the `next` of a page): {after!r}")
    return row_id


def next_cursor(state: ServerState, row_id: int) -> str:
    """The cursor of the page after the row ``row_id``: pass it as ``after``."""
    return state.codec.encode("cursor", row_id)


@router.get("/properties", response_model=list[PropertyOut])
def list_properties(state: State, user: CurrentUser) -> list[PropertyOut]:
    """Properties with their canonical units: the built-in ones and those measured in projects
    the caller can read."""
    with state.engine.connect() as conn:
        rows = repo.properties(conn, access.readable(conn, user), builtin_property_names())
    return [
        PropertyOut(name=r.name, canonical_unit=r.canonical_unit, description=r.description)
        for r in rows
    ]


def _material_out(state: ServerState, r) -> dict:
    return dict(
        id=state.codec.encode("material", r.id),
        formula=r.formula,
        reduced_formula=r.reduced_formula,
        elements=elements_list(r.elements),
        nelements=r.nelements,
        has_structure=bool(r.has_structure),
    )


@router.get("/materials", response_model=MaterialPage)
def list_materials(
    state: State,
    user: CurrentUser,
    elements: Elements = None,
    exact_elements: ExactElements = False,
    formula: Annotated[str | None, Query(max_length=500)] = None,
    has_structure: bool | None = None,
    project_id: ProjectFilter = None,
    after: After = None,
    limit: Limit = None,
) -> MaterialPage:
    """Materials with at least one measurement the caller can read, by id, one page."""
    q = repo.MaterialQuery(
        project_ids=[],
        elements=parse_elements(elements),
        exact_elements=exact_elements,
        formula=formula,
        has_structure=has_structure,
        after=after_id(state, after),
        limit=page_size(state, limit),
        systems=state.systems,
    )
    with state.engine.connect() as conn:
        q.project_ids = scope(state, conn, user, project_id)
    stmt = repo.select_materials(q)  # may refresh the systems index: not inside another connection
    with state.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    more = len(rows) > q.limit
    # one validation of the whole page (in pydantic's core) rather than one call per material
    items = [_material_out(state, r) for r in rows[: q.limit]]
    cursor = next_cursor(state, rows[q.limit - 1].id) if more else None
    return MaterialPage.model_validate({"items": items, "next": cursor})


@router.get("/materials/{material_id}", response_model=MaterialDetail)
def get_material(material_id: str, state: State, user: CurrentUser) -> MaterialDetail:
    """One material, with its structure when it has one."""
    mid = decode(state, "material", material_id, "material")
    with state.engine.connect() as conn:
        row = repo.material(conn, mid, access.readable(conn, user))
    if row is None:
        raise not_found("material")
    return MaterialDetail(**_material_out(state, row), structure=row.structure)


Value = Annotated[float | None, Query(allow_inf_nan=False)]


@dataclass(frozen=True)
class MeasurementFilters:
    """The filters `GET /measurements` and `GET /measurements.csv` share."""

    property: str | None
    elements: str | None
    exact_elements: bool
    formula: str | None
    method: str | None
    source: str | None
    created_by: str | None
    value_min: float | None
    value_max: float | None
    project_id: str | None


def measurement_filters(
    property: Annotated[str | None, Query(max_length=200)] = None,
    elements: Elements = None,
    exact_elements: ExactElements = False,
    formula: Annotated[str | None, Query(max_length=500)] = None,
    method: Method | None = None,
    source: Text = None,
    created_by: Annotated[str | None, Query(max_length=64)] = None,
    value_min: Value = None,
    value_max: Value = None,
    project_id: ProjectFilter = None,
) -> MeasurementFilters:
    if value_min is not None and value_max is not None and value_min > value_max:
        raise ApiError(400, f"value_min ({value_min}) is larger than value_max ({value_max})")
    return MeasurementFilters(property, elements, exact_elements, formula, method, source,
                              created_by, value_min, value_max, project_id)  # fmt: skip


Filters = Annotated[MeasurementFilters, Depends(measurement_filters)]


def visible_id(
    state: ServerState, conn: Connection, user: User, kind: str, public_id: str | None
) -> int | None:
    """Row id of a dataset or material the caller can read, named by a filter; 404 ("<kind>
    not found") for anything else, so that a malformed id, an unknown one and the id of
    someone else's private row get one and the same answer."""
    if public_id is None:
        return None
    row_id = state.codec.decode(kind, public_id)
    readable = access.readable(conn, user)
    if row_id is not None and repo.is_visible(conn, kind, row_id, readable):
        return row_id
    raise not_found(kind)


def _measurement_query(
    state: ServerState,
    conn,
    user: User,
    f: MeasurementFilters,
    *,
    material_id: str | None = None,
    dataset_id: str | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> repo.MeasurementQuery:
    project_ids = scope(state, conn, user, f.project_id)
    return repo.MeasurementQuery(
        project_ids=project_ids,
        property=f.property,
        elements=parse_elements(f.elements),
        exact_elements=f.exact_elements,
        formula=f.formula,
        method=f.method,
        source=f.source,
        created_by=f.created_by,
        value_min=f.value_min,
        value_max=f.value_max,
        material_id=visible_id(state, conn, user, "material", material_id),
        dataset_id=visible_id(state, conn, user, "dataset", dataset_id),
        after=after_id(state, after),
        limit=limit,
        systems=state.systems,
    )


def _measurement_out(state: ServerState, r) -> dict:
    conditions = r.conditions
    if isinstance(conditions, str):  # JSON text from a driver without JSON support
        conditions = json.loads(conditions)
    return dict(
        id=state.codec.encode("measurement", r.id),
        project_id=state.codec.encode("project", r.project_id),
        dataset_id=state.codec.encode("dataset", r.dataset_id),
        material_id=state.codec.encode("material", r.material_id),
        formula=r.formula,
        formula_as_ingested=r.formula_as_ingested,
        reduced_formula=r.reduced_formula,
        elements=elements_list(r.elements),
        property=r.property,
        value=r.value,
        unit=r.unit,
        uncertainty=r.uncertainty,
        method=r.method,
        conditions=conditions,
        source=r.source,
        raw_value=r.raw_value,
        raw_unit=r.raw_unit,
        flag=r.flag,
        created_at=utc(r.created_at),
        created_by=r.created_by,
    )


@router.get("/measurements", response_model=MeasurementPage)
def list_measurements(
    state: State,
    user: CurrentUser,
    filters: Filters,
    material_id: Annotated[str | None, Query(max_length=40)] = None,
    dataset_id: Annotated[str | None, Query(max_length=40)] = None,
    after: After = None,
    limit: Limit = None,
) -> MeasurementPage:
    """Measurements the caller can read, oldest first, one page. Values and ranges are in each
    property's canonical unit."""
    with state.engine.connect() as conn:
        q = _measurement_query(state, conn, user, filters, material_id=material_id,
                               dataset_id=dataset_id, after=after,
                               limit=page_size(state, limit))  # fmt: skip
        rows = conn.execute(repo.select(q)).all()
    more = len(rows) > q.limit
    items = [MeasurementOut(**_measurement_out(state, r)) for r in rows[: q.limit]]
    cursor = next_cursor(state, rows[q.limit - 1].id) if more else None
    return MeasurementPage(items=items, next=cursor)


@router.get(
    "/measurements.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "CSV, header first.",
        }
    },
)
def export_measurements(state: State, user: CurrentUser, filters: Filters) -> StreamingResponse:
    """Every measurement the caller can read that matches the filters, as CSV (the columns of
    `GET /measurements`; elements as 'Fe-O', conditions as JSON). Text cells that a spreadsheet
    would run as a formula (starting with =, +, -, @, tab or CR) get a leading `'`."""
    with state.engine.connect() as conn:
        q = _measurement_query(state, conn, user, filters)
    stmt = repo.select(q)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        yield buffer.getvalue()
        with state.engine.connect() as conn:
            result = conn.execution_options(yield_per=EXPORT_BATCH).execute(stmt)
            for batch in result.partitions():
                buffer.seek(0)
                buffer.truncate()
                for r in batch:
                    out = _measurement_out(state, r)
                    out["elements"] = "-".join(out["elements"])
                    out["conditions"] = (
                        None if out["conditions"] is None else json.dumps(out["conditions"])
                    )
                    out["created_at"] = out["created_at"].isoformat()
                    writer.writerow([safe_cell(out[c]) for c in EXPORT_COLUMNS])
                yield buffer.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="measurements.csv"'},
    )
