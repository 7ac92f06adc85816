"""Parse chemical formula strings: ``parse_formula("Ca3(PO4)2")`` -> ``Composition``.

Grammar (whitespace is allowed between tokens, ``@`` is ignored as pymatgen ignores it)::

    formula := part (SEP number? part)*        # hydrates: CuSO4·5H2O, CuSO4*5H2O, CuSO4.5H2O
    part    := item+
    item    := Element number? | OPEN part CLOSE number?    # OPEN/CLOSE: () [] {}, matched
    number  := 12 | 0.5 | .5 | 2. | 1e-3                     # positive, at most MAX_AMOUNT

Subscript digits ``₀``–``₉`` read as the ordinary digits (``Fe₂O₃`` is ``Fe2O3``, mixed
``Fe₂O3`` too); there is no subscript decimal point in Unicode, so ``Li₀.₅`` uses a plain ``.``.

``SEP`` is ``·``, ``•``, ``∙`` or ``*``; a ``.`` is a hydrate separator only before water
(``CuSO4.5H2O``, ``Fe(OH)3.H2O``, not after a number starting with 0 as in ``Li0.5H2O``) or with
no digit on either side; everywhere else it is a decimal point, as in pymatgen. Elements are
Z = 1..103.

Amounts are computed exactly as pymatgen's ``Composition(str)`` computes them (each term times
its group's factor, summed left to right), so for every formula pymatgen reads the same way the
two give bit-identical amounts. Where pymatgen is lax (unknown symbols become dummy species,
zero amounts are dropped, mismatched bracket types are accepted) this parser raises
:class:`~matforge.errors.InvalidFormula` naming the offending token and its position.

Amounts must be physical: no amount written, no element's total and no formula unit's total may
exceed :data:`MAX_AMOUNT` atoms (``Zn1e308O`` would otherwise overflow every feature computed
from it), and no element's total may be below :data:`AMOUNT_TOLERANCE` (``Fe1e-320O``).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from matforge.chem.elements import Z
from matforge.errors import InvalidFormula

if TYPE_CHECKING:
    from pymatgen.core import Composition

#: pymatgen drops amounts below this (``Composition.amount_tolerance``); we refuse them
AMOUNT_TOLERANCE = 1e-8
#: most atoms per formula unit (in one written amount, one element, or the whole formula):
#: far above any real compound or polymer repeat unit, far below where sums of amounts, their
#: squares (Magpie's deviations) or weights could overflow float64
MAX_AMOUNT = 1e6
_MAX_TEXT = f"{MAX_AMOUNT:,.0f}"

_SEPARATORS = "·•∙*"
# one character for one character, so positions in error messages stay those of the input
_SUBSCRIPT_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?")
_SYMBOL = re.compile(r"[A-Z][a-z]*")
# a '.' that introduces water of crystallisation: CuSO4.5H2O, Fe(OH)3.H2O, X.0.5H2O
_WATER_DOT = re.compile(
    r"(?<![.\d])(?:[1-9]\d*)?(\.)(?=\s*(?:\d+(?:\.\d+)?|\.\d+)?\s*H2O\s*(?:$|[·•∙*.]))"
    r"|(?<=[A-Za-z)\]}\s])(\.)(?=\s*(?:[A-Z(\[{]|$))"
)


def _context(formula: str, where: str | None) -> str:
    return f" ({where})" if where else ""


def _fail(formula: str, problem: str, where: str | None) -> InvalidFormula:
    return InvalidFormula(f"{formula!r}: {problem}{_context(formula, where)}")


class _Parser:
    """Recursive-descent parser over one formula string; positions are 0-based indices."""

    def __init__(self, formula: str, where: str | None):
        self.original = formula  # quoted in errors as the user wrote it
        self.s = formula.translate(_SUBSCRIPT_DIGITS)
        self.where = where
        self.n = len(formula)
        self.i = 0
        self.hydrate_dots = {
            m.start(1) if m.group(1) is not None else m.start(2)
            for m in _WATER_DOT.finditer(self.s)
        }

    def error(self, problem: str) -> InvalidFormula:
        return _fail(self.original, problem, self.where)

    def skip_space(self) -> None:
        s, n = self.s, self.n
        while self.i < n and (s[self.i].isspace() or s[self.i] == "@"):
            self.i += 1

    def at_separator(self) -> bool:
        return self.i < self.n and (
            self.s[self.i] in _SEPARATORS or (self.s[self.i] == "." and self.i in self.hydrate_dots)
        )

    def number(self) -> tuple[float, str, int] | None:
        """An amount at the cursor, or None; stops before a hydrate '.'."""
        self.skip_space()
        m = _NUMBER.match(self.s, self.i)
        if m is None:
            return None
        text = m.group()
        for dot in (self.i + k for k, c in enumerate(text) if c == "."):
            if dot in self.hydrate_dots:  # CuSO4.5H2O: the number is "4", not "4.5"
                text = text[: dot - self.i]
                break
        if not text:
            return None
        pos = self.i
        value = float(text)
        written = self.original[pos : pos + len(text)]
        if not math.isfinite(value):
            raise self.error(f"amount {written!r} at position {pos} is not finite")
        if value == 0.0:
            raise self.error(f"amount {written!r} at position {pos} is zero")
        if value > MAX_AMOUNT:
            raise self.error(
                f"amount {written!r} at position {pos} is more than {_MAX_TEXT} atoms per formula unit"
            )
        self.i = pos + len(text)
        return value, text, pos

    def group(self, closer: str | None, open_pos: int) -> list[tuple[str, float]]:
        """Terms ``(symbol, amount)`` of a bracket body (or the whole part when closer is None).

        Inner groups are expanded into their summed terms, as pymatgen expands them.
        """
        terms: list[tuple[str, float]] = []
        s = self.s
        while True:
            self.skip_space()
            if self.i >= self.n:
                if closer is not None:
                    raise self.error(f"unclosed {s[open_pos]!r} at position {open_pos}")
                break
            c = s[self.i]
            if c in _CLOSE:
                if closer is None:
                    raise self.error(f"unmatched {c!r} at position {self.i}")
                if c != closer:
                    raise self.error(
                        f"{c!r} at position {self.i} does not close {s[open_pos]!r} at position {open_pos}"
                    )
                if not terms:
                    raise self.error(f"empty brackets at position {open_pos}")
                self.i += 1
                break
            if self.at_separator():
                if closer is not None:
                    raise self.error(
                        f"hydrate separator {c!r} at position {self.i} inside brackets"
                    )
                break
            if c in _OPEN:
                pos = self.i
                self.i += 1
                inner = self.group(_OPEN[c], pos)
                num = self.number()
                factor = 1.0 if num is None else num[0]
                summed: dict[str, float] = {}
                for el, amt in inner:
                    summed[el] = summed.get(el, 0.0) + amt * factor
                terms.extend(summed.items())
                continue
            m = _SYMBOL.match(s, self.i)
            if m is None:
                num = _NUMBER.match(s, self.i)
                if num is not None:
                    written = self.original[self.i : num.end()]
                    raise self.error(f"unexpected number {written!r} at position {self.i}")
                hint = " (negative amounts are not allowed)" if c == "-" else ""
                raise self.error(f"unexpected character {c!r} at position {self.i}{hint}")
            symbol = m.group()
            if symbol not in Z:
                raise self.error(f"unknown element {symbol!r} at position {self.i}")
            self.i = m.end()
            num = self.number()
            terms.append((symbol, 1.0 if num is None else num[0]))
        return terms

    def parse(self) -> dict[str, float]:
        self.skip_space()
        if self.i >= self.n:
            raise self.error("empty formula")
        total: dict[str, float] = {}
        factor = 1.0
        while True:
            start = self.i
            terms = self.group(None, start)
            if not terms:
                raise self.error(f"nothing to parse at position {start}")
            for el, amt in terms:
                total[el] = total.get(el, 0.0) + amt * factor
            if self.i >= self.n:
                break
            sep = self.i  # at_separator() is true here
            self.i += 1
            num = self.number()
            factor = 1.0 if num is None else num[0]
            self.skip_space()
            if self.i >= self.n:
                raise self.error(f"nothing after separator {self.s[sep]!r} at position {sep}")
        problem = amounts_problem(total)
        if problem:
            raise self.error(problem)
        return total


def amounts_problem(amounts: dict[str, float]) -> str | None:
    """Why ``{symbol: atoms per formula unit}`` is no physical composition, or None.

    Each amount must be finite and in ``[AMOUNT_TOLERANCE, MAX_AMOUNT]``, and so must their sum
    (added left to right, as ``Composition.num_atoms`` adds them).
    """
    total = 0.0
    for el, amt in amounts.items():
        if not math.isfinite(amt):
            return f"amount {amt!r} of {el!r} is not finite"
        if amt < AMOUNT_TOLERANCE:
            return f"amount {amt!r} of {el!r} is below {AMOUNT_TOLERANCE:g}"
        if amt > MAX_AMOUNT:
            return f"amount {amt:.10g} of {el!r} is more than {_MAX_TEXT} atoms per formula unit"
        total += amt
    if total > MAX_AMOUNT:
        return f"{total:.10g} atoms per formula unit are more than {_MAX_TEXT}"
    return None


def parse_amounts(formula: str, *, where: str | None = None) -> dict[str, float]:
    """``{symbol: amount}`` in order of first appearance; raises :class:`InvalidFormula`."""
    if not isinstance(formula, str):
        raise InvalidFormula(
            f"formula must be a string, got {type(formula).__name__} {formula!r}{_context('', where)}"
        )
    return _Parser(formula, where).parse()


def parse_formula(s: str, *, where: str | None = None) -> Composition:
    """Parse a chemical formula into a pymatgen ``Composition`` (amounts in atoms per formula).

    ``where`` names the source for error messages, e.g. ``"row 17 of data.csv"``. Raises
    :class:`~matforge.errors.InvalidFormula` for an empty string, an unknown element, a zero
    amount, unbalanced or mismatched brackets, or any unexpected character, naming the token
    and its 0-based position.

    >>> parse_formula("K4[Fe(CN)6]").formula
    'K4 Fe1 C6 N6'
    """
    from pymatgen.core import Composition

    return Composition(parse_amounts(s, where=where))
