"""The store as OPTIMADE entries: the one place their tables, filters and pages are queried.

Two entry types. ``structures``: every material with a visible measurement (id ``mat_...``),
with or without a crystal structure, and every visible stored structure
(:mod:`matforge.store.structures`, id ``str_...``); ``references``: the sources of visible
measurements. Composition fields (``elements``, ``nelements``, ``elements_ratios``,
``chemical_formula_reduced`` / ``_anonymous`` / ``_descriptive``) come from the formula; the
structure fields (``nsites``, ``lattice_vectors``, ``cartesian_site_positions``, ``species``,
``species_at_sites``, ...) from the structure, and are null for a composition-only material
(``nsites IS KNOWN`` keeps the entries with a structure). The fields that filters need but the
store lacks are kept in the ``optimade_structures`` (materials), ``structure_optimade``
(structures) and ``optimade_references`` (sources) tables, filled by :func:`sync` for rows
added since the last call.

Visibility is a filter every read here takes: ``project_ids``, the projects the caller may read
(:func:`matforge.store.repositories.visibility.roles`); nothing outside them is listed, counted
or averaged.

Filters arrive parsed (the server parses the OPTIMADE grammar and bounds its size); the
:class:`SQLTransformer` here turns the tree into a WHERE clause over the columns a
:class:`Field` names, so filtering happens in the database, on SQLite and PostgreSQL alike.
Supported: ``AND``/``OR``/``NOT``; ``= != < <= > >=`` on strings, numbers and timestamps, with
the property on either side or on both; ``CONTAINS``, ``STARTS [WITH]``, ``ENDS [WITH]``;
``IS KNOWN``/``IS UNKNOWN``; ``HAS``, ``HAS ALL``, ``HAS ANY``, ``HAS ONLY`` and ``LENGTH`` on
lists of names (``elements``, ``species_at_sites``, ``structure_features``). Correlated list
queries (``a:b HAS x:y``), operators inside ``HAS`` and filters on lists of numbers raise
:class:`~optimade.exceptions.NotImplementedResponse` (501); unknown properties
:class:`~optimade.exceptions.BadRequest` (400); properties of other providers (``_xyz_...``)
are unknown values, as the specification says. Comparisons follow SQL's three-valued logic,
which is OPTIMADE's: a comparison with a null property is neither true nor false, and ``NOT``
keeps it so (``NOT nsites = 4`` does not return entries without ``nsites``). Integers are
refused outside the 64-bit range the database stores, floats when not finite.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from functools import reduce
from typing import Any, Protocol

import sqlalchemy as sa
from lark import Token, Tree, v_args
from lark.exceptions import LarkError, VisitError
from optimade.exceptions import BadRequest, NotImplementedResponse
from optimade.filtertransformers import BaseTransformer

from matforge.store import accounts, schema
from matforge.store import structures as stored
from matforge.store.database import write_transaction

#: The provider prefix of this database's own fields (``_matforge_...``).
PREFIX = "matforge"
ENTRY_TYPES = ("structures", "references")
#: Largest value list of ``HAS ALL/ANY/ONLY`` (each value becomes SQL).
MAX_VALUES = 100
#: Integers a filter may compare with: the database's 64-bit signed integer columns.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class PublicIds(Protocol):
    """What :func:`sync` needs of the server's id cipher (:class:`matforge.server.ids.IdCodec`)."""

    def encode(self, kind: str, row_id: int) -> str: ...

    def of_text(self, kind: str, text: str) -> str: ...


# --- fields derived from formulas and structures ---------------------------------------------

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


def site_amounts(structure: dict) -> dict[str, float]:
    """Element → number of atoms in the cell of a ``Structure.as_dict()`` (occupancies summed)."""
    out: dict[str, float] = {}
    for site in structure["sites"]:
        for sp in site["species"]:
            out[str(sp["element"])] = out.get(str(sp["element"]), 0.0) + float(sp.get("occu", 1))
    return out


# --- the index: fields the filters need that the store's own tables lack ---------------------


def index_row(codec: PublicIds, material_id: int, formula: str, structure: dict | None) -> dict:
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


def structure_index_row(codec: PublicIds, structure_id: int, structure: dict) -> dict:
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


def reference_row(codec: PublicIds, row_id: int, source: str) -> dict:
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


def sync(engine: sa.Engine, codec: PublicIds) -> None:
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


def _sync_structures(engine: sa.Engine, codec: PublicIds) -> None:
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


def _sync_references(engine: sa.Engine, codec: PublicIds) -> None:
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


# --- filters as SQL --------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A filterable property: its kind and the SQL expression(s) holding it.

    ``kind``: ``string``, ``integer``, ``float``, ``timestamp``, ``set`` (a list of names
    stored as ``"-a-b-"``), or ``list`` (a list served but not filterable beyond IS KNOWN).
    ``length`` is the length of a ``set``; ``known`` what ``IS KNOWN`` tests (default:
    ``column IS NOT NULL``).
    """

    name: str
    kind: str
    column: Any = None
    length: Any = None
    known: Any = None
    sortable: bool = field(default=True)

    def is_known(self):
        if self.known is not None:
            return self.known
        return self.column.is_not(None)


class _Unknown(str):
    """A property of another provider: every comparison with it is unknown (SQL NULL)."""


_NULL = sa.null()
_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_REVERSED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}


def number(token: str, integer: bool) -> int | float:
    """A number of a filter, refused (:class:`BadRequest`) where the database cannot hold it:
    integers outside the 64-bit signed range, floats that are not finite."""
    text = str(token)
    if integer:
        try:
            value = int(text)
        except ValueError:  # more digits than Python converts
            value = None
        if value is None or not INT64_MIN <= value <= INT64_MAX:
            shown = text if len(text) <= 30 else f"{text[:27]}..."
            raise BadRequest(
                detail=f"{shown} is outside the range of stored integers "
                "(-9223372036854775808 to 9223372036854775807)"
            )
        return value
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 30 else f"{text[:27]}..."
        raise BadRequest(detail=f"{shown} is not a finite number")
    return value


def parse_timestamp(value: str, dialect: str) -> datetime:
    """An RFC 3339 timestamp string as the datetime the database compares with."""
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(detail=f"not an RFC 3339 timestamp: {value!r}") from None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    # SQLite keeps naive UTC timestamps; PostgreSQL compares aware ones.
    return dt.replace(tzinfo=None) if dialect == "sqlite" else dt


def _bound(value: int | float):
    """A number as a bound parameter of the type that holds every value :func:`number` lets
    through (bigint, double), whatever the column's: PostgreSQL would otherwise cast it to the
    column's type (``integer`` is 32-bit there) and fail on a large one."""
    return sa.literal(value, sa.BigInteger() if isinstance(value, int) else sa.Float())


class SQLTransformer(BaseTransformer):
    """Turns a parsed OPTIMADE filter into a SQLAlchemy boolean expression over ``fields``."""

    def __init__(self, fields: dict[str, Field], dialect: str, provider_prefix: str):
        super().__init__(mapper=None)
        self.fields = fields
        self.dialect = dialect
        self.provider_prefix = provider_prefix

    # --- structure -------------------------------------------------------------------------

    def filter(self, arg):
        return arg[0] if arg else None

    def expression(self, arg):
        return sa.or_(*arg) if len(arg) > 1 else arg[0]

    def expression_clause(self, arg):
        return sa.and_(*arg) if len(arg) > 1 else arg[0]

    def expression_phrase(self, arg):
        if len(arg) == 2:  # NOT phrase
            return sa.not_(arg[1])
        return arg[0]

    def property(self, args):
        name = str(args[0])
        if len(args) > 1:
            raise NotImplementedResponse(
                detail=f"nested properties are not supported: {'.'.join(map(str, args))}"
            )
        if name in self.fields:
            return self.fields[name]
        if name.startswith("_") and not name.startswith(f"_{self.provider_prefix}_"):
            return _Unknown(name)
        raise BadRequest(detail=f"'{name}' is not a known or searchable quantity")

    @v_args(inline=True)
    def number(self, token):
        return number(token, integer=token.type == "SIGNED_INT")

    @v_args(inline=True)
    def signed_int(self, token):
        return number(token, integer=True)

    @v_args(inline=True)
    def bool(self, *tokens):
        raise BadRequest(detail="no property of this endpoint is a boolean")

    @v_args(inline=True)
    def not_implemented_string(self, value):
        return value  # constant-first string comparisons are implemented here

    def value_list(self, arg):
        if any(isinstance(v, Token) and v.type == "OPERATOR" for v in arg):
            raise NotImplementedResponse(detail="operators inside value lists are not supported")
        if len(arg) > MAX_VALUES:
            raise BadRequest(detail=f"at most {MAX_VALUES} values in a list")
        return list(arg)

    def _unsupported(self, *args):
        raise NotImplementedResponse(
            detail="correlated list queries (a:b HAS x:y) are not supported"
        )

    value_zip = value_zip_list = set_zip_op_rhs = property_zip_addon = _unsupported

    # --- comparisons -----------------------------------------------------------------------

    @v_args(inline=True)
    def property_first_comparison(self, quantity, rhs: Callable):
        if isinstance(quantity, _Unknown):
            return rhs(None)
        return rhs(quantity)

    def constant_first_comparison(self, arg):
        constant, operator, other = arg
        operator = str(operator)
        if isinstance(other, Field):
            return self._compare(other, _REVERSED[operator], constant)
        if isinstance(other, _Unknown):
            return _NULL
        try:  # two constants
            return sa.true() if _OPS[operator](constant, other) else sa.false()
        except TypeError:
            raise BadRequest(detail=f"cannot compare {constant!r} with {other!r}") from None

    @v_args(inline=True)
    def value_op_rhs(self, operator, value):
        return lambda f: _NULL if f is None else self._compare(f, str(operator), value)

    def known_op_rhs(self, arg):
        known = str(arg[-1]) == "KNOWN"

        def apply(f):
            if f is None:
                return sa.false() if known else sa.true()
            return f.is_known() if known else sa.not_(f.is_known())

        return apply

    def fuzzy_string_op_rhs(self, arg):
        op = str(arg[0])
        value = arg[-1]

        def apply(f):
            if f is None:
                return _NULL
            if f.kind != "string" or not isinstance(value, str):
                raise BadRequest(
                    detail=f"{op} needs a string property and a string, not {f.name} and {value!r}"
                )
            return self._fuzzy(f.column, op, value)

        return apply

    def set_op_rhs(self, arg):
        mode = str(arg[1]) if len(arg) > 2 else "HAS"
        if mode not in ("ALL", "ANY", "ONLY"):
            if len(arg) == 3:  # HAS OPERATOR value
                raise NotImplementedResponse(detail="HAS with an operator is not supported")
            values = [arg[1]]
        else:
            values = arg[2]

        def apply(f):
            if f is None:
                return _NULL
            if f.kind != "set":
                if f.kind == "list":
                    raise NotImplementedResponse(detail=f"HAS is not supported on {f.name}")
                raise BadRequest(detail=f"HAS needs a list property; {f.name} is a {f.kind}")
            if not all(isinstance(v, str) for v in values):
                raise BadRequest(detail=f"{f.name} holds strings; got {values!r}")
            if mode == "ONLY":
                return self._only(f.column, values)
            tests = [self._find(f.column, f"-{v}-") for v in values]
            return sa.or_(*tests) if mode == "ANY" else sa.and_(*tests)

        return apply

    def length_op_rhs(self, arg):
        operator = str(arg[1]) if len(arg) == 3 else "="
        value = arg[-1]

        def apply(f):
            if f is None:
                return _NULL
            if f.length is None:
                if f.kind == "list":
                    raise NotImplementedResponse(detail=f"LENGTH is not supported on {f.name}")
                raise BadRequest(detail=f"LENGTH needs a list property; {f.name} is a {f.kind}")
            return _OPS[operator](f.length, _bound(int(value)))

        return apply

    # --- SQL -------------------------------------------------------------------------------

    def _compare(self, f: Field, operator: str, value):
        if isinstance(value, _Unknown):
            return _NULL
        if isinstance(value, Field):
            scalar = ("string", "integer", "float", "timestamp")
            if f.kind not in scalar or value.kind not in scalar:
                raise NotImplementedResponse(detail=f"cannot compare {f.name} with {value.name}")
            return _OPS[operator](f.column, value.column)
        if f.kind == "string":
            if not isinstance(value, str):
                raise BadRequest(
                    detail=f"{f.name} is a string; compare it with a string, not {value!r}"
                )
        elif f.kind in ("integer", "float"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadRequest(
                    detail=f"{f.name} is a number; compare it with a number, not {value!r}"
                )
        elif f.kind == "timestamp":
            if not isinstance(value, str):
                raise BadRequest(
                    detail=f'{f.name} is a timestamp; compare it with a string like "2026-01-01T00:00:00Z"'
                )
            value = parse_timestamp(value, self.dialect)
        elif f.kind == "set":
            raise BadRequest(
                detail=f"{f.name} is a list: use HAS, HAS ALL, HAS ANY, HAS ONLY or LENGTH"
            )
        else:
            raise NotImplementedResponse(detail=f"comparisons on {f.name} are not supported")
        if f.kind in ("integer", "float"):
            value = _bound(value)
        return _OPS[operator](f.column, value)

    def _find(self, column, needle: str):
        """Case-sensitive substring test (SQLite's LIKE ignores case, so it is not used)."""
        if self.dialect == "postgresql":
            return sa.func.strpos(column, needle) > 0
        return sa.func.instr(column, needle) > 0

    def _fuzzy(self, column, op: str, value: str):
        if op == "CONTAINS":
            return self._find(column, value)
        n = len(value)
        if op == "STARTS":
            return sa.func.substr(column, 1, n) == value
        if self.dialect == "postgresql":
            return sa.func.right(column, n) == value
        return sa.func.substr(column, -n) == value if n else sa.true()

    def _only(self, column, values: Sequence[str]):
        # Remove every allowed name from "-a-b-"; only "-" is left if nothing else was there.
        rest = column
        for v in sorted(set(values)):
            rest = sa.func.replace(rest, f"-{v}-", "-")
        return rest == "-"


def where(tree: Tree | None, fields: dict[str, Field], dialect: str, text: str = ""):
    """The WHERE clause of a parsed OPTIMADE filter over ``fields`` (None for no filter), for
    the SQL ``dialect`` (``sqlite``, ``postgresql``); ``text``, the filter as written, names it
    in error messages.

    Raises :class:`optimade.exceptions.BadRequest` (an unknown property, a bad value) or
    :class:`~optimade.exceptions.NotImplementedResponse` (a feature this server lacks).
    """
    if tree is None:
        return None
    try:
        return SQLTransformer(fields, dialect, PREFIX).transform(tree)
    except VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, BadRequest | NotImplementedResponse):
            raise inner from None
        if isinstance(inner, NotImplementedError):
            raise NotImplementedResponse(detail=str(inner)) from None
        if isinstance(inner, ValueError | TypeError | LarkError):
            raise BadRequest(detail=f"invalid filter {text!r}: {inner}") from None
        raise


# --- entries of the caller's projects -------------------------------------------------------

m, mat, d = schema.measurements, schema.materials, schema.datasets
opt, ref = accounts.optimade_structures, accounts.optimade_references
st, so = stored.structures, stored.structure_optimade


def _visible_materials(project_ids: list[int]):
    return (
        sa.select(
            m.c.material_id.label("material_id"), sa.func.max(m.c.created_at).label("last_modified")
        )
        .join_from(m, d, m.c.dataset_id == d.c.id)
        .where(d.c.project_id.in_(project_ids))
        .group_by(m.c.material_id)
        .subquery("visible")
    )


def _visible_sources(project_ids: list[int]):
    return (
        sa.select(m.c.source.label("source"), sa.func.max(m.c.created_at).label("last_modified"))
        .join_from(m, d, m.c.dataset_id == d.c.id)
        .where(d.c.project_id.in_(project_ids), m.c.source.is_not(None))
        .group_by(m.c.source)
        .subquery("visible")
    )


def _null(type_):
    return sa.cast(sa.null(), type_)


def _visible_entries(project_ids: list[int]):
    """The structures entries ``project_ids`` make visible, one row each: the materials with a
    visible measurement (``structure_id`` null) and the stored structures of those projects."""
    vis = _visible_materials(project_ids)
    materials = (
        sa.select(
            opt.c.public_id.label("public_id"),
            mat.c.id.label("material_id"),
            _null(sa.BigInteger).label("structure_id"),
            mat.c.formula.label("formula"),
            mat.c.elements.label("elements"),
            mat.c.nelements.label("nelements"),
            opt.c.chemical_formula_reduced.label("chemical_formula_reduced"),
            opt.c.chemical_formula_anonymous.label("chemical_formula_anonymous"),
            opt.c.nsites.label("nsites"),
            opt.c.nperiodic_dimensions.label("nperiodic_dimensions"),
            opt.c.structure_features.label("structure_features"),
            opt.c.species_names.label("species_names"),
            vis.c.last_modified.label("last_modified"),
            _null(sa.Integer).label("spacegroup_number"),
            _null(sa.String).label("spacegroup_symbol"),
            _null(sa.String).label("method"),
            opt.c.public_id.label("material_public_id"),
        )
        .select_from(vis)
        .join(mat, mat.c.id == vis.c.material_id)
        .join(opt, opt.c.material_id == mat.c.id)
    )
    material_ids = opt.alias("material_ids")
    structures = (
        sa.select(
            so.c.public_id,
            st.c.material_id,
            st.c.id,
            st.c.formula,
            st.c.elements,
            st.c.nelements,
            so.c.chemical_formula_reduced,
            so.c.chemical_formula_anonymous,
            st.c.nsites,
            so.c.nperiodic_dimensions,
            so.c.structure_features,
            so.c.species_names,
            st.c.created_at,
            st.c.spacegroup_number,
            st.c.spacegroup_symbol,
            st.c.method,
            material_ids.c.public_id,
        )
        .join_from(st, so, so.c.structure_id == st.c.id)
        .join(material_ids, material_ids.c.material_id == st.c.material_id, isouter=True)
        .where(st.c.project_id.in_(project_ids))
    )
    return sa.union_all(materials, structures).subquery("entries")


#: Measured properties are served as ``_matforge_<property>``; names that are not OPTIMADE
#: identifiers, or that a fixed field already takes, are not served.
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


def _measured_properties(project_ids: list[int]) -> sa.Select:
    """The properties measured in ``project_ids``: id, name, canonical unit, description."""
    p = schema.properties
    used = sa.exists(
        sa.select(sa.literal(1))
        .select_from(m.join(d, m.c.dataset_id == d.c.id))
        .where(m.c.property_id == p.c.id, d.c.project_id.in_(project_ids))
    )
    return (
        sa.select(p.c.id, p.c.name, p.c.canonical_unit, p.c.description)
        .where(used)
        .order_by(p.c.name)
    )


def _measured_field(u, project_ids: list[int], property_id: int, name: str) -> Field:
    mean = (
        sa.select(sa.func.avg(m.c.value))
        .join_from(m, d, m.c.dataset_id == d.c.id)
        .where(
            m.c.material_id == u.c.material_id,
            m.c.property_id == property_id,
            d.c.project_id.in_(project_ids),
        )
        .scalar_subquery()
    )
    return Field(f"_{PREFIX}_{name}", "float", mean)


def measured_field_name(name: str) -> str | None:
    """The field a measured property is served as (``_matforge_<name>``); None for a name that
    is not an OPTIMADE identifier or that a fixed field of structures entries already takes."""
    field = f"_{PREFIX}_{name}"
    return field if _IDENTIFIER.match(name) and field not in _fixed_structure_fields() else None


def _structure_fields(
    u, measured: Sequence[MeasuredProperty] = (), project_ids: Sequence[int] = ()
) -> dict[str, Field]:
    has_structure = u.c.nsites.is_not(None)
    features_count = (
        sa.func.length(u.c.structure_features)
        - sa.func.length(sa.func.replace(u.c.structure_features, "-", ""))
        - 1
    )
    fields = [
        Field("id", "string", u.c.public_id),
        Field("type", "string", sa.literal("structures")),
        Field("last_modified", "timestamp", u.c.last_modified),
        Field("elements", "set", u.c.elements, length=u.c.nelements, sortable=False),
        Field("nelements", "integer", u.c.nelements),
        Field("elements_ratios", "list", known=sa.true(), sortable=False),
        Field("chemical_formula_descriptive", "string", u.c.formula),
        Field("chemical_formula_reduced", "string", u.c.chemical_formula_reduced),
        Field("chemical_formula_anonymous", "string", u.c.chemical_formula_anonymous),
        Field("dimension_types", "list", known=has_structure, sortable=False),
        Field("nperiodic_dimensions", "integer", u.c.nperiodic_dimensions),
        Field("lattice_vectors", "list", known=has_structure, sortable=False),
        Field("cartesian_site_positions", "list", known=has_structure, sortable=False),
        Field("nsites", "integer", u.c.nsites),
        Field("species", "list", known=has_structure, sortable=False),
        Field("species_at_sites", "set", u.c.species_names, length=u.c.nsites, sortable=False),
        Field(
            "structure_features",
            "set",
            u.c.structure_features,
            length=features_count,
            sortable=False,
        ),
        Field(f"_{PREFIX}_space_group_it_number", "integer", u.c.spacegroup_number),
        Field(f"_{PREFIX}_space_group_symbol", "string", u.c.spacegroup_symbol),
        Field(f"_{PREFIX}_method", "string", u.c.method),
        Field(f"_{PREFIX}_material_id", "string", u.c.material_public_id),
    ]
    for prop in measured or []:
        if prop.field:
            fields.append(_measured_field(u, list(project_ids), prop.id, prop.name))
    return {f.name: f for f in fields}


def _reference_fields(vis) -> dict[str, Field]:
    fields = [
        Field("id", "string", ref.c.public_id),
        Field("type", "string", sa.literal("references")),
        Field("last_modified", "timestamp", vis.c.last_modified),
        Field("doi", "string", ref.c.doi),
        Field("url", "string", ref.c.url),
        Field("note", "string", ref.c.source),
    ]
    return {f.name: f for f in fields}


@functools.cache
def _fixed_structure_fields() -> frozenset[str]:
    """Names of the structures fields that do not come from measured properties."""
    return frozenset(_structure_fields(_visible_entries([])))


def field_names(entry_type: str) -> list[str]:
    """The fields every entry of ``entry_type`` is served with and may be filtered on, in the
    order they are listed (measured properties, ``_matforge_<property>``, come on top)."""
    if entry_type == "structures":
        return list(_structure_fields(_visible_entries([])))
    return list(_reference_fields(_visible_sources([])))


@dataclass(frozen=True)
class MeasuredProperty:
    """A property measured in the caller's projects, served as the field ``field`` (None where
    its name cannot be one): the mean of the material's visible measurements, in
    ``canonical_unit``."""

    id: int
    name: str
    canonical_unit: str
    description: str | None
    field: str | None


def measured_properties(conn: sa.Connection, project_ids: Sequence[int]) -> list[MeasuredProperty]:
    """The properties measured in ``project_ids``, by name."""
    return [
        MeasuredProperty(r.id, r.name, r.canonical_unit, r.description, measured_field_name(r.name))
        for r in conn.execute(_measured_properties(list(project_ids)))
    ]


@dataclass(frozen=True)
class StructureRecord:
    """A structures entry as stored: ``row`` has the columns of the entries query
    (``public_id``, ``material_id``, ``structure_id`` (None for a material), ``formula``,
    ``nsites``, ``chemical_formula_reduced``, ``chemical_formula_anonymous``, ``last_modified``,
    ``spacegroup_number``, ``spacegroup_symbol``, ``method``, ``material_public_id``);
    ``structure`` a ``Structure.as_dict()`` (None for a composition-only material);
    ``measured`` {field name: mean visible measurement, None where there is none}."""

    row: Any
    structure: dict | None
    measured: dict[str, float | None]


@dataclass(frozen=True)
class Page:
    """One page of entries: :class:`StructureRecord` (structures) or rows with ``public_id``,
    ``doi``, ``url``, ``source``, ``last_modified`` (references); ``returned`` entries match
    the filter, ``available`` are visible."""

    records: list
    returned: int
    available: int
    #: whether entries after this page match
    more: bool


class _Collection:
    """One entry type over the entries of ``project_ids``: its select, fields and page reads."""

    def __init__(self, conn: sa.Connection, entry_type: str, project_ids: Sequence[int]):
        if entry_type not in ENTRY_TYPES:
            raise ValueError(f"no entry type {entry_type!r}; available: {', '.join(ENTRY_TYPES)}")
        self.entry_type = entry_type
        self.project_ids = sorted(project_ids)
        self.dialect = conn.dialect.name
        if entry_type == "structures":
            measured = measured_properties(conn, self.project_ids)
            visible = _visible_entries(self.project_ids)
            self.fields = _structure_fields(visible, measured, self.project_ids)
            #: (property id, field name) of the measured properties served as fields
            self.measured = [(p.id, p.field) for p in measured if p.field]
            self.select = sa.select(visible)
            self.tiebreak = visible.c.public_id
        else:
            visible = _visible_sources(self.project_ids)
            self.fields = _reference_fields(visible)
            self.measured = []
            self.select = (
                sa.select(
                    ref.c.public_id, ref.c.doi, ref.c.url, ref.c.source, visible.c.last_modified
                )
                .select_from(visible)
                .join(ref, ref.c.source == visible.c.source)
            )
            self.tiebreak = ref.c.public_id

    def order(self, sort: Sequence[tuple[str, bool]]) -> list:
        keys = []
        for name, descending in sort:
            f = self.fields.get(name)
            if f is None or not f.sortable or f.column is None:
                raise BadRequest(detail=f"cannot sort on {name!r}")
            keys.append(f.column.desc() if descending else f.column.asc())
        return [*keys, self.tiebreak]

    def count(self, conn: sa.Connection, where=None) -> int:
        stmt = self.select if where is None else self.select.where(where)
        return conn.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()

    def records(self, conn: sa.Connection, stmt) -> list:
        """The records of the rows ``stmt`` selects (measured values and structures fetched
        for those rows only: a page of a large collection costs one pass over the filter, not
        a mean per matching material)."""
        if self.entry_type != "structures":
            return conn.execute(stmt).all()
        rows = conn.execute(stmt).all()
        means = self._means(conn, {r.material_id for r in rows if r.material_id is not None})
        material_ids = [
            r.material_id for r in rows if r.structure_id is None and r.nsites is not None
        ]
        structure_ids = [r.structure_id for r in rows if r.structure_id is not None]
        by_material = dict(
            conn.execute(
                sa.select(mat.c.id, mat.c.structure).where(mat.c.id.in_(material_ids))
            ).all()
        ) if material_ids else {}  # fmt: skip
        by_structure = {
            i: stored.decode_dict(data)
            for i, data in conn.execute(
                sa.select(st.c.id, st.c.data).where(st.c.id.in_(structure_ids))
            ).all()
        } if structure_ids else {}  # fmt: skip
        out = []
        for r in rows:
            structure = (
                by_material.get(r.material_id)
                if r.structure_id is None
                else by_structure.get(r.structure_id)
            )
            measured = {name: means.get((r.material_id, pid)) for pid, name in self.measured}
            out.append(StructureRecord(r, structure, measured))
        return out

    def _means(self, conn: sa.Connection, material_ids: set[int]) -> dict:
        """{(material id, property id): mean visible measurement} of ``material_ids``, in one
        grouped query: what the ``_matforge_<property>`` fields say (the same mean as
        :func:`_measured_field`)."""
        if not material_ids or not self.measured:
            return {}
        stmt = (
            sa.select(m.c.material_id, m.c.property_id, sa.func.avg(m.c.value))
            .join_from(m, d, m.c.dataset_id == d.c.id)
            .where(
                m.c.material_id.in_(sorted(material_ids)),
                m.c.property_id.in_([pid for pid, _ in self.measured]),
                d.c.project_id.in_(self.project_ids),
            )
            .group_by(m.c.material_id, m.c.property_id)
        )
        return {(mid, pid): value for mid, pid, value in conn.execute(stmt)}


def find(
    conn: sa.Connection,
    entry_type: str,
    project_ids: Sequence[int],
    tree: Tree | None = None,
    sort: Sequence[tuple[str, bool]] = (),
    limit: int = 20,
    offset: int = 0,
    filter_text: str = "",
) -> Page:
    """One page of the ``entry_type`` entries of ``project_ids`` that match the parsed filter
    ``tree`` (None: all; ``filter_text``, as written, for error messages), ordered by ``sort``
    ((field name, descending) pairs, then the id), ``limit`` entries from ``offset`` on.

    Raises :class:`~optimade.exceptions.BadRequest` (an unknown property, a bad value, a field
    that cannot be sorted on) or :class:`~optimade.exceptions.NotImplementedResponse`.
    """
    collection = _Collection(conn, entry_type, project_ids)
    condition = where(tree, collection.fields, collection.dialect, filter_text)
    order = collection.order(sort)
    stmt = collection.select if condition is None else collection.select.where(condition)
    available = collection.count(conn)
    returned = available if condition is None else collection.count(conn, condition)
    records = collection.records(conn, stmt.order_by(*order).offset(offset).limit(limit))
    return Page(records, returned, available, offset + len(records) < returned)


def get(
    conn: sa.Connection, entry_type: str, project_ids: Sequence[int], public_id: str
) -> tuple[Any | None, int]:
    """``(record, available)``: the visible entry with id ``public_id`` (None when there is no
    such entry among those of ``project_ids``) and how many entries are visible."""
    collection = _Collection(conn, entry_type, project_ids)
    id_column = collection.fields["id"].column
    found = collection.records(conn, collection.select.where(id_column == public_id))
    return (found[0] if found else None), collection.count(conn)
