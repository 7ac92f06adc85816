"""Filter expressions over result columns, parsed safely (``ast`` whitelist, never ``eval``).

>>> e = Expression("hardness_vickers > 40 and bulk_modulus > 250")
>>> e.names
('bulk_modulus', 'hardness_vickers')
>>> mask = e.evaluate({"hardness_vickers": hv, "bulk_modulus": b})   # numpy bool array

Allowed: column names, int/float literals, ``+ - * / ** %``, unary ``-``/``+``, comparisons
(``< <= > >= == !=``, chained: ``20 < hardness_vickers <= 60``), ``and``, ``or``, ``not``,
parentheses, and the functions ``abs``, ``log10``, ``sqrt``, ``exp``, ``min``, ``max``. Anything
else (attribute access, calls to other names, subscripts, strings, lambdas, comprehensions)
raises :class:`ScreenError` naming the offending part. Columns evaluate element-wise, so the
same expression runs on (rows,) arrays of means or (rows × samples) Monte Carlo samples; NaN
compares False.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

import numpy as np

from matforge.errors import ScreenError

__all__ = ["Expression"]

_BINOPS: dict[type, Callable] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type, Callable] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCTIONS: dict[str, Callable] = {
    "abs": np.abs,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "min": np.minimum,
    "max": np.maximum,
}
_MAX_LENGTH = 2000


class Expression:
    """A validated boolean expression over named columns (see module docstring)."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text.strip():
            raise ScreenError(f"filter expression must be a non-empty string, got {text!r}")
        if len(text) > _MAX_LENGTH:
            raise ScreenError(f"filter expression longer than {_MAX_LENGTH} characters")
        self.text = text.strip()
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError as exc:
            raise ScreenError(f"filter {self.text!r}: syntax error at column {exc.offset}") from None
        names: set[str] = set()
        self._check(tree.body, names)
        self._tree = tree.body
        self.names = tuple(sorted(names))

    def _fail(self, node: ast.AST, why: str):
        part = ast.get_source_segment(self.text, node) or type(node).__name__
        raise ScreenError(f"filter {self.text!r}: {why}: {part!r}")

    def _check(self, node: ast.AST, names: set[str]) -> None:
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v, names)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
                self._fail(node, "operator not allowed")
            self._check(node.operand, names)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                self._fail(node, "operator not allowed")
            self._check(node.left, names)
            self._check(node.right, names)
        elif isinstance(node, ast.Compare):
            if any(type(op) not in _COMPARE for op in node.ops):
                self._fail(node, "comparison not allowed (use < <= > >= == !=)")
            self._check(node.left, names)
            for c in node.comparators:
                self._check(c, names)
        elif isinstance(node, ast.Name):
            if node.id in _FUNCTIONS:
                self._fail(node, "function name used as a column")
            names.add(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                self._fail(node, "only numeric literals are allowed")
        elif isinstance(node, ast.Call):
            if (
                not isinstance(node.func, ast.Name)
                or node.func.id not in _FUNCTIONS
                or node.keywords
                or not node.args
            ):
                self._fail(node, f"only the functions {', '.join(_FUNCTIONS)} may be called")
            for a in node.args:
                self._check(a, names)
        else:
            self._fail(node, "not allowed in a filter")

    def check_columns(self, available) -> None:
        """Raise :class:`ScreenError` if the expression names a column not in ``available``."""
        missing = [n for n in self.names if n not in set(available)]
        if missing:
            raise ScreenError(
                f"filter {self.text!r} uses unknown column(s) {', '.join(missing)}; "
                f"available: {', '.join(sorted(available))}"
            )

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Evaluate on arrays (broadcasting); returns a bool array (or numbers, if the expression
        is arithmetic only)."""
        self.check_columns(columns.keys())
        with np.errstate(all="ignore"):
            return self._eval(self._tree, columns)

    def _eval(self, node: ast.AST, cols: Mapping[str, np.ndarray]):
        if isinstance(node, ast.BoolOp):
            values = [_as_bool(self._eval(v, cols)) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = values[0]
            for v in values[1:]:
                out = combine(out, v)
            return out
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, cols)
            if isinstance(node.op, ast.Not):
                return np.logical_not(_as_bool(v))
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, cols), self._eval(node.right, cols))
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, cols)
            out = None
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comp, cols)
                r = _COMPARE[type(op)](left, right)
                out = r if out is None else np.logical_and(out, r)
                left = right
            return out
        if isinstance(node, ast.Name):
            return np.asarray(cols[node.id])
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Call):
            fn = _FUNCTIONS[node.func.id]
            args = [self._eval(a, cols) for a in node.args]
            if fn in (np.minimum, np.maximum):
                out = args[0]
                for a in args[1:]:
                    out = fn(out, a)
                return out
            if len(args) != 1:
                self._fail(node, f"{node.func.id} takes one argument")
            return fn(args[0])
        raise AssertionError(type(node))  # pragma: no cover - _check rejected it

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def _as_bool(v) -> np.ndarray:
    a = np.asarray(v)
    return a if a.dtype == bool else a != 0
