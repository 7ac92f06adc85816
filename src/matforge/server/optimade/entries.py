"""Store records as OPTIMADE entries: the JSON:API resources of ``structures`` and
``references``, checked against the ``optimade`` package's pydantic models.

The records come from :mod:`matforge.store.repositories.optimade` (which also derives the
composition and structure fields, :func:`~matforge.store.repositories.optimade.structure_fields`);
this module only lays them out.
"""

from __future__ import annotations

import functools
import logging
import warnings
from datetime import UTC, datetime

from matforge.store.repositories import optimade as stored

log = logging.getLogger("matforge.server.optimade")

PREFIX = stored.PREFIX


def timestamp(dt: datetime | None) -> str | None:
    """An RFC 3339 UTC timestamp (``...Z``) of a stored time (naive: UTC)."""
    if dt is None:
        return None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.isoformat().replace("+00:00", "Z")


def structure_entry(record: stored.StructureRecord) -> dict:
    """The entry of a stored structures record (a material, with or without a structure, or a
    stored structure) with its measured values."""
    row, structure = record.row, record.structure
    if row.structure_id is None:
        ratios_counts = stored.amounts(row.formula)
    else:
        ratios_counts = stored.site_amounts(structure)
    total = sum(ratios_counts.values())
    elements = sorted(ratios_counts)
    fields = stored.structure_fields(structure) if row.nsites is not None else None
    attributes = {
        "last_modified": timestamp(row.last_modified),
        "elements": elements,
        "nelements": len(elements),
        "elements_ratios": [ratios_counts[e] / total for e in elements],
        "chemical_formula_descriptive": row.formula,
        "chemical_formula_reduced": row.chemical_formula_reduced,
        "chemical_formula_anonymous": row.chemical_formula_anonymous,
        "dimension_types": None,
        "nperiodic_dimensions": None,
        "lattice_vectors": None,
        "cartesian_site_positions": None,
        "nsites": None,
        "species": None,
        "species_at_sites": None,
        "structure_features": [],
    }
    if fields is not None:
        attributes.update(
            dimension_types=fields.dimension_types,
            nperiodic_dimensions=sum(fields.dimension_types),
            lattice_vectors=fields.lattice_vectors,
            cartesian_site_positions=fields.cartesian_site_positions,
            nsites=fields.nsites,
            species=fields.species,
            species_at_sites=fields.species_at_sites,
            structure_features=fields.structure_features,
        )
    attributes.update(
        {
            f"_{PREFIX}_space_group_it_number": row.spacegroup_number,
            f"_{PREFIX}_space_group_symbol": row.spacegroup_symbol,
            f"_{PREFIX}_method": row.method,
            f"_{PREFIX}_material_id": row.material_public_id,
        }
    )
    attributes.update(record.measured)
    return {"id": row.public_id, "type": "structures", "attributes": attributes}


def reference_entry(row) -> dict:
    """The entry of a stored references row (a measurement source)."""
    attributes = {
        "last_modified": timestamp(row.last_modified),
        "doi": row.doi,
        "url": row.url,
        "note": row.source,
    }
    return {"id": row.public_id, "type": "references", "attributes": attributes}


@functools.cache
def _models():
    from optimade.models import ReferenceResource, StructureResource

    return {"structures": StructureResource, "references": ReferenceResource}


def checked(entry_type: str, entry: dict) -> dict:
    """``entry`` if it is a valid OPTIMADE resource; else without its structure (logged)."""
    model = _models()[entry_type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.model_validate(entry)
            return entry
        except ValueError as exc:
            if entry_type != "structures":
                raise
            log.warning(
                "structure %s is not valid OPTIMADE, served without it: %s", entry["id"], exc
            )
    for key in (
        "dimension_types",
        "nperiodic_dimensions",
        "lattice_vectors",
        "cartesian_site_positions",
        "nsites",
        "species",
        "species_at_sites",
    ):
        entry["attributes"][key] = None
    entry["attributes"]["structure_features"] = []
    return entry
