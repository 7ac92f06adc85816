"""Crystal structures: list, read, download as CIF, POSCAR or extended XYZ.

A structure belongs to one project and is readable exactly where its project is
(:func:`matforge.server.access.roles`), like a measurement; the SQL is
:func:`matforge.store.structures.select`, always restricted to the caller's projects. Another
user's private structure id is answered as a made-up one: 404 "structure not found".
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from matforge.server import access
from matforge.server.api import (
    ERROR_RESPONSES,
    ApiError,
    CurrentUser,
    ServerState,
    State,
    elements_list,
    not_found,
    utc,
)
from matforge.server.auth import User
from matforge.server.routes.data import (
    After,
    Elements,
    ExactElements,
    Limit,
    ProjectFilter,
    after_id,
    next_cursor,
    page_size,
    parse_elements,
    scope,
)
from matforge.store import structures as stored
from matforge.store.repositories import Connection

router = APIRouter(tags=["structures"], responses=ERROR_RESPONSES)

StructureMethod = Literal["experiment", "refinement", "dft", "ml_relaxation", "xrd_match"]
FileFormat = Literal["cif", "poscar", "extxyz"]
_MEDIA = {"cif": "chemical/x-cif", "poscar": "text/plain", "extxyz": "text/plain"}


class StructureOut(BaseModel):
    id: str
    project_id: str
    material_id: str = Field(description="The material (composition) this is a structure of.")
    formula: str = Field(description="Formula of the cell, e.g. Na4Cl4.")
    reduced_formula: str
    elements: list[str]
    nelements: int
    nsites: int
    spacegroup_number: int | None = Field(
        None, description="International number (spglib, symprec 0.1 Å); null over 5,000 sites."
    )
    spacegroup_symbol: str | None = None
    is_ordered: bool = Field(description="False when some site is partially occupied.")
    volume: float = Field(description="Cell volume, Å^3.")
    density: float = Field(description="g/cm^3.")
    energy_per_atom: float | None = Field(None, description="eV/atom, when the file gave one.")
    properties: dict[str, Any] | None = None
    method: StructureMethod
    source: str | None
    created_at: datetime
    created_by: str


class StructurePage(BaseModel):
    items: list[StructureOut]
    next: str | None = Field(None, description="Pass as `after` to get the next page.")


class Site(BaseModel):
    species: dict[str, float] = Field(description="Element -> occupancy (1 for a full site).")
    xyz: list[float] = Field(description="Cartesian position, Å.")
    abc: list[float] = Field(description="Fractional position.")


class StructureDetail(StructureOut):
    lattice: list[list[float]] = Field(description="The three cell vectors, Å (rows).")
    sites: list[Site]
    structure: dict[str, Any] = Field(description="pymatgen Structure.as_dict().")


def _material(state: ServerState, conn: Connection, user: User, material_id: str | None):
    """Row id of a material the caller can read (it has a measurement or a structure in a
    readable project), named by a filter; 404 "material not found" for anything else."""
    if material_id is None:
        return None
    row_id = state.codec.decode("material", material_id)
    if row_id is not None and stored.material_readable(conn, row_id, access.readable(conn, user)):
        return row_id
    raise not_found("material")


def _out(state: ServerState, r) -> dict:
    return dict(
        id=state.codec.encode("structure", r.id),
        project_id=state.codec.encode("project", r.project_id),
        material_id=state.codec.encode("material", r.material_id),
        formula=r.formula,
        reduced_formula=r.reduced_formula,
        elements=elements_list(r.elements),
        nelements=r.nelements,
        nsites=r.nsites,
        spacegroup_number=r.spacegroup_number,
        spacegroup_symbol=r.spacegroup_symbol,
        is_ordered=bool(r.is_ordered),
        volume=r.volume,
        density=r.density,
        energy_per_atom=r.energy_per_atom,
        properties=r.properties,
        method=r.method,
        source=r.source,
        created_at=utc(r.created_at),
        created_by=r.created_by,
    )


@router.get("/structures", response_model=StructurePage)
def list_structures(
    state: State,
    user: CurrentUser,
    elements: Elements = None,
    exact_elements: ExactElements = False,
    nelements: Annotated[int | None, Query(ge=1, le=118)] = None,
    spacegroup: Annotated[int | None, Query(ge=1, le=230)] = None,
    method: StructureMethod | None = None,
    material_id: Annotated[str | None, Query(max_length=40)] = None,
    project_id: ProjectFilter = None,
    after: After = None,
    limit: Limit = None,
) -> StructurePage:
    """Structures the caller can read, by id, one page (no atoms: see `GET /structures/{id}`)."""
    size = page_size(state, limit)
    with state.engine.connect() as conn:
        material = _material(state, conn, user, material_id)
        stmt = stored.select(
            project_ids=scope(state, conn, user, project_id),
            elements=parse_elements(elements),
            exact_elements=exact_elements,
            nelements=nelements,
            spacegroup=spacegroup,
            method=method,
            material_ids=None if material is None else [material],
            after=after_id(state, after),
            limit=size + 1,
        )
        rows = conn.execute(stmt).all()
    items = [_out(state, r) for r in rows[:size]]
    cursor = next_cursor(state, rows[size - 1].id) if len(rows) > size else None
    return StructurePage.model_validate({"items": items, "next": cursor})


def _readable(state: ServerState, user, structure_id: str):
    """The summary row and structure of a structure the caller can read; 404 otherwise."""
    row_id = state.codec.decode("structure", structure_id)
    if row_id is not None:
        with state.engine.connect() as conn:
            row = conn.execute(
                stored.select(project_ids=access.readable(conn, user), ids=[row_id])
            ).first()
        if row is not None:
            return row, stored.load_structures(state.engine, [row_id])[row_id]
    raise not_found("structure")


@router.get("/structures/{structure_id}", response_model=StructureDetail)
def get_structure(structure_id: str, state: State, user: CurrentUser) -> StructureDetail:
    """One structure with its cell and sites."""
    row, structure = _readable(state, user, structure_id)
    sites = [
        Site(
            species={
                str(sp.symbol if hasattr(sp, "symbol") else sp): float(o)
                for sp, o in site.species.items()
            },
            xyz=[float(x) for x in site.coords],
            abc=[float(x) for x in site.frac_coords],
        )  # fmt: skip
        for site in structure
    ]
    return StructureDetail(
        **_out(state, row),
        lattice=structure.lattice.matrix.tolist(),
        sites=sites,
        structure=structure.as_dict(),
    )


@router.get(
    "/structures/{structure_id}/file",
    response_class=Response,
    responses={
        200: {
            "content": {
                "chemical/x-cif": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
            "description": "The structure file (an attachment).",
        }
    },  # fmt: skip
)
def download_structure(
    structure_id: str,
    state: State,
    user: CurrentUser,
    format: FileFormat = "cif",
) -> Response:
    """The structure as a CIF, POSCAR or extended XYZ file. A structure with partially
    occupied sites has only a CIF (400 for the others)."""
    from matforge.errors import StoreError

    row, structure = _readable(state, user, structure_id)
    public = state.codec.encode("structure", row.id)
    try:
        text = stored.to_text(
            structure,
            format,
            name=f"structure {public}",
            info={"matforge_id": public, "formula": row.formula},
        )
    except StoreError as exc:
        raise ApiError(400, str(exc)) from None
    name = f"{row.formula}_{public}{stored.FORMATS[format]}"
    if format == "poscar":
        name = f"POSCAR_{row.formula}_{public}"
    return Response(
        text,
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
