"""Per-row validation of measurement tables before anything is written.

:func:`validate_rows` takes a table whose cells are as received (strings from a CSV file, or
Python/numpy values from a DataFrame), checks every row and returns the valid rows, converted
to the property's canonical unit, together with one :class:`RowError` per bad cell. It touches
no database: the store writes the result in one transaction, or nothing.

Work is done once per distinct formula and per distinct unit, then spread over the rows with
numpy, so 10^5 rows of a few hundred materials validate in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from matforge.errors import IngestError, InvalidFormula, TooManyColumns, UnitError
from matforge.store import ranges, units

#: Fields a column can be mapped to; any other target name is a condition's name.
FIELDS = ("formula", "value", "uncertainty", "unit", "structure")
REQUIRED = ("formula", "value")
#: Mapping target that drops a column.
IGNORE = "-"
#: IngestError messages list at most this many bad cells (``IngestError.rows`` has them all).
MAX_LISTED = 200
#: Most columns a measurement table may have (fields and conditions together): far more than
#: any lab table needs, few enough that a table cannot be made expensive by its width alone.
MAX_COLUMNS = 1000

_ONES = re.compile(r"(?<=[A-Za-z])1(?=[A-Z]|$)")
_INTEGER = re.compile(r"[-+]?\d+")


def check_width(n_columns: int, max_columns: int | None, *, where: str) -> None:
    """Raise :class:`TooManyColumns` when ``n_columns`` is over ``max_columns`` (None: no
    limit)."""
    if max_columns is not None and n_columns > max_columns:
        raise TooManyColumns(
            f"{where} has {n_columns:,} columns; at most {max_columns:,} are allowed (max_columns)"
        )


@dataclass(frozen=True)
class RowError:
    """One bad cell: its line (or row label), the column's name as received, and why;
    ``rule`` is the code of the physical range (:mod:`matforge.store.ranges`) it breaks."""

    line: int
    column: str
    reason: str
    rule: str | None = None


@dataclass
class MaterialRecord:
    """A material as stored: identity key, normalised and reduced formula, elements."""

    key: str
    formula: str
    reduced_formula: str
    elements: str  # "-Fe-O-": sorted symbols between dashes
    nelements: int
    structure: dict | None = None


@dataclass
class ValidRows:
    """The valid rows of a table, values in the canonical unit (numpy arrays, one per row)."""

    positions: np.ndarray  # 0-based positions in the input table
    material: np.ndarray  # index into ``materials``
    value: np.ndarray
    uncertainty: np.ndarray  # NaN where none was given
    raw_value: np.ndarray
    raw_unit: np.ndarray  # object array of unit strings as received
    conditions: list  # dict or None per row
    materials: list[MaterialRecord] = field(default_factory=list)
    formula_text: list = field(default_factory=list)  # the formula cell as given, or None
    # ';'-joined codes of the physical ranges a value breaks (stored with allow_unphysical)
    flag: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def n_flagged(self) -> int:
        """Rows stored although they break a physical range (``allow_unphysical``)."""
        return sum(f is not None for f in self.flag)


def format_errors(errors: list[RowError], *, where: str, line_word: str = "line") -> list[str]:
    """``"data.csv, line 7, column 'value': value 'abc' is not a number"`` per error."""
    return [f"{where}, {line_word} {e.line}, column '{e.column}': {e.reason}" for e in errors]


def ingest_error(
    errors: list[RowError], n_rows: int, *, where: str, line_word: str = "line"
) -> IngestError:
    """An :class:`IngestError` listing every bad row (the first MAX_LISTED in its message)."""
    lines = format_errors(errors, where=where, line_word=line_word)
    n_bad = len({e.line for e in errors})
    head = f"{n_bad} of {n_rows} rows of {where} are invalid; nothing was written:"
    shown = lines[:MAX_LISTED]
    if len(lines) > MAX_LISTED:
        shown.append(f"... and {len(lines) - MAX_LISTED} more (all in IngestError.rows)")
    broken = dict.fromkeys(e.rule for e in errors if e.rule is not None)
    if broken:
        shown.append("Physically impossible values (matforge.store.ranges, docs/store.md):")
        shown += [f"  {code}: {ranges.RANGES[code].text}" for code in broken]
        shown.append(
            "If they are right, pass allow_unphysical=True (CLI: --allow-unphysical; API: "
            '"allow_unphysical": true) to store them anyway, marked in their flag column.'
        )
    return IngestError(
        "\n".join([head, *shown]), rows=[(e.line, e.column, e.reason) for e in errors]
    )


def material_record(comp, structure: dict | None = None) -> MaterialRecord:
    """The stored form of a pymatgen ``Composition`` (and optional structure dict)."""
    formula = _ONES.sub("", comp.formula.replace(" ", ""))
    symbols = sorted({el.symbol for el in comp.elements})
    key = formula
    if structure is not None:
        digest = hashlib.sha256(json.dumps(structure, sort_keys=True).encode()).hexdigest()
        key = f"{formula}#{digest[:24]}"
    return MaterialRecord(
        key=key,
        formula=formula,
        reduced_formula=comp.reduced_formula,
        elements="-" + "-".join(symbols) + "-",
        nelements=len(symbols),
        structure=structure,
    )


def _is_blank(x) -> bool:
    if x is None:
        return True
    if isinstance(x, str):
        return not x.strip()
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):  # arrays, dicts, objects
        return False


def _all_text(col: pd.Series) -> bool:
    return col.dtype == object and pd.api.types.infer_dtype(col, skipna=False) == "string"


def _blank(col: pd.Series) -> np.ndarray:
    """True where a cell is empty: None, NaN or only whitespace."""
    if _all_text(col):
        return (col.str.strip() == "").to_numpy()
    if col.dtype.kind in "iufb":
        return col.isna().to_numpy()
    return np.fromiter((_is_blank(x) for x in col.tolist()), dtype=bool, count=len(col))


def _numbers(col: pd.Series) -> np.ndarray:
    """Float per cell, NaN where the cell is not a number."""
    if col.dtype.kind in "iuf":
        return col.to_numpy(dtype=float, na_value=np.nan)
    if col.dtype.kind == "b":
        return np.full(len(col), np.nan)
    if not _all_text(col):  # mixed Python objects: keep numbers, drop booleans and the rest
        col = col.map(lambda x: np.nan if isinstance(x, bool | np.bool_) else x)
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _number_reason(raw, what: str) -> str:
    if _is_blank(raw):
        return f"{what} is empty"
    if isinstance(raw, bool | np.bool_):
        return f"{what} {bool(raw)!r} is a boolean, not a number"
    try:
        parsed = float(str(raw).strip())
    except ValueError:
        parsed = 0.0
    if math.isfinite(parsed):  # also "1_000", which Python reads but a CSV reader must not
        return f"{what} {raw!r} is not a number"
    return f"{what} {raw!r} is not finite"


def _structure_dict(obj) -> dict:
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, str):
        return json.loads(obj)
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    raise TypeError(f"expected a pymatgen Structure, a dict or JSON text, got {type(obj).__name__}")


def _json_value(x):
    if isinstance(x, str):
        return x.strip()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, int | float | bool | dict | list):
        return x
    return str(x)


_is_str = np.frompyfunc(lambda x: isinstance(x, str), 1, 1)
_is_blank_cell = np.frompyfunc(_is_blank, 1, 1)
_json_cell = np.frompyfunc(_json_value, 1, 1)


def condition_values(table: pd.DataFrame) -> np.ndarray:
    """The cells of ``table`` (one column per condition) as JSON-ready Python values, None
    where a cell is empty: an (n_rows × n_columns) object array.

    A text column whose every non-empty cell is a number becomes numbers (so temperatures read
    from a CSV are stored as numbers, not strings); integers stay integers. The work is done on
    all columns of a kind at once (a few pandas calls for the whole table, not per column), so
    a table of a thousand condition columns costs what its cells cost, not a thousand times a
    column's fixed overhead.
    """
    n, k = table.shape
    out = np.full((n, k), None, dtype=object)
    if not n or not k:
        return out
    kinds = np.array([dt.kind for dt in table.dtypes])
    whole = np.flatnonzero(np.isin(kinds, list("iub")))  # integers and booleans: as they are
    if len(whole):
        for j in whole:  # tolist() gives Python ints/bools, which JSON stores exactly
            out[:, j] = table.iloc[:, j].tolist()
    floats = np.flatnonzero(kinds == "f")
    if len(floats):
        block = table.iloc[:, floats].to_numpy(dtype=float, na_value=np.nan)
        values = np.empty(block.shape, dtype=object)
        values[:] = block.tolist()
        values[np.isnan(block)] = None
        out[:, floats] = values
    rest = np.flatnonzero(~np.isin(kinds, list("iubf")))
    if len(rest):
        cells = table.iloc[:, rest].to_numpy(dtype=object)
        flat = pd.Series(cells.ravel(order="F"), dtype=object)  # column after column
        if pd.api.types.infer_dtype(flat, skipna=False) == "string":
            text_col = np.ones(len(rest), dtype=bool)
        else:
            text_col = _is_str(cells).astype(bool).all(axis=0)
        out[:, rest[~text_col]] = _text_or_json(cells[:, ~text_col], text=False)
        out[:, rest[text_col]] = _text_or_json(cells[:, text_col], text=True)
    return out


def _text_or_json(cells: np.ndarray, *, text: bool) -> np.ndarray:
    """Conditions of columns of only text (``text``), or of mixed Python objects."""
    n, k = cells.shape
    if not k:
        return np.empty((n, 0), dtype=object)
    if not text:  # mixed objects: kept as they are, strings stripped
        blank = _is_blank_cell(cells).astype(bool)
        values = _json_cell(cells)
        values[blank] = None
        return values
    stripped = pd.Series(cells.ravel(order="F"), dtype=object).str.strip()  # column by column
    blank_flat = (stripped == "").to_numpy()
    blank = blank_flat.reshape((n, k), order="F")
    nums = pd.to_numeric(stripped.where(~blank_flat), errors="coerce")
    nums = nums.to_numpy(dtype=float, na_value=np.nan).reshape((n, k), order="F")
    numeric_col = (~np.isnan(nums) | blank).all(axis=0) & (~blank).any(axis=0)
    values = stripped.to_numpy(dtype=object).reshape((n, k), order="F")
    if not numeric_col.any():
        values[blank] = None
        return values
    # integers stay integers: a column all of whose numbers are whole may be written as
    # integers ("300", not "300.0" or "3e2"), which only its text tells
    whole = np.where(blank, 0.0, nums)
    maybe_int = numeric_col & (np.isfinite(whole) & (whole == np.floor(whole))).all(axis=0)
    integral_col = np.zeros(k, dtype=bool)
    if maybe_int.any():
        present = ~blank[:, maybe_int]
        digits = pd.Series(values[:, maybe_int].ravel(order="F")[present.ravel(order="F")])
        written = np.ones(present.shape, dtype=bool)
        written.T[present.T] = digits.str.fullmatch(_INTEGER.pattern).to_numpy(dtype=bool)
        integral_col[maybe_int] = written.all(axis=0)
    float_col = numeric_col & ~integral_col
    if float_col.any():
        as_float = np.empty((n, int(float_col.sum())), dtype=object)
        as_float[:] = nums[:, float_col].tolist()
        values[:, float_col] = as_float
    if integral_col.any():  # from the text: exact also beyond 2**53
        values[:, integral_col] = np.frompyfunc(int, 1, 1)(
            np.where(blank[:, integral_col], "0", values[:, integral_col])
        )
    values[blank] = None
    return values


def validate_rows(
    table: pd.DataFrame,
    columns: dict[str, str],
    *,
    property: str,
    canonical_unit: str,
    default_unit: str | None,
    lines: np.ndarray,
    conditions: dict[str, str] | None = None,
    allow_unphysical: bool = False,
) -> tuple[ValidRows, list[RowError]]:
    """Check every row of ``table`` and convert the valid ones to ``canonical_unit``.

    ``columns`` maps a field (``formula``, ``value``, and optionally ``uncertainty``, ``unit``,
    ``structure``) to the column of ``table`` holding it; ``conditions`` maps a condition name
    to its column. ``lines[i]`` is the line (or row label) reported for row ``i``. A row is
    valid when its formula parses, its value is a finite number, its uncertainty (if any) a
    finite number >= 0, its unit (the row's own, else ``default_unit``) is convertible to
    ``canonical_unit``, and its value, converted, is inside the property's physical range
    (:mod:`matforge.store.ranges`). With ``allow_unphysical`` a value outside it is valid, and
    the codes of the ranges it breaks are its ``flag``.
    """
    from matforge.chem import parse_formula
    from matforge.chem.formula import amounts_problem

    n = len(table)
    bad = np.zeros(n, dtype=bool)
    errors: list[RowError] = []

    def fail(mask: np.ndarray, column: str, reason_of, rule: str | None = None) -> None:
        for i in np.flatnonzero(mask):
            errors.append(RowError(int(lines[i]), column, reason_of(i), rule))
        bad[mask] = True

    # formula (and structure): parsed once per distinct cell
    fcol = columns["formula"]
    cells = table[fcol].tolist()
    structures: list = [None] * n
    keys: list = cells
    if "structure" in columns:
        scol = columns["structure"]
        keys = list(cells)
        for i, obj in enumerate(table[scol].tolist()):
            if _is_blank(obj):
                continue
            try:
                structures[i] = _structure_dict(obj)
            except (TypeError, ValueError) as exc:
                errors.append(RowError(int(lines[i]), scol, f"bad structure: {exc}"))
                bad[i] = True
                continue
            keys[i] = (repr(cells[i]), json.dumps(structures[i], sort_keys=True))
    code_of: dict = {}
    first_row: list[int] = []
    codes = []
    for i, k in enumerate(keys):
        try:
            c = code_of.setdefault(k, len(code_of))
        except TypeError:  # an unhashable cell
            c = code_of.setdefault(repr(k), len(code_of))
        if c == len(first_row):
            first_row.append(i)
        codes.append(c)
    records: list[MaterialRecord] = []
    record_of_code = np.full(len(first_row), -1, dtype=np.int64)
    reason_of_code: dict[int, str] = {}
    for c, i in enumerate(first_row):
        cell = cells[i]
        try:
            if _is_blank(cell):
                raise InvalidFormula("formula is empty")
            comp = cell if hasattr(cell, "reduced_formula") else parse_formula(str(cell).strip())
            if len(comp.elements) == 0:
                raise InvalidFormula(f"{cell!r}: formula has no elements")
            if comp is cell:  # a Composition given as such: held to the parser's bounds
                problem = amounts_problem({str(el): float(a) for el, a in comp.items()})
                if problem:
                    raise InvalidFormula(f"Composition: {problem}")
            records.append(material_record(comp, structures[i]))
            record_of_code[c] = len(records) - 1
        except InvalidFormula as exc:
            reason_of_code[c] = str(exc)
    codes = np.asarray(codes, dtype=np.int64)
    material = record_of_code[codes] if n else np.zeros(0, dtype=np.int64)
    fail((material < 0) & ~bad, fcol, lambda i: reason_of_code[codes[i]])

    # value: a finite number
    vcol = columns["value"]
    raw_values = table[vcol]
    value = _numbers(raw_values)
    fail(~np.isfinite(value), vcol, lambda i: _number_reason(raw_values.iat[i], "value"))

    # uncertainty: optional, finite, >= 0
    uncertainty = np.full(n, np.nan)
    if "uncertainty" in columns:
        ucol = columns["uncertainty"]
        raw_unc = table[ucol]
        uncertainty = _numbers(raw_unc)
        given = ~_blank(raw_unc)
        fail(
            given & ~np.isfinite(uncertainty),
            ucol,
            lambda i: _number_reason(raw_unc.iat[i], "uncertainty"),
        )
        fail(
            given & np.isfinite(uncertainty) & (uncertainty < 0),
            ucol,
            lambda i: f"uncertainty {raw_unc.iat[i]!r} is negative",
        )
        uncertainty = np.where(given & np.isfinite(uncertainty), uncertainty, np.nan)

    # unit: the row's own, else the default; checked once per distinct unit
    if "unit" in columns:
        ucol = columns["unit"]
        blank = _blank(table[ucol])
        row_units = np.array(
            [
                default_unit if b else str(u).strip()
                for u, b in zip(table[ucol].tolist(), blank, strict=True)
            ],
            dtype=object,
        )
    else:
        ucol = "unit"
        row_units = np.full(n, default_unit, dtype=object)
    unit_reason: dict = {}
    for u in pd.unique(row_units):
        if u is None:
            unit_reason[u] = "no unit: the cell is empty and no default unit was given"
            continue
        try:
            units.check_unit(u, canonical_unit, property=property)
        except UnitError as exc:
            unit_reason[u] = str(exc)
    for u, reason in unit_reason.items():
        fail(row_units == u if u is not None else pd.isna(row_units), ucol, lambda i, r=reason: r)

    ok = ~bad
    canon_value = np.full(n, np.nan)
    canon_unc = np.full(n, np.nan)
    for u in pd.unique(row_units[ok]):
        rows = ok & (row_units == u)
        canon_value[rows] = units.to_canonical(value[rows], u, canonical_unit)
        canon_unc[rows] = units.delta_to_canonical(uncertainty[rows], u, canonical_unit)
    # A conversion can overflow (1e308 TPa in Pa); such a value is not stored.
    fail(
        ok & ~np.isfinite(canon_value),
        vcol,
        lambda i: f"value {raw_values.iat[i]!r} {row_units[i]} overflows in {canonical_unit}",
    )

    # physical range: a value no material can have is an error, or a flag if allowed
    flag = np.full(n, None, dtype=object)
    checked = np.where(bad, np.nan, canon_value)
    for rule, outside, converted in ranges.breaches(property, checked, canonical_unit):
        if allow_unphysical:
            flag[outside] = [rule.code if f is None else f"{f};{rule.code}" for f in flag[outside]]
            continue

        def reason(i, rule=rule, converted=converted) -> str:
            given = f"{value[i]:g} {row_units[i]}".rstrip()
            if row_units[i] != rule.unit:
                given += f" (= {converted[i]:g} {rule.unit})".replace(" )", ")")
            return (
                f"value {given} is physically impossible for {property}, which must be "
                f"{rule.requirement()} ({rule.code})"
            )

        fail(outside, vcol, reason, rule=rule.code)
    positions = np.flatnonzero(~bad)

    # conditions: one dict per valid row, empty cells left out
    names = list((conditions or {}).keys())
    cond_rows: list = [None] * len(positions)
    if names:
        given = condition_values(table[list(conditions.values())])[positions]
        for r, row in enumerate(given.tolist()):
            d = {k: v for k, v in zip(names, row, strict=True) if v is not None}
            cond_rows[r] = d or None

    errors.sort(key=lambda e: e.line)
    return (
        ValidRows(
            positions=positions,
            material=material[positions],
            value=canon_value[positions],
            uncertainty=canon_unc[positions],
            raw_value=value[positions],
            raw_unit=row_units[positions],
            conditions=cond_rows,
            materials=records,
            formula_text=[cells[i] if isinstance(cells[i], str) else None for i in positions],
            flag=flag[positions].tolist(),
        ),
        errors,
    )
