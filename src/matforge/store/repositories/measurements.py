"""Measurements, the materials they are of and the properties they measure: the one place
their columns, joins and filters are written.

:class:`~matforge.store.Store` (a local user reading their own file: every project), the
server's routes (a caller: only the projects :func:`~matforge.store.repositories.visibility.roles`
gives them) and the server's training job all read measurements through :func:`select`;
visibility is its ``project_ids`` filter. Everything is a SQLAlchemy expression with bound
parameters; no SQL text is built from request values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from matforge.store import schema
from matforge.store.repositories.systems import ChemicalSystems
from matforge.store.repositories.visibility import visible_material

m, mat, d, p, pr = (
    schema.measurements,
    schema.materials,
    schema.datasets,
    schema.properties,
    schema.projects,
)


def _as_list(x: str | Iterable[str] | None) -> list[str] | None:
    if x is None:
        return None
    return [x] if isinstance(x, str) else list(x)


def _equal_or_in(column, value: str | Iterable[str]):
    return column == value if isinstance(value, str) else column.in_(list(value))


def element_conditions(
    elements: Sequence[str] | None,
    exact: bool = False,
    systems: ChemicalSystems | None = None,
    limit: int | None = None,
    *,
    column=None,
) -> list:
    """Conditions on ``materials.elements`` ("-Fe-O-"; or on another such ``column``, e.g.
    ``structures.elements``): contains all ``elements``, or (``exact``) is exactly that
    chemical system. With ``systems``, "contains" is an indexed ``IN`` over the matching
    systems when they are few (see :mod:`.systems`); else a ``LIKE '%-Fe-%'`` per element (the
    dashes keep ``O`` from matching ``Os``)."""
    if not elements:
        return []
    column = mat.c.elements if column is None else column
    symbols = sorted(set(elements))
    if exact:
        return [column == "-" + "-".join(symbols) + "-"]
    matching = systems.containing(symbols, limit) if systems is not None else None
    if matching is not None:
        return [column.in_(matching)] if matching else [sa.false()]
    return [column.like(f"%-{e}-%") for e in symbols]


@dataclass
class _Scope:
    """What reads of measurements and of materials share. ``project_ids`` is visibility: the
    projects the reader may read (None: every project, for the store's own user);
    ``projects`` (names, one or several), ``elements`` (contains all of them, or with
    ``exact_elements`` exactly them), ``formula`` (the material's formula or reduced formula)
    and ``after`` (a row id) are filters."""

    project_ids: Sequence[int] | None = None
    projects: str | Sequence[str] | None = None
    elements: Sequence[str] | None = None
    exact_elements: bool = False
    formula: str | None = None
    after: int | None = None
    #: at most ``limit + 1`` rows (to see whether more follow); None: all
    limit: int | None = None
    systems: ChemicalSystems | None = None


@dataclass
class MeasurementQuery(_Scope):
    """Which measurements to read: the filters of :class:`_Scope`, and ``property`` and
    ``method`` (one value or several), ``source``, ``created_by``, a value range,
    ``material_id``, ``dataset_id``."""

    property: str | Sequence[str] | None = None
    method: str | Sequence[str] | None = None
    source: str | None = None
    created_by: str | None = None
    value_min: float | None = None
    value_max: float | None = None
    material_id: int | None = None
    dataset_id: int | None = None


def _formula_is(formula: str):
    return sa.or_(mat.c.formula == formula, mat.c.reduced_formula == formula)


def select(
    q: MeasurementQuery, *, project_names: bool = False, conditions_as_text: bool = False
) -> sa.Select:
    """Measurements matching ``q``, oldest first.

    Columns: ``id``, ``project_id`` (with ``project_names``: ``project``, its name instead),
    ``dataset_id``, ``material_id``, ``formula``, ``formula_as_ingested``, ``reduced_formula``,
    ``elements`` ("-Fe-O-"), ``property``, ``value``, ``unit``, ``uncertainty``, ``method``,
    ``conditions`` (JSON; text with ``conditions_as_text``), ``source``, ``raw_value``,
    ``raw_unit``, ``flag``, ``created_at``, ``created_by``.
    """
    with_projects = project_names or q.projects is not None
    conditions = m.c.conditions
    if conditions_as_text:
        conditions = sa.cast(conditions, sa.Text).label("conditions")
    stmt = (
        sa.select(
            m.c.id,
            pr.c.name.label("project") if project_names else d.c.project_id,
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
            conditions,
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
    )
    if with_projects:
        stmt = stmt.join(pr, d.c.project_id == pr.c.id)
    return _filter(stmt, q).order_by(m.c.id).limit(None if q.limit is None else q.limit + 1)


def columns(*, project_names: bool = False) -> list[str]:
    """Names of the columns :func:`select` returns, in order (``project`` instead of
    ``project_id`` with ``project_names``): the columns of an export."""
    stmt = select(MeasurementQuery(), project_names=project_names)
    return [c.name for c in stmt.selected_columns]


def _filter(stmt: sa.Select, q: MeasurementQuery) -> sa.Select:
    if q.project_ids is not None:
        stmt = stmt.where(d.c.project_id.in_(list(q.project_ids)))
    if q.projects is not None:
        stmt = stmt.where(_equal_or_in(pr.c.name, q.projects))
    if q.property is not None:
        stmt = stmt.where(_equal_or_in(p.c.name, q.property))
    if q.elements is not None:
        # As a subquery, so the database scans the small covering index on
        # materials.elements and then seeks measurements by material_id, instead of scanning
        # measurements.
        matching = sa.select(mat.c.id).where(
            *element_conditions(q.elements, q.exact_elements, q.systems)
        )
        stmt = stmt.where(m.c.material_id.in_(matching))
    if q.formula is not None:
        stmt = stmt.where(_formula_is(q.formula))
    if q.method is not None:
        stmt = stmt.where(_equal_or_in(m.c.method, q.method))
    for column, value in (
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
    return stmt


def training_data(
    conn: sa.Connection, project_id: int, property: str
) -> tuple[list[str], list[float]]:
    """Formulas and values (canonical unit) of ``property`` measured in project
    ``project_id``, oldest first: what a model of that property is trained on."""
    stmt = select(MeasurementQuery(project_ids=[project_id], property=property))
    rows = conn.execute(stmt.with_only_columns(mat.c.formula, m.c.value)).all()
    return [r.formula for r in rows], [r.value for r in rows]


# --- materials ----------------------------------------------------------------------------


@dataclass
class MaterialQuery(_Scope):
    """Which materials to read: the filters of :class:`_Scope` (a material is visible when
    one of its measurements is in ``project_ids``; ``projects`` keeps those measured in these
    projects), and ``has_structure``."""

    has_structure: bool | None = None


def _material_columns() -> tuple:
    """The columns a material is listed with: ``id``, ``formula``, ``reduced_formula``,
    ``elements``, ``nelements``, ``has_structure``."""
    return (
        mat.c.id,
        mat.c.formula,
        mat.c.reduced_formula,
        mat.c.elements,
        mat.c.nelements,
        mat.c.structure.is_not(None).label("has_structure"),
    )


def select_materials(q: MaterialQuery) -> sa.Select:
    """Materials matching ``q``, by id: ``id``, ``formula``, ``reduced_formula``, ``elements``
    ("-Fe-O-"), ``nelements``, ``has_structure``. With ``q.systems`` building the statement
    may refresh that index: build it outside another connection."""
    stmt = sa.select(*_material_columns())
    if q.project_ids is not None:
        stmt = stmt.where(visible_material(q.project_ids))
    if q.elements is not None:
        stmt = stmt.where(*element_conditions(q.elements, q.exact_elements, q.systems, q.limit))
    if q.projects is not None:
        in_project = (
            sa.select(m.c.material_id)
            .join(d, m.c.dataset_id == d.c.id)
            .join(pr, d.c.project_id == pr.c.id)
            .where(pr.c.name.in_(_as_list(q.projects)))
        )
        stmt = stmt.where(mat.c.id.in_(in_project))
    if q.formula is not None:
        stmt = stmt.where(_formula_is(q.formula))
    if q.has_structure is not None:
        stmt = stmt.where(
            mat.c.structure.is_not(None) if q.has_structure else mat.c.structure.is_(None)
        )
    if q.after is not None:
        stmt = stmt.where(mat.c.id > q.after)
    stmt = stmt.order_by(mat.c.id)
    return stmt if q.limit is None else stmt.limit(q.limit + 1)


def material(conn: sa.Connection, material_id: int, project_ids: Sequence[int] | None = None):
    """The row of material ``material_id`` (the columns of :func:`select_materials` and its
    ``structure`` dict), or None when there is none visible in ``project_ids``."""
    stmt = sa.select(*_material_columns(), mat.c.structure).where(mat.c.id == material_id)
    if project_ids is not None:
        stmt = stmt.where(visible_material(project_ids))
    return conn.execute(stmt).first()


def is_visible(conn: sa.Connection, kind: str, row_id: int, project_ids: Sequence[int]) -> bool:
    """Whether the ``dataset`` or ``material`` ``row_id`` exists in ``project_ids``."""
    if kind == "dataset":
        found = sa.select(d.c.id).where(d.c.id == row_id, d.c.project_id.in_(list(project_ids)))
    elif kind == "material":
        found = sa.select(mat.c.id).where(mat.c.id == row_id, visible_material(project_ids))
    else:
        raise ValueError(f"unknown kind {kind!r}: 'dataset' or 'material'")
    return conn.execute(found).first() is not None


# --- properties ---------------------------------------------------------------------------


def select_properties(
    project_ids: Sequence[int] | None = None, builtin: Sequence[str] = ()
) -> sa.Select:
    """Properties (``name``, ``canonical_unit``, ``description``) by name: every one (with
    ``project_ids`` None), or those in ``builtin`` or measured in ``project_ids``."""
    stmt = sa.select(p.c.name, p.c.canonical_unit, p.c.description).order_by(p.c.name)
    if project_ids is not None:
        used = sa.exists(
            sa.select(sa.literal(1))
            .select_from(m.join(d, m.c.dataset_id == d.c.id))
            .where(m.c.property_id == p.c.id, d.c.project_id.in_(list(project_ids)))
        )
        stmt = stmt.where(sa.or_(p.c.name.in_(list(builtin)), used))
    return stmt


def properties(
    conn: sa.Connection, project_ids: Sequence[int] | None = None, builtin: Sequence[str] = ()
) -> list[sa.Row]:
    """The rows of :func:`select_properties`."""
    return conn.execute(select_properties(project_ids, builtin)).all()


def property_unit(conn: sa.Connection, name: str) -> str | None:
    """The canonical unit of property ``name``, or None if the store does not know it."""
    return conn.execute(sa.select(p.c.canonical_unit).where(p.c.name == name)).scalar()
