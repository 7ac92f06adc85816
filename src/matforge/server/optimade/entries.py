"""Store materials and structures as OPTIMADE structures.

Two kinds of entries: every material with a visible measurement (id ``mat_...``), with or
without a crystal structure, and every visible stored structure (:mod:`matforge.store.structures`,
id ``str_...``). Composition fields (``elements``, ``nelements``, ``elements_ratios``,
``chemical_formula_reduced`` / ``_anonymous`` / ``_descriptive``) come from the formula; the
structure fields (``nsites``, ``lattice_vectors``, ``cartesian_site_positions``, ``species``,
``species_at_sites``, ...) from the structure, and are null for a composition-only material
(``nsites IS KNOWN`` keeps the entries with a structure). The fields that filters need but the
store lacks are kept in the ``optimade_structures`` (materials) and ``structure_optimade``
(structures) tables, filled by :func:`sync` for rows added since the last call.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce

import sqlalchemy as sa

from matforge.server.ids import IdCodec
from matforge.store import accounts, schema
from matforge.store import structures as stored
from matforge.store.database import write_transaction

_TERM = re.compile(r"([A-Z][a-z]?)((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)?")
_DOI = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
#: Largest denominator used to turn fractional amounts (alloys) into integer proportions.
MAX_DENOMINATOR = 1000
_SYNC_BATCH = 2000


def amounts(formula: str) -> dict[str, float]:
    """Element → amount of a stored (normalised) formula: ``"Fe2O3"``, ``"Fe0.7Ni0.3"``."""
    out: dict[str, float] = {}
    pos = 0
    for match in _TERM.finditer(formula):
        if match.start() != pos:
            break
        out[match.group(1)] = out.get(match.group(1), 0.0) + float(match.group(2) or 1)
        pos = match.end()
    if pos != len(formula) or not out:
        from matforge.chem import parse_formula  # anything the fast path does not read

        return {el.symbol: float(n) for el, n in parse_formula(formula).items()}
    return out


def integer_proportions(amount: dict[str, float]) -> dict[str, int]:
    """Smallest integers in the proportions of ``amount`` (fractions to 1/1000)."""
    fractions = {e: Fraction(a).limit_denominator(MAX_DENOMINATOR) for e, a in amount.items()}
    fractions = {e: f for e, f in fractions.items() if f > 0} or {e: Fraction(1) for e in amount}
    lcm = reduce(math.lcm, (f.denominator for f in fractions.values()), 1)
    ints = {e: int(f * lcm) for e, f in fractions.items()}
    gcd = reduce(math.gcd, ints.values())
    return {e: n // gcd for e, n in ints.items()}


def _term(symbol: str, n: int) -> str:
    return symbol if n == 1 else f"{symbol}{n}"


def reduced_formula(counts: dict[str, int]) -> str:
    """OPTIMADE ``chemical_formula_reduced``: elements in alphabetical order."""
    return "".join(_term(e, counts[e]) for e in sorted(counts))


def anonymous_formula(counts: dict[str, int]) -> str:
    """OPTIMADE ``chemical_formula_anonymous``: A, B, C... from the largest proportion down."""
    from optimade.models.utils import ANONYMOUS_ELEMENTS

    ordered = sorted(counts.values(), reverse=True)
    return "".join(_term(ANONYMOUS_ELEMENTS[i], n) for i, n in enumerate(ordered))


@dataclass
class StructureFields:
    """The structure-dependent OPTIMADE fields of a pymatgen structure dict."""

    lattice_vectors: list
    cartesian_site_positions: list
    species_at_sites: list[str]
    species: list[dict]
    dimension_types: list[int]
    structure_features: list[str]

    @property
    def nsites(self) -> int:
        return len(self.species_at_sites)


def structure_fields(structure: dict | None) -> StructureFields | None:
    """OPTIMADE fields of a ``Structure.as_dict()``; None for no structure or a damaged one."""
    if not structure:
        return None
    try:
        lattice = structure["lattice"]
        matrix = [[float(x) for x in row] for row in lattice["matrix"]]
        pbc = [int(bool(b)) for b in lattice.get("pbc", (True, True, True))]
        species: dict[tuple, dict] = {}
        at_sites, positions = [], []
        for site in structure["sites"]:
            occupancy = tuple(
                sorted(
                    (str(sp["element"]), round(float(sp.get("occu", 1.0)), 6))
                    for sp in site["species"]
                )
            )
            if occupancy not in species:
                if len(occupancy) == 1 and occupancy[0][1] == 1.0:
                    name = occupancy[0][0]
                else:
                    name = "".join(f"{e}{o:g}" for e, o in occupancy)
                symbols = [e for e, _ in occupancy]
                conc = [o for _, o in occupancy]
                vacancy = round(1.0 - sum(conc), 6)
                if vacancy > 0:
                    symbols.append("vacancy")
                    conc.append(vacancy)
                species[occupancy] = {
                    "name": name,
                    "chemical_symbols": symbols,
                    "concentration": conc,
                }
            at_sites.append(species[occupancy]["name"])
            xyz = site.get("xyz")
            if xyz is None:  # fractional only: convert with the lattice
                abc = site["abc"]
                xyz = [sum(abc[i] * matrix[i][k] for i in range(3)) for k in range(3)]
            positions.append([float(x) for x in xyz])
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    if not at_sites or len(matrix) != 3:
        return None
    disordered = any(len(s["chemical_symbols"]) > 1 for s in species.values())
    return StructureFields(
        lattice_vectors=matrix,
        cartesian_site_positions=positions,
        species_at_sites=at_sites,
        species=list(species.values()),
        dimension_types=pbc,
        structure_features=["disorder"] if disordered else [],
    )


def dash_set(items) -> str:
    """``["Fe", "O"]`` → ``"-Fe-O-"`` (sorted, distinct); ``[]`` → ``"-"``."""
    items = sorted(set(items))
    return "-" + "".join(f"{i}-" for i in items)


def index_row(codec: IdCodec, material_id: int, formula: str, structure: dict | None) -> dict:
    """The ``optimade_structures`` row of a material."""
    counts = integer_proportions(amounts(formula))
    fields = structure_fields(structure)
    return {
        "material_id": material_id,
        "public_id": codec.encode("material", material_id),
        "chemical_formula_reduced": reduced_formula(counts),
        "chemical_formula_anonymous": anonymous_formula(counts),
        "nsites": None if fields is None else fields.nsites,
        "nperiodic_dimensions": None if fields is None else sum(fields.dimension_types),
        "structure_features": dash_set(fields.structure_features if fields else []),
        "species_names": None if fields is None else dash_set(fields.species_at_sites),
    }


def site_amounts(structure: dict) -> dict[str, float]:
    """Element → number of atoms in the cell of a ``Structure.as_dict()`` (occupancies summed)."""
    out: dict[str, float] = {}
    for site in structure["sites"]:
        for sp in site["species"]:
            out[str(sp["element"])] = out.get(str(sp["element"]), 0.0) + float(sp.get("occu", 1))
    return out


def structure_index_row(codec: IdCodec, structure_id: int, structure: dict) -> dict:
    """The ``structure_optimade`` row of a stored structure."""
    counts = integer_proportions(site_amounts(structure))
    fields = structure_fields(structure)
    return {
        "structure_id": structure_id,
        "public_id": codec.encode("structure", structure_id),
        "chemical_formula_reduced": reduced_formula(counts),
        "chemical_formula_anonymous": anonymous_formula(counts),
        "nperiodic_dimensions": None if fields is None else sum(fields.dimension_types),
        "structure_features": dash_set(fields.structure_features if fields else []),
        "species_names": None if fields is None else dash_set(fields.species_at_sites),
    }


def reference_row(codec: IdCodec, row_id: int, source: str) -> dict:
    """The ``optimade_references`` row of a measurement source (a DOI, a URL or free text)."""
    doi = _DOI.match(source.strip())
    url = _URL.match(source.strip())
    return {
        "id": row_id,
        # from the text, not the row id: which sources were indexed before is nobody's business
        "public_id": codec.of_text("reference", source),
        "source_sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
        "source": source,
        "doi": doi.group(1) if doi else None,
        "url": source.strip() if url and not doi else None,
    }


def sync(engine: sa.Engine, codec: IdCodec) -> None:
    """Index the materials and measurement sources added since the last call.

    Cheap when nothing changed (two counts); safe to run concurrently (conflicting inserts are
    skipped, the rows being identical).
    """
    mat, opt = schema.materials, accounts.optimade_structures
    with engine.connect() as conn:
        n_mat = conn.execute(sa.select(sa.func.count()).select_from(mat)).scalar()
        n_opt = conn.execute(sa.select(sa.func.count()).select_from(opt)).scalar()
    while n_opt < n_mat:
        with engine.connect() as conn:
            missing = conn.execute(
                sa.select(mat.c.id, mat.c.formula, mat.c.structure)
                .where(~sa.exists().where(opt.c.material_id == mat.c.id))
                .order_by(mat.c.id)
                .limit(_SYNC_BATCH)
            ).all()
        if not missing:
            break
        rows = [index_row(codec, r.id, r.formula, r.structure) for r in missing]
        _insert_ignore(engine, opt, rows, "material_id")
        n_opt += len(rows)
    _sync_structures(engine, codec)
    _sync_references(engine, codec)


def _sync_structures(engine: sa.Engine, codec: IdCodec) -> None:
    s, so = stored.structures, stored.structure_optimade
    with engine.connect() as conn:
        n_s = conn.execute(sa.select(sa.func.count()).select_from(s)).scalar()
        n_so = conn.execute(sa.select(sa.func.count()).select_from(so)).scalar()
    while n_so < n_s:
        with engine.connect() as conn:
            missing = conn.execute(
                sa.select(s.c.id, s.c.data)
                .where(~sa.exists().where(so.c.structure_id == s.c.id))
                .order_by(s.c.id)
                .limit(_SYNC_BATCH // 10)  # structures are bigger than formulas
            ).all()
        if not missing:
            break
        rows = [structure_index_row(codec, r.id, stored.decode_dict(r.data)) for r in missing]
        _insert_ignore(engine, so, rows, "structure_id")
        n_so += len(rows)


def _sync_references(engine: sa.Engine, codec: IdCodec) -> None:
    m, ref = schema.measurements, accounts.optimade_references
    with engine.connect() as conn:
        known = set(conn.execute(sa.select(ref.c.source)).scalars())
        sources = (
            conn.execute(sa.select(m.c.source).where(m.c.source.is_not(None)).distinct())
            .scalars()
            .all()
        )
        new = sorted(s for s in sources if s not in known)
        if not new:
            return
        start = (conn.execute(sa.select(sa.func.max(ref.c.id))).scalar() or 0) + 1
    rows = [reference_row(codec, start + i, s) for i, s in enumerate(new)]
    _insert_ignore(engine, ref, rows, "source_sha256")


def _insert_ignore(engine: sa.Engine, table: sa.Table, rows: list[dict], key: str) -> None:
    if not rows:
        return
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        conn.execute(insert(table).on_conflict_do_nothing(), rows)
