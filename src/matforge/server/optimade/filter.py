"""The OPTIMADE filter language as SQLAlchemy expressions.

The ``optimade`` package's OPTIMADE grammar is parsed (LALR, see :func:`parse`); the
:class:`SQLTransformer` here turns its tree into a WHERE clause over the columns a
:class:`Field` names, so filtering happens in the database, on SQLite and PostgreSQL alike.

Supported: ``AND``/``OR``/``NOT``; ``= != < <= > >=`` on strings, numbers and timestamps, with
the property on either side or on both; ``CONTAINS``, ``STARTS [WITH]``, ``ENDS [WITH]``;
``IS KNOWN``/``IS UNKNOWN``; ``HAS``, ``HAS ALL``, ``HAS ANY``, ``HAS ONLY`` and ``LENGTH`` on
lists of names (``elements``, ``species_at_sites``, ``structure_features``). Correlated list
queries (``a:b HAS x:y``), operators inside ``HAS`` and filters on lists of numbers answer
501 Not Implemented; unknown properties 400; properties of other providers (``_xyz_...``) are
unknown values, as the specification says. Comparisons follow SQL's three-valued logic, which
is OPTIMADE's: a comparison with a null property is neither true nor false, and ``NOT`` keeps it
so (``NOT nsites = 4`` does not return entries without ``nsites``).

Limits keep every filter cheap and every answer a 4xx, never a 500: at most
:data:`MAX_FILTER_LENGTH` characters, :data:`MAX_DEPTH` nested parentheses and
:data:`MAX_COMPARISONS` comparisons; integers within the 64-bit range the database stores,
floats finite. The grammar is parsed with Lark's LALR parser (linear time, no recursion).
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from lark import Lark, Token, Tree, v_args
from lark.exceptions import LarkError, UnexpectedInput, VisitError
from optimade.exceptions import BadRequest, NotImplementedResponse
from optimade.filtertransformers import BaseTransformer

#: Largest value list of ``HAS ALL/ANY/ONLY`` (each value becomes SQL).
MAX_VALUES = 100
#: Longest filter (characters).
MAX_FILTER_LENGTH = 10_000
#: Deepest nesting of parentheses (the transformer and SQL compiler recurse per level).
MAX_DEPTH = 50
#: Most comparisons in one filter (SQLite refuses expressions over 1,000 levels deep, and a
#: chain of ORs is one level per term).
MAX_COMPARISONS = 200
#: Integers a filter may compare with: the database's 64-bit signed integer columns.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


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


_PARSE_LOCK = threading.Lock()


@functools.cache
def _parser() -> Lark:
    """The newest OPTIMADE grammar of the ``optimade`` package, as an LALR parser.

    The package's own ``LarkParser`` uses Earley, whose time grows faster than the length of
    the filter (2.7 s for 4,900 nested parentheses); LALR gives the same trees in linear time.
    """
    from optimade.filterparser.lark_parser import AVAILABLE_PARSERS

    version = max(v for v in AVAILABLE_PARSERS if AVAILABLE_PARSERS[v].get("default"))
    grammar = AVAILABLE_PARSERS[version]["default"].read_text()
    return Lark(grammar, maybe_placeholders=False, parser="lalr")


def parse(filter_text: str) -> Tree:
    """The parse tree of a filter; :class:`BadRequest` for one that is too long or malformed."""
    if len(filter_text) > MAX_FILTER_LENGTH:
        raise BadRequest(
            detail=f"the filter has {len(filter_text):,} characters; at most {MAX_FILTER_LENGTH:,}"
        )
    # refuse deep nesting before the parser sees it: thousands of parentheses cost the parser
    # seconds on a busy machine, counting them costs a millisecond (check_size re-checks the tree)
    if _paren_depth(filter_text) > MAX_DEPTH:
        raise _too_deep()
    try:
        with _PARSE_LOCK:
            return _parser().parse(filter_text)
    except UnexpectedInput as exc:
        pos = getattr(exc, "pos_in_stream", None)
        if pos is None or pos < 0 or pos >= len(filter_text):
            where = "unexpected end of the filter"
        else:
            where = f"unexpected {filter_text[pos : pos + 20]!r} at character {pos + 1}"
        raise BadRequest(detail=f"cannot parse the filter: {where}") from None
    except LarkError as exc:
        raise BadRequest(detail=f"cannot parse the filter: {type(exc).__name__}") from None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _too_deep() -> BadRequest:
    return BadRequest(detail=f"the filter nests parentheses more than {MAX_DEPTH} levels deep")


def _paren_depth(filter_text: str) -> int:
    """The deepest parenthesis nesting outside string literals (an upper bound where the
    filter is malformed: the parser then refuses it anyway)."""
    depth = deepest = 0
    for ch in _STRING.sub("", filter_text):
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def check_size(tree: Tree) -> None:
    """:class:`BadRequest` for a tree nested deeper than :data:`MAX_DEPTH` parentheses or with
    more than :data:`MAX_COMPARISONS` comparisons (walked without recursion)."""
    comparisons, deepest = 0, 0
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node.data == "expression":
            depth += 1  # the whole filter is one; each pair of parentheses adds one
            if depth - 1 > MAX_DEPTH:
                raise _too_deep()
            deepest = max(deepest, depth)
        elif node.data == "comparison":
            comparisons += 1
            if comparisons > MAX_COMPARISONS:
                raise BadRequest(detail=f"the filter has more than {MAX_COMPARISONS} comparisons")
        stack.extend((child, depth) for child in node.children if isinstance(child, Tree))


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


def to_sql(filter_text: str, fields: dict[str, Field], dialect: str, provider_prefix: str):
    """The WHERE clause of an OPTIMADE filter (None for an empty filter).

    Raises :class:`optimade.exceptions.BadRequest` (a malformed filter, an unknown property) or
    :class:`~optimade.exceptions.NotImplementedResponse` (a feature this server lacks).
    """
    if not filter_text or not filter_text.strip():
        return None
    tree = parse(filter_text)
    check_size(tree)
    try:
        return SQLTransformer(fields, dialect, provider_prefix).transform(tree)
    except VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, BadRequest | NotImplementedResponse):
            raise inner from None
        if isinstance(inner, NotImplementedError):
            raise NotImplementedResponse(detail=str(inner)) from None
        if isinstance(inner, ValueError | TypeError | LarkError):
            raise BadRequest(detail=f"invalid filter {filter_text!r}: {inner}") from None
        raise
