"""The OPTIMADE filter language: parsed and bounded here, turned into SQL by the store.

The ``optimade`` package's OPTIMADE grammar is parsed (LALR, see :func:`parse`) and its size
checked (:func:`check_size`); the tree goes to :func:`matforge.store.repositories.optimade.find`,
whose transformer turns it into a WHERE clause (what is supported is listed there).

Limits keep every filter cheap and every answer a 4xx, never a 500: at most
:data:`MAX_FILTER_LENGTH` characters, :data:`MAX_DEPTH` nested parentheses and
:data:`MAX_COMPARISONS` comparisons; the store refuses integers outside the 64-bit range the
database stores and floats that are not finite. The grammar is parsed with Lark's LALR parser
(linear time, no recursion).
"""

from __future__ import annotations

import functools
import re
import threading

from lark import Lark, Tree
from lark.exceptions import LarkError, UnexpectedInput
from optimade.exceptions import BadRequest

#: Longest filter (characters).
MAX_FILTER_LENGTH = 10_000
#: Deepest nesting of parentheses (the transformer and SQL compiler recurse per level).
MAX_DEPTH = 50
#: Most comparisons in one filter (SQLite refuses expressions over 1,000 levels deep, and a
#: chain of ORs is one level per term).
MAX_COMPARISONS = 200

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


def parse_filter(filter_text: str) -> Tree | None:
    """The checked parse tree of a filter (None for an empty one): :class:`BadRequest` for one
    that is too long, too deep, too big or malformed."""
    if not filter_text or not filter_text.strip():
        return None
    tree = parse(filter_text)
    check_size(tree)
    return tree
