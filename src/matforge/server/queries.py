"""SQL of the read endpoints, always restricted to the projects the caller may read.

Everything here is a SQLAlchemy expression with bound parameters; no SQL text is built from
request values. A material is visible when at least one of its measurements is in a visible
project: materials are shared between projects, so a material known only from someone else's
private project stays invisible, and a visible one shows only visible measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from matforge.server.systems import ChemicalSystems
from matforge.store import schema

m, mat, d, p = schema.measurements, schema.materials, schema.datasets, schema.properties


def visible_measurement(project_ids: Sequence[int]):
    """EXISTS: the material of the outer query has a measurement in ``project_ids``."""
    return sa.exists(
        sa.select(sa.literal(1))
        .select_from(m.join(d, m.c.dataset_id == d.c.id))
        .where(m.c.material_id == mat.c.id, d.c.project_id.in_(list(project_ids)))
    )


def element_conditions(
    elements: Sequence[str] | None,
    exact: bool,
    systems: ChemicalSystems | None = None,
    limit: int | None = None,
) -> list:
    """Conditions on ``materials.elements`` ("-Fe-O-"): contains all ``elements``, or
    (``exact``) is exactly that chemical system. With ``systems``, "contains" is an indexed
    ``IN`` over the matching systems when they are few (see :mod:`matforge.server.systems`)."""
    if not elements:
        return []
    symbols = sorted(set(elements))
    if exact:
        return [mat.c.elements == "-" + "-".join(symbols) + "-"]
    matching = systems.containing(symbols, limit) if systems is not None else None
    if matching is not None:
        return [mat.c.elements.in_(matching)] if matching else [sa.false()]
    return [mat.c.elements.like(f"%-{e}-%") for e in symbols]


@dataclass
class MaterialQuery:
    project_ids: Sequence[int]
    elements: Sequence[str] | None = None
    exact_elements: bool = False
    formula: str | None = None
    has_structure: bool | None = None
    after: int | None = None
    limit: int = 100
    systems: ChemicalSystems | None = None


def materials(q: MaterialQuery) -> sa.Select:
    """Visible materials matching ``q``, by id, at most ``q.limit + 1`` (to see if more follow)."""
    stmt = sa.select(
        mat.c.id,
        mat.c.formula,
        mat.c.reduced_formula,
        mat.c.elements,
        mat.c.nelements,
        mat.c.structure.is_not(None).label("has_structure"),
    ).where(
        visible_measurement(q.project_ids),
        *element_conditions(q.elements, q.exact_elements, q.systems, q.limit),
    )
    if q.formula is not None:
        stmt = stmt.where(sa.or_(mat.c.formula == q.formula, mat.c.reduced_formula == q.formula))
    if q.has_structure is not None:
        stmt = stmt.where(
            mat.c.structure.is_not(None) if q.has_structure else mat.c.structure.is_(None)
        )
    if q.after is not None:
        stmt = stmt.where(mat.c.id > q.after)
    return stmt.order_by(mat.c.id).limit(q.limit + 1)


@dataclass
class MeasurementQuery:
    project_ids: Sequence[int]
    property: str | None = None
    elements: Sequence[str] | None = None
    exact_elements: bool = False
    formula: str | None = None
    method: str | None = None
    source: str | None = None
    created_by: str | None = None
    value_min: float | None = None
    value_max: float | None = None
    material_id: int | None = None
    dataset_id: int | None = None
    after: int | None = None
    limit: int | None = 100
    systems: ChemicalSystems | None = None


def measurements(q: MeasurementQuery) -> sa.Select:
    """Visible measurements matching ``q``, oldest first (``limit + 1`` rows unless None)."""
    stmt = (
        sa.select(
            m.c.id,
            d.c.project_id,
            m.c.dataset_id,
            m.c.material_id,
            mat.c.formula,
            m.c.formula_as_ingested,
            mat.c.reduced_formula,
            mat.c.elements,
            p.c.name.label("property"),
            m.c.value,
            m.c.unit,
            m.c.uncertainty,
            m.c.method,
            m.c.conditions,
            m.c.source,
            m.c.raw_value,
            m.c.raw_unit,
            m.c.flag,
            m.c.created_at,
            m.c.created_by,
        )
        .join_from(m, d, m.c.dataset_id == d.c.id)
        .join(mat, m.c.material_id == mat.c.id)
        .join(p, m.c.property_id == p.c.id)
        .where(d.c.project_id.in_(list(q.project_ids)))
    )
    if q.property is not None:
        stmt = stmt.where(p.c.name == q.property)
    if q.elements:
        matching = sa.select(mat.c.id).where(
            *element_conditions(q.elements, q.exact_elements, q.systems)
        )
        stmt = stmt.where(m.c.material_id.in_(matching))
    if q.formula is not None:
        stmt = stmt.where(sa.or_(mat.c.formula == q.formula, mat.c.reduced_formula == q.formula))
    for column, value in (
        (m.c.method, q.method),
        (m.c.source, q.source),
        (m.c.created_by, q.created_by),
        (m.c.material_id, q.material_id),
        (m.c.dataset_id, q.dataset_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if q.value_min is not None:
        stmt = stmt.where(m.c.value >= q.value_min)
    if q.value_max is not None:
        stmt = stmt.where(m.c.value <= q.value_max)
    if q.after is not None:
        stmt = stmt.where(m.c.id > q.after)
    stmt = stmt.order_by(m.c.id)
    return stmt if q.limit is None else stmt.limit(q.limit + 1)


def properties(project_ids: Sequence[int], builtin: Sequence[str]) -> sa.Select:
    """Properties that are built in or have a visible measurement."""
    used = sa.exists(
        sa.select(sa.literal(1))
        .select_from(m.join(d, m.c.dataset_id == d.c.id))
        .where(m.c.property_id == p.c.id, d.c.project_id.in_(list(project_ids)))
    )
    return (
        sa.select(p.c.name, p.c.canonical_unit, p.c.description)
        .where(sa.or_(p.c.name.in_(list(builtin)), used))
        .order_by(p.c.name)
    )
