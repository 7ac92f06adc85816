"""Design spaces: the set from which a campaign may propose its next experiments.

Four kinds, one interface (:class:`DesignSpace`), one deserialiser
(:meth:`DesignSpace.from_dict`):

* :class:`DiscretePool` — a fixed table of candidates (a dataset, a screen's output, a CSV);
* :class:`CompositionPool` — a fixed table of candidate formulas, which a surrogate sees through
  composition descriptors (both pools share :class:`CandidateTable`);
* :class:`ParameterSpace` — process conditions: :class:`Continuous`, :class:`Integer`,
  :class:`Ordinal` (ordered levels: "low" < "medium" < "high") and :class:`Categorical`
  (unordered levels: a solvent, a catalyst type) parameters;
* :class:`FormulationSpace` — ingredient amounts that sum to a total, with per-ingredient and
  per-group bounds and at most ``k`` ingredients present, optionally with process parameters.

Every space can ``sample(n, rng)`` candidates as a DataFrame, check proposals exactly
(``contains``, with an absolute tolerance of ``TOL = 1e-9`` in the columns' own units) and explain
failures (``infeasible_reason``), encode rows numerically for a surrogate (``to_features``:
continuous and integer parameters scaled to [0, 1], log parameters on a log scale, ordinal
parameters by their rank scaled to [0, 1], categoricals one-hot, ingredient amounts as fractions
of the total), refuse a level of a categorical or ordinal column that the space does not declare
(``check_levels``) and round-trip through JSON (``as_dict`` / :meth:`DesignSpace.from_dict`).

Continuous spaces also put proposals on a grid a lab can weigh or set (``round``, see
:func:`default_step`): ingredient amounts to multiples of ``step`` (default 0.1 % of the total)
that still sum exactly to the total and meet every bound, group and ``max_components``;
continuous parameters to their ``step`` (default: 3 significant figures of their range).
``with_precision`` sets the steps; a step of 0 leaves a column unrounded.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

import numpy as np
import pandas as pd

from matforge.design.polytope import Polytope, project_box_simplex
from matforge.errors import DesignSpaceError

__all__ = [
    "TOL",
    "CandidateTable",
    "Categorical",
    "CompositionPool",
    "Continuous",
    "DesignSpace",
    "DiscretePool",
    "FormulationSpace",
    "Group",
    "Ingredient",
    "Integer",
    "Ordinal",
    "ParameterSpace",
    "composition_keys",
    "default_step",
    "parse_precision",
    "space_from_dict",
]

TOL = 1e-9
"""Absolute tolerance of every constraint check, in the constrained column's units."""

# Above this many active-ingredient subsets they are drawn at random instead of enumerated.
MAX_ENUMERATED_SUPPORTS = 20_000
# Rejection sampling is used while the expected number of Dirichlet draws stays below this.
MAX_REJECTION_DRAWS = 2_000_000
# Amounts of a formulation are rounded to this fraction of its total unless told otherwise.
AMOUNT_STEP = 1e-3
# At most this many proposals per call of ``round`` are moved to the nearest feasible grid point
# by an integer program when plain rounding breaks a group or the number of components.
MAX_GRID_PROGRAMS = 128


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _show(value) -> str:
    """repr of a cell value, without numpy's ``np.float64(...)`` wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_name(name, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise DesignSpaceError(f"{what} name must be a non-empty string, got {name!r}")
    return name


def _finite(value, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise DesignSpaceError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise DesignSpaceError(f"{what} must be finite, got {value!r}")
    return value


def _check_step(step, what: str) -> float | None:
    if step is None:
        return None
    step = _finite(step, f"{what}: step")
    if step < 0:
        raise DesignSpaceError(f"{what}: step must be ≥ 0 (0: not rounded), got {_fmt(step)}")
    return step


def _decimals(step: float) -> int:
    """Decimal places of a step as written (0.25 → 2, 5 → 0), at most 12."""
    exponent = Decimal(repr(float(step))).normalize().as_tuple().exponent
    return min(max(0, -int(exponent)), 12)


def _on_grid(k: np.ndarray, step: float) -> np.ndarray:
    """``k * step`` as the floats nearest to those decimals (0.287, not 0.28700000000000003)."""
    return np.round(np.asarray(k, dtype=float) * step, _decimals(step)) + 0.0  # no -0.0


def default_step(low: float, high: float) -> float | None:
    """The step a continuous parameter in ``[low, high]`` is rounded to without one given:
    the range to 3 significant figures (a power of ten, 100–1,000 steps across the range:
    300–900 K → 1 K, 0–1 → 0.01, 0.5–2 → 0.01). None for a fixed value."""
    span = high - low
    if span <= 0:
        return None
    return float(10.0 ** (math.floor(math.log10(span)) - 2))


def _round_to_step(x: np.ndarray, step: float, low: float, high: float) -> np.ndarray:
    """Values in [low, high] to the nearest multiple of ``step`` inside [low, high]."""
    k = np.round(x / step)
    k = np.where(k * step < low - TOL, np.ceil(low / step - 1e-9), k)
    k = np.where(k * step > high + TOL, np.floor(high / step + 1e-9), k)
    return _on_grid(k, step)


def _round_significant(x: np.ndarray, digits: int, low: float, high: float) -> np.ndarray:
    """Positive values to ``digits`` significant figures, kept inside [low, high] (a value whose
    rounding would leave the range is left as it is)."""
    out = x.astype(float).copy()
    ok = np.isfinite(x) & (x > 0)
    e = np.floor(np.log10(x[ok])) - (digits - 1)
    k = np.round(x[ok] / 10.0**e)
    k = np.where(k * 10.0**e < low - TOL, k + 1, k)
    k = np.where(k * 10.0**e > high + TOL, k - 1, k)
    # Dividing by an exact power of ten gives the float nearest to the decimal.
    v = np.where(e < 0, k / 10.0 ** np.maximum(-e, 0), k * 10.0 ** np.maximum(e, 0))
    inside = (v >= low - TOL) & (v <= high + TOL)
    out[np.flatnonzero(ok)[inside]] = v[inside]
    return out


def parse_precision(items: Sequence[str]) -> dict[str, float]:
    """``--precision`` texts as a :meth:`ParameterSpace.with_precision` mapping: ``"0.001"``
    (every rounded column: ingredient amounts and continuous parameters) is stored under
    ``"*"``, ``"NAME=STEP"`` under NAME (a continuous parameter, or ``amounts``)."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).rpartition("=")
        key = name.strip() if sep else "*"
        if sep and not key:
            raise DesignSpaceError(f"precision {item!r}: expected STEP or NAME=STEP")
        try:
            step = float(value)
        except ValueError:
            raise DesignSpaceError(
                f"precision {item!r}: {value.strip()!r} is not a number; expected STEP or "
                f"NAME=STEP (e.g. 0.001, temperature=5)"
            ) from None
        if key in out:
            raise DesignSpaceError(f"precision given twice for {'every column' if key == '*' else key!r}")
        out[key] = _check_step(step, f"precision {item!r}")
    return out


def _steps(precision, names: Sequence[str], space: str) -> dict[str, float]:
    """Step per column from a number (every column) or a mapping (names, ``"*"``: the rest)."""
    if precision is None:
        return {}
    if not isinstance(precision, Mapping):
        step = _check_step(precision, f"{space}: precision")
        return dict.fromkeys(names, step)
    unknown = [k for k in precision if k != "*" and k not in names]
    if unknown:
        raise DesignSpaceError(
            f"{space}: precision for {unknown}, which are not rounded columns of the space; "
            f"those are {list(names)}"
        )
    out = {}
    for name in names:
        if name in precision or "*" in precision:
            value = precision[name] if name in precision else precision["*"]
            out[name] = _check_step(value, f"{space}: precision of {name!r}")
    return out


def _require_columns(df: pd.DataFrame, columns: Iterable[str], space: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise DesignSpaceError(f"{space}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DesignSpaceError(f"{space}: missing column(s) {missing}; have {list(df.columns)}")


def _row_frame(row) -> pd.DataFrame:
    """One row (Series, mapping or one-row DataFrame) as a one-row DataFrame."""
    if isinstance(row, pd.DataFrame):
        return row.iloc[:1]
    if isinstance(row, pd.Series):
        return row.to_frame().T
    if isinstance(row, Mapping):
        return pd.DataFrame([dict(row)])
    raise DesignSpaceError(f"expected a row (Series or mapping), got {type(row).__name__}")


def _json_value(v):
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, int | float):
        return v
    return str(v)


# -----------------------------------------------------------------------------------------------
# The common interface
# -----------------------------------------------------------------------------------------------


class DesignSpace:
    """Interface shared by every design space (see the module docstring)."""

    @property
    def columns(self) -> list[str]:
        """Columns of the DataFrames this space samples and checks."""
        raise NotImplementedError

    @property
    def feature_names(self) -> list[str]:
        """Names of the columns of :meth:`to_features`."""
        raise NotImplementedError

    def sample(self, n: int, rng=None) -> pd.DataFrame:
        """``n`` candidates drawn uniformly from the space."""
        raise NotImplementedError

    def contains(self, df: pd.DataFrame) -> np.ndarray:
        """Boolean mask: which rows satisfy every constraint (within :data:`TOL`)."""
        raise NotImplementedError

    def infeasible_reason(self, row) -> str | None:
        """Why a row is outside the space (every violated constraint), or None if it is inside."""
        raise NotImplementedError

    def to_features(self, df: pd.DataFrame) -> np.ndarray:
        """Numeric (n × len(feature_names)) encoding of rows, for a surrogate model."""
        raise NotImplementedError

    def as_dict(self) -> dict:
        """JSON-serialisable description; :meth:`from_dict` rebuilds an equal space."""
        raise NotImplementedError

    @classmethod
    def _from_dict(cls, d: dict) -> DesignSpace:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: dict) -> DesignSpace:
        """Rebuild a space from :meth:`as_dict` output (dispatches on its ``"@class"`` key)."""
        name = d.get("@class") if isinstance(d, Mapping) else None
        target = _SPACES.get(name)
        if target is None:
            raise DesignSpaceError(f"not a serialised design space: '@class' is {name!r}")
        if not issubclass(target, cls):
            raise DesignSpaceError(f"{cls.__name__}.from_dict got a serialised {name}")
        return target._from_dict(d)

    def round(self, df: pd.DataFrame) -> pd.DataFrame:
        """Proposals on the space's grid (see the module docstring); a pool's candidates are
        returned as they are."""
        return df

    @property
    def precision(self) -> dict[str, str]:
        """What each rounded column is rounded to, for people (``{"T": "1"}``); empty for a
        pool."""
        return {}

    def with_precision(self, precision) -> DesignSpace:
        """A copy rounding to other steps; pools have no grid, so any precision is refused."""
        if precision is None or (isinstance(precision, Mapping) and not precision):
            return self
        raise DesignSpaceError(
            f"{type(self).__name__}: candidates are proposed as they are in the table; a "
            f"precision applies to continuous parameters and ingredient amounts"
        )

    def check_levels(self, df: pd.DataFrame, source: str = "rows") -> None:
        """Raise :class:`DesignSpaceError` if a categorical or ordinal column of ``df`` holds a
        level the space does not declare (naming the column, the row — 1-based, in ``df``'s
        order — the value and the declared levels). Blank cells and absent columns are left
        to the caller; spaces without such columns accept everything."""

    def validate(self, df: pd.DataFrame, source: str = "proposals") -> None:
        """Raise :class:`DesignSpaceError` naming the first infeasible rows and why."""
        ok = self.contains(df)
        if ok.all():
            return
        bad = np.flatnonzero(~ok)
        lines = [f"row {df.index[i]!r}: {self.infeasible_reason(df.iloc[i])}" for i in bad[:5]]
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise DesignSpaceError(
            f"{len(bad)} of {len(df)} {source} are outside the design space{more}:\n  "
            + "\n  ".join(lines)
        )


def space_from_dict(d: dict) -> DesignSpace:
    """Rebuild any design space from its :meth:`DesignSpace.as_dict` output."""
    return DesignSpace.from_dict(d)


# -----------------------------------------------------------------------------------------------
# Parameters
# -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Continuous:
    """A real parameter in ``[low, high]`` (``log=True``: sampled and encoded on a log scale).

    ``step``: proposals are rounded to multiples of it (in the parameter's unit) inside
    ``[low, high]``; None: :func:`default_step` of the range, or 3 significant figures for a
    log-scale parameter; 0: not rounded.
    """

    name: str
    low: float
    high: float
    log: bool = False
    unit: str | None = None
    step: float | None = None
    kind: ClassVar[str] = "continuous"

    def __post_init__(self):
        _check_name(self.name, "parameter")
        low = _finite(self.low, f"parameter {self.name!r}: low")
        high = _finite(self.high, f"parameter {self.name!r}: high")
        if low > high:
            raise DesignSpaceError(f"parameter {self.name!r}: low {_fmt(low)} > high {_fmt(high)}")
        if self.log and low <= 0:
            raise DesignSpaceError(
                f"parameter {self.name!r}: a log-scale range needs low > 0, got {_fmt(low)}"
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "log", bool(self.log))
        step = _check_step(self.step, f"parameter {self.name!r}")
        object.__setattr__(self, "step", step)
        if step and math.ceil(low / step - 1e-9) > math.floor(high / step + 1e-9):
            raise DesignSpaceError(
                f"parameter {self.name!r}: no multiple of the step {_fmt(step)} lies in "
                f"[{_fmt(low)}, {_fmt(high)}]; use a finer step"
            )

    @property
    def resolution(self) -> float | None:
        """The step proposals are rounded to (None: not rounded, or, for a log-scale
        parameter without a step, 3 significant figures)."""
        if self.step is not None:
            return self.step or None
        return None if self.log else default_step(self.low, self.high)

    @property
    def precision(self) -> str:
        """What proposals are rounded to, for people."""
        if self.step == 0 or (self.step is None and not self.log and self.low == self.high):
            return "not rounded"
        if self.resolution is None:
            return "3 significant figures"
        return _fmt(self.resolution) + (f" {self.unit}" if self.unit else "")

    def round(self, values: pd.Series) -> np.ndarray:
        """Values (inside the range) on the parameter's grid, still inside the range."""
        x = values.to_numpy(dtype=float)
        if self.resolution is not None:
            return _round_to_step(x, self.resolution, self.low, self.high)
        if self.log and self.step is None:
            return _round_significant(x, 3, self.low, self.high)
        return x

    @property
    def feature_names(self) -> list[str]:
        return [self.name]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.log:
            x = np.exp(rng.uniform(np.log(self.low), np.log(self.high), n))
        else:
            x = rng.uniform(self.low, self.high, n)
        return np.clip(x, self.low, self.high)

    def valid(self, values: pd.Series) -> np.ndarray:
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            return (x >= self.low - TOL) & (x <= self.high + TOL)

    def reason(self, value) -> str | None:
        if not self.valid(pd.Series([value]))[0]:
            return f"{self.name} = {_show(value)} is outside [{_fmt(self.low)}, {_fmt(self.high)}]"
        return None

    def _unit(self, x: np.ndarray) -> np.ndarray:
        if self.high == self.low:
            return np.zeros_like(x)
        if self.log:
            return (np.log(x) - np.log(self.low)) / (np.log(self.high) - np.log(self.low))
        return (x - self.low) / (self.high - self.low)

    def encode(self, values: pd.Series) -> np.ndarray:
        return self._unit(values.to_numpy(dtype=float))[:, None]

    def decode(self, F: np.ndarray) -> np.ndarray:
        u = np.clip(F[:, 0], 0.0, 1.0)
        if self.log:
            x = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        return np.clip(x, self.low, self.high)

    def clip(self, values: pd.Series) -> np.ndarray:
        return np.clip(values.to_numpy(dtype=float), self.low, self.high)

    def as_dict(self) -> dict:
        d = {"type": self.kind, "name": self.name, "low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.unit:
            d["unit"] = self.unit
        if self.step is not None:
            d["step"] = self.step
        return d

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        log = " (log)" if self.log else ""
        step = f" step {_fmt(self.step)}" if self.step is not None else ""
        return f"{self.name} ∈ [{_fmt(self.low)}, {_fmt(self.high)}]{unit}{log}{step}"


@dataclass(frozen=True)
class Integer:
    """An integer parameter in ``[low, high]`` (both included)."""

    name: str
    low: int
    high: int
    unit: str | None = None
    kind: ClassVar[str] = "integer"

    def __post_init__(self):
        _check_name(self.name, "parameter")
        bounds = []
        for label, v in (("low", self.low), ("high", self.high)):
            v = _finite(v, f"parameter {self.name!r}: {label}")
            if v != int(v):
                raise DesignSpaceError(f"parameter {self.name!r}: {label} must be an integer, got {v}")
            bounds.append(int(v))
        if bounds[0] > bounds[1]:
            raise DesignSpaceError(f"parameter {self.name!r}: low {bounds[0]} > high {bounds[1]}")
        object.__setattr__(self, "low", bounds[0])
        object.__setattr__(self, "high", bounds[1])

    @property
    def feature_names(self) -> list[str]:
        return [self.name]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(self.low, self.high, size=n, endpoint=True).astype(np.int64)

    def valid(self, values: pd.Series) -> np.ndarray:
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            return ((x >= self.low - TOL) & (x <= self.high + TOL)
                    & (np.abs(x - np.round(x)) <= TOL))

    def reason(self, value) -> str | None:
        if not self.valid(pd.Series([value]))[0]:
            return f"{self.name} = {_show(value)} is not an integer in [{self.low}, {self.high}]"
        return None

    def encode(self, values: pd.Series) -> np.ndarray:
        x = values.to_numpy(dtype=float)
        span = self.high - self.low
        return ((x - self.low) / span if span else np.zeros_like(x))[:, None]

    def decode(self, F: np.ndarray) -> np.ndarray:
        u = np.clip(F[:, 0], 0.0, 1.0)
        return np.round(self.low + u * (self.high - self.low)).astype(np.int64)

    def clip(self, values: pd.Series) -> np.ndarray:
        return np.clip(np.round(values.to_numpy(dtype=float)), self.low, self.high).astype(np.int64)

    round = clip

    def as_dict(self) -> dict:
        d = {"type": self.kind, "name": self.name, "low": self.low, "high": self.high}
        if self.unit:
            d["unit"] = self.unit
        return d

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} ∈ {{{self.low}, …, {self.high}}}{unit}"


@dataclass(frozen=True)
class Categorical:
    """A parameter taking one of ``choices`` (strings or numbers), one-hot encoded."""

    name: str
    choices: tuple
    kind: ClassVar[str] = "categorical"

    def __post_init__(self):
        _check_name(self.name, "parameter")
        if isinstance(self.choices, str) or not isinstance(self.choices, Iterable):
            raise DesignSpaceError(
                f"parameter {self.name!r}: choices must be a list, got {self.choices!r}"
            )
        choices = tuple(_json_value(c) for c in self.choices)
        if not choices:
            raise DesignSpaceError(f"parameter {self.name!r}: no choices")
        if any(c is None for c in choices):
            raise DesignSpaceError(f"parameter {self.name!r}: choices may not be missing/NaN")
        if len(set(choices)) != len(choices):
            raise DesignSpaceError(f"parameter {self.name!r}: duplicate choices in {list(choices)}")
        object.__setattr__(self, "choices", choices)

    @property
    def feature_names(self) -> list[str]:
        return [f"{self.name}={c}" for c in self.choices]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.array(self.choices, dtype=object)[rng.integers(0, len(self.choices), n)]

    def _codes(self, values: pd.Series) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.choices)}
        return np.array([lookup.get(_json_value(v), -1) if not isinstance(v, float) or v == v
                         else -1 for v in values], dtype=int)

    def valid(self, values: pd.Series) -> np.ndarray:
        return self._codes(values) >= 0

    def reason(self, value) -> str | None:
        if not self.valid(pd.Series([value], dtype=object))[0]:
            return f"{self.name} = {_show(value)} is not one of {list(self.choices)}"
        return None

    def encode(self, values: pd.Series) -> np.ndarray:
        codes = self._codes(values)
        out = np.zeros((len(codes), len(self.choices)))
        ok = codes >= 0
        out[np.flatnonzero(ok), codes[ok]] = 1.0
        return out

    def decode(self, F: np.ndarray) -> np.ndarray:
        return np.array(self.choices, dtype=object)[np.argmax(F, axis=1)]

    def clip(self, values: pd.Series) -> np.ndarray:
        codes = self._codes(values)
        if (codes < 0).any():
            bad = values.iloc[int(np.flatnonzero(codes < 0)[0])]
            raise DesignSpaceError(
                f"cannot repair {self.name} = {_show(bad)}: not one of {list(self.choices)}"
            )
        return np.array(self.choices, dtype=object)[codes]

    def round(self, values: pd.Series) -> np.ndarray:
        return values.to_numpy()

    def as_dict(self) -> dict:
        return {"type": self.kind, "name": self.name, "choices": list(self.choices)}

    def __str__(self) -> str:
        return f"{self.name} ∈ {{{', '.join(repr(c) for c in self.choices)}}}"


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _checked_levels(name: str, levels, what: str) -> tuple:
    """Levels as JSON-able values: a non-empty list without blanks, duplicates, or a mix of
    numbers and text (``"1"`` and ``1`` would be different levels that print the same)."""
    if isinstance(levels, str) or not isinstance(levels, Iterable):
        raise DesignSpaceError(f"{what} {name!r}: levels must be a list, got {levels!r}")
    levels = tuple(_json_value(v) for v in levels)
    if not levels:
        raise DesignSpaceError(f"{what} {name!r}: no levels")
    if any(_blank(v) for v in levels):
        raise DesignSpaceError(f"{what} {name!r}: a level may not be missing/NaN")
    if len(set(levels)) != len(levels):
        dupes = sorted({str(v) for v in levels if levels.count(v) > 1})
        raise DesignSpaceError(f"{what} {name!r}: duplicate level(s) {dupes} in {list(levels)}")
    kinds = {_is_number(v) for v in levels}
    if len(kinds) > 1:
        raise DesignSpaceError(
            f"{what} {name!r}: levels {list(levels)} mix numbers and text; write them all as "
            f"one or the other"
        )
    return levels


def check_column_levels(column: str, values, levels: Sequence, source: str,
                        declared: str = "declared levels") -> None:
    """Raise :class:`DesignSpaceError` at the first non-blank value of ``values`` that is not
    one of ``levels``, naming ``source``, the column, the (1-based) row and the levels."""
    lookup = set(levels)
    for i, v in enumerate(values):
        if _blank(v):
            continue
        if _json_value(v) not in lookup:
            raise DesignSpaceError(
                f"{source}: column {column!r}, row {i + 1}: {_show(v)} is not one of the "
                f"{declared} {list(levels)}"
            )


@dataclass(frozen=True)
class Ordinal:
    """A parameter taking one of ordered ``levels``, listed lowest first: words (``("low",
    "medium", "high")``) or numbers (passes ``(1, 2, 4, 8)``, increasing).

    The surrogate sees the level's rank scaled to [0, 1] (one column: "medium" lies between
    "low" and "high", which a one-hot :class:`Categorical` cannot say); proposals are always
    one of the levels.
    """

    name: str
    levels: tuple
    unit: str | None = None
    kind: ClassVar[str] = "ordinal"

    def __post_init__(self):
        _check_name(self.name, "parameter")
        levels = _checked_levels(self.name, self.levels, "ordinal parameter")
        if _is_number(levels[0]):
            for a, b in itertools.pairwise(levels):
                if not b > a:
                    raise DesignSpaceError(
                        f"ordinal parameter {self.name!r}: numeric levels are listed lowest "
                        f"first; {_fmt(b)} follows {_fmt(a)} in {list(levels)}"
                    )
        object.__setattr__(self, "levels", levels)

    @property
    def numeric(self) -> bool:
        """Whether the levels are numbers (then values are matched and repaired as numbers)."""
        return _is_number(self.levels[0])

    @property
    def feature_names(self) -> list[str]:
        return [self.name]

    def _array(self) -> np.ndarray:
        return np.array(self.levels) if self.numeric else np.array(self.levels, dtype=object)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._array()[rng.integers(0, len(self.levels), n)]

    def _codes(self, values: pd.Series) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.levels)}
        return np.array([-1 if _blank(v) else lookup.get(_json_value(v), -1) for v in values],
                        dtype=int)

    def valid(self, values: pd.Series) -> np.ndarray:
        return self._codes(values) >= 0

    def reason(self, value) -> str | None:
        if not self.valid(pd.Series([value], dtype=object))[0]:
            return f"{self.name} = {_show(value)} is not one of the levels {list(self.levels)}"
        return None

    def encode(self, values: pd.Series) -> np.ndarray:
        codes = self._codes(values)
        if (codes < 0).any():
            bad = values.iloc[int(np.flatnonzero(codes < 0)[0])]
            raise DesignSpaceError(
                f"{self.name} = {_show(bad)} is not one of the levels {list(self.levels)}"
            )
        span = len(self.levels) - 1
        return (codes / span if span else np.zeros(len(codes)))[:, None].astype(float)

    def decode(self, F: np.ndarray) -> np.ndarray:
        u = np.clip(F[:, 0], 0.0, 1.0)
        return self._array()[np.round(u * (len(self.levels) - 1)).astype(int)]

    def clip(self, values: pd.Series) -> np.ndarray:
        """Levels as they are; numbers between levels to the nearest level."""
        codes = self._codes(values)
        if (codes >= 0).all():
            return self._array()[codes]
        if self.numeric:
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            if np.isfinite(x).all():
                levels = np.asarray(self.levels, dtype=float)
                return self._array()[np.argmin(np.abs(x[:, None] - levels[None, :]), axis=1)]
        bad = values.iloc[int(np.flatnonzero(codes < 0)[0])]
        raise DesignSpaceError(
            f"cannot repair {self.name} = {_show(bad)}: not one of {list(self.levels)}"
        )

    def round(self, values: pd.Series) -> np.ndarray:
        return values.to_numpy()

    def as_dict(self) -> dict:
        d = {"type": self.kind, "name": self.name, "levels": list(self.levels)}
        if self.unit:
            d["unit"] = self.unit
        return d

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} ∈ {{{' < '.join(repr(c) for c in self.levels)}}}{unit}"


Parameter = Continuous | Integer | Ordinal | Categorical
_PARAMETERS = {"continuous": Continuous, "integer": Integer, "ordinal": Ordinal,
               "categorical": Categorical}


def _parameter_from_dict(d: Mapping) -> Parameter:
    d = dict(d)
    cls = _PARAMETERS.get(d.pop("type", None))
    if cls is None:
        raise DesignSpaceError(f"unknown parameter type in {d!r}")
    if cls is Categorical:
        d["choices"] = tuple(d["choices"])
    if cls is Ordinal:
        d["levels"] = tuple(d["levels"])
    return cls(**d)


class ParameterSpace(DesignSpace):
    """A box of process conditions: continuous, integer and categorical parameters.

    >>> ParameterSpace([Continuous("T", 300, 900, unit="K"), Categorical("gas", ["air", "N2"])])
    ParameterSpace(T ∈ [300, 900] K, gas ∈ {'air', 'N2'})
    """

    def __init__(self, parameters: Sequence[Parameter]):
        params = tuple(_parameter_from_dict(p) if isinstance(p, Mapping) else p
                       for p in parameters)
        for p in params:
            if not isinstance(p, Continuous | Integer | Ordinal | Categorical):
                raise DesignSpaceError(f"not a parameter: {p!r}")
        names = [p.name for p in params]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DesignSpaceError(f"duplicate parameter names: {dupes}")
        self.parameters = params

    def __len__(self) -> int:
        return len(self.parameters)

    def __iter__(self):
        return iter(self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def __eq__(self, other) -> bool:
        return isinstance(other, ParameterSpace) and self.parameters == other.parameters

    __hash__ = None

    def __repr__(self) -> str:
        return f"ParameterSpace({', '.join(str(p) for p in self.parameters)})"

    @property
    def columns(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def feature_names(self) -> list[str]:
        return [f for p in self.parameters for f in p.feature_names]

    def sample(self, n: int, rng=None) -> pd.DataFrame:
        """``n`` independent uniform draws (log-uniform for ``log=True`` parameters)."""
        rng = _rng(rng)
        return pd.DataFrame({p.name: p.sample(int(n), rng) for p in self.parameters},
                            columns=self.columns)

    def contains(self, df: pd.DataFrame) -> np.ndarray:
        _require_columns(df, self.columns, "ParameterSpace")
        ok = np.ones(len(df), dtype=bool)
        for p in self.parameters:
            ok &= p.valid(df[p.name])
        return ok

    def infeasible_reason(self, row) -> str | None:
        frame = _row_frame(row)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            return f"missing parameter(s) {missing}"
        reasons = [r for p in self.parameters if (r := p.reason(frame[p.name].iloc[0]))]
        return "; ".join(reasons) or None

    def check_levels(self, df: pd.DataFrame, source: str = "rows") -> None:
        for p in self.parameters:
            if p.kind in ("categorical", "ordinal") and p.name in df.columns:
                levels = p.choices if p.kind == "categorical" else p.levels
                check_column_levels(p.name, df[p.name], levels, source,
                                    f"declared levels of the {p.kind} parameter")

    def to_features(self, df: pd.DataFrame) -> np.ndarray:
        """Continuous/integer parameters scaled to [0, 1] (log scale if ``log``), ordinal ones
        by rank scaled to [0, 1], categoricals one-hot."""
        _require_columns(df, self.columns, "ParameterSpace")
        if not self.parameters:
            return np.zeros((len(df), 0))
        return np.hstack([p.encode(df[p.name]) for p in self.parameters])

    def from_features(self, F: np.ndarray) -> pd.DataFrame:
        """Decode features (e.g. an optimiser's output) into parameter values: unit values are
        clipped to [0, 1] and scaled back, integers rounded, categoricals by arg-max."""
        F = np.asarray(F, dtype=float).reshape(-1, len(self.feature_names))
        out, j = {}, 0
        for p in self.parameters:
            w = len(p.feature_names)
            out[p.name] = p.decode(F[:, j:j + w])
            j += w
        return pd.DataFrame(out, columns=self.columns)

    def project(self, df: pd.DataFrame) -> pd.DataFrame:
        """Clip numbers to their bounds and round integers; invalid categories raise."""
        _require_columns(df, self.columns, "ParameterSpace")
        out = df.copy()
        for p in self.parameters:
            values = df[p.name]
            numeric = p.kind in ("continuous", "integer") or (p.kind == "ordinal" and p.numeric)
            if numeric and pd.to_numeric(values, errors="coerce").isna().any():
                bad = df.index[pd.to_numeric(values, errors="coerce").isna()][0]
                raise DesignSpaceError(f"cannot repair row {bad!r}: {p.name} is not a number")
            out[p.name] = p.clip(values)
        return out

    repair = project

    def round(self, df: pd.DataFrame) -> pd.DataFrame:
        """Proposals (inside the space) with each continuous parameter on its grid (see
        :class:`Continuous`) and integers rounded; other columns as they are."""
        _require_columns(df, self.columns, "ParameterSpace")
        out = df.copy()
        for p in self.parameters:
            out[p.name] = p.round(df[p.name])
        return out

    @property
    def precision(self) -> dict[str, str]:
        return {p.name: p.precision for p in self.parameters if p.kind == "continuous"}

    def with_precision(self, precision) -> ParameterSpace:
        """A copy whose continuous parameters round to other steps: ``precision`` is one step
        for all of them or a mapping ``{name: step}`` (``"*"``: every parameter not named);
        0 leaves a parameter unrounded. See :func:`parse_precision`."""
        names = [p.name for p in self.parameters if p.kind == "continuous"]
        steps = _steps(precision, names, "ParameterSpace")
        return ParameterSpace([dataclasses.replace(p, step=steps[p.name]) if p.name in steps
                               else p for p in self.parameters])

    def as_dict(self) -> dict:
        return {"@class": "ParameterSpace", "parameters": [p.as_dict() for p in self.parameters]}

    @classmethod
    def _from_dict(cls, d: dict) -> ParameterSpace:
        return cls([_parameter_from_dict(p) for p in d["parameters"]])


# -----------------------------------------------------------------------------------------------
# A fixed pool of candidates
# -----------------------------------------------------------------------------------------------


def _declared(spec, what: str) -> dict[str, list | None]:
    """``categorical=`` / ``ordinal=`` of a pool as ``{column: levels or None}``."""
    if spec is None:
        return {}
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, Mapping):
        return {str(k): (None if v is None else list(v)) for k, v in spec.items()}
    if not isinstance(spec, Iterable):
        raise DesignSpaceError(f"DiscretePool: {what} must be column names or a mapping")
    return dict.fromkeys((str(c) for c in spec), None)


def _stored_value(v):
    """A table cell as JSON (numbers, text, None; non-finite numbers become None, which
    PostgreSQL's JSON needs, and timestamps ISO text)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)


class CandidateTable(DesignSpace):
    """What every fixed table of candidates shares (:class:`DiscretePool`,
    :class:`CompositionPool`): rows with unique ids, matched to given rows by id or by what the
    candidates are (``_match``, per subclass), drawn and excluded by position, and serialised as
    their columns, dtypes and values."""

    df: pd.DataFrame
    id_column: str | None
    _ids: pd.Index

    def __len__(self) -> int:
        return len(self.df)

    @property
    def ids(self) -> pd.Index:
        """Candidate ids, in pool order."""
        return self._ids

    @property
    def columns(self) -> list[str]:
        return list(self.df.columns)

    def _match(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (row of df, pool position) that refer to the same candidate."""
        raise NotImplementedError

    def _match_ids(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`_match` by id, when ``df`` carries the id column (else None)."""
        if self.id_column is None or self.id_column not in df.columns:
            return None
        pos = self._ids.get_indexer(pd.Index(df[self.id_column]))
        rows = np.flatnonzero(pos >= 0)
        return rows, pos[rows]

    def positions(self, items) -> np.ndarray:
        """Pool positions of candidates given as ids (list-like) or rows (DataFrame)."""
        if isinstance(items, pd.DataFrame):
            return np.unique(self._match(items)[1])
        ids = pd.Index(list(items) if not isinstance(items, pd.Index) else items)
        pos = self._ids.get_indexer(ids)
        if (pos < 0).any():
            unknown = list(ids[pos < 0][:5])
            raise DesignSpaceError(f"{type(self).__name__}: unknown candidate id(s) {unknown}")
        return pos

    def available(self, exclude=None) -> np.ndarray:
        """Boolean mask over the pool: candidates not in ``exclude`` (ids or rows, e.g. the
        already-observed and pending experiments)."""
        mask = np.ones(len(self), dtype=bool)
        if exclude is not None and len(exclude):
            mask[self.positions(exclude)] = False
        return mask

    def candidates(self, exclude=None) -> pd.DataFrame:
        """The candidate rows, without those in ``exclude`` (ids or rows)."""
        return self.df[self.available(exclude)]

    def sample(self, n: int, rng=None, exclude=None) -> pd.DataFrame:
        """``n`` distinct candidates drawn uniformly at random (without those in ``exclude``)."""
        pos = np.flatnonzero(self.available(exclude))
        if n > len(pos):
            raise DesignSpaceError(
                f"{type(self).__name__}: asked for {n} candidates, {len(pos)} available"
            )
        return self.df.iloc[np.sort(_rng(rng).choice(pos, size=int(n), replace=False))]

    def contains(self, df: pd.DataFrame) -> np.ndarray:
        """Which rows of ``df`` are pool candidates (by id, or by what they are)."""
        ok = np.zeros(len(df), dtype=bool)
        ok[self._match(df)[0]] = True
        return ok

    def _table_dict(self, value=_json_value) -> dict:
        """The candidate table as JSON: ``columns``, ``dtypes`` and ``data`` (by column)."""
        return {
            "columns": [str(c) for c in self.df.columns],
            "dtypes": [str(t) for t in self.df.dtypes],
            "data": {str(c): [value(v) for v in self.df[c].tolist()] for c in self.df.columns},
        }

    @staticmethod
    def _table_from_dict(d: dict) -> pd.DataFrame:
        """The candidate table of :meth:`_table_dict`, with its dtypes where they apply."""
        df = pd.DataFrame({c: d["data"][c] for c in d["columns"]}, columns=d["columns"])
        for c, t in zip(d["columns"], d["dtypes"], strict=True):
            try:
                df[c] = df[c].astype(t)
            except (TypeError, ValueError):
                pass
        return df


class DiscretePool(CandidateTable):
    """A fixed table of candidates: a dataset, a screen's output, a CSV of possible experiments.

    Parameters
    ----------
    df : DataFrame
        One row per candidate.
    id_column : str, optional
        Column of unique candidate ids; without it the DataFrame's (unique) index is the id.
    feature_columns : list of str, optional
        Columns the surrogate sees. Numeric and boolean columns are used as they are, other
        columns are one-hot encoded with the pool's levels. Default: every numeric column
        except ``id_column``, and the columns named in ``categorical`` and ``ordinal``.
    categorical : list of str, or mapping of column to levels, optional
        Columns one-hot encoded even if they hold numbers (a catalyst code), and, with a
        mapping, every level such a column may take (the pool's own levels must be among them;
        a level the pool lacks lets past results with it be recorded).
    ordinal : mapping of column to levels, lowest first, optional
        Columns whose levels are ordered ("low" < "medium" < "high"; numbers may be given as
        a list of column names instead, ordered by value): encoded by rank, scaled to [0, 1].

    Text and declared columns refuse a level they do not have in :meth:`check_levels`
    (results, past experiments).

    Rows given to :meth:`contains`, :meth:`positions` or ``exclude=`` are matched by id when
    they carry ``id_column``, otherwise by their feature values (numbers rounded to 9 decimals),
    so that every pool row with those features matches.
    """

    def __init__(self, df: pd.DataFrame, id_column: str | None = None,
                 feature_columns: Sequence[str] | None = None,
                 categorical: Sequence[str] | Mapping[str, Sequence] | None = None,
                 ordinal: Sequence[str] | Mapping[str, Sequence] | None = None):
        if not isinstance(df, pd.DataFrame):
            raise DesignSpaceError(f"DiscretePool needs a DataFrame, got {type(df).__name__}")
        if len(df) == 0:
            raise DesignSpaceError("DiscretePool: the candidate table is empty")
        declared_cat = _declared(categorical, "categorical")
        declared_ord = _declared(ordinal, "ordinal")
        both = sorted(set(declared_cat) & set(declared_ord))
        if both:
            raise DesignSpaceError(f"DiscretePool: {both} declared both categorical and ordinal")
        _require_columns(df, [*declared_cat, *declared_ord], "DiscretePool")
        if id_column is not None:
            _require_columns(df, [id_column], "DiscretePool")
            ids = pd.Index(df[id_column])
            if ids.hasnans:
                raise DesignSpaceError(f"DiscretePool: missing ids in column {id_column!r}")
        else:
            ids = df.index
        if not ids.is_unique:
            dupes = list(ids[ids.duplicated()].unique()[:5])
            where = f"column {id_column!r}" if id_column else "the index"
            raise DesignSpaceError(f"DiscretePool: duplicate candidate ids in {where}: {dupes}")
        if feature_columns is None:
            feature_columns = [c for c in df.columns if c != id_column
                               and (pd.api.types.is_numeric_dtype(df[c])
                                    or pd.api.types.is_bool_dtype(df[c])
                                    or c in declared_cat or c in declared_ord)]
            if not feature_columns:
                raise DesignSpaceError(
                    "DiscretePool: no numeric column to use as features; pass feature_columns"
                )
        feature_columns = list(feature_columns)
        _require_columns(df, feature_columns, "DiscretePool")
        if id_column in feature_columns:
            raise DesignSpaceError(f"DiscretePool: the id column {id_column!r} is not a feature")
        undeclared = [c for c in [*declared_cat, *declared_ord] if c not in feature_columns]
        if undeclared:
            raise DesignSpaceError(
                f"DiscretePool: {undeclared} are declared categorical/ordinal but are not "
                f"feature columns {feature_columns}"
            )
        self.df = df.copy()
        self.id_column = id_column
        self.feature_columns = feature_columns
        self._ids = ids
        self._levels: dict[str, list] = {}  # one-hot columns and their levels
        self._ordinal: dict[str, list] = {}  # ordinal columns and their levels, lowest first
        self._declared = {"categorical": {}, "ordinal": {}}  # as given (for as_dict)
        for c in feature_columns:
            col = df[c]
            if c in declared_cat or c in declared_ord or not (
                    pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                bad = col.isna().to_numpy()
            else:
                bad = ~np.isfinite(col.to_numpy(dtype=float))
            if bad.any():
                raise DesignSpaceError(
                    f"DiscretePool: feature {c!r} is missing or not finite for candidate(s) "
                    f"{list(ids[bad][:5])}"
                )
            present = [_json_value(v) for v in col.unique().tolist()]
            if c in declared_ord:
                levels = declared_ord[c]
                if levels is None:
                    if not pd.api.types.is_numeric_dtype(col):
                        raise DesignSpaceError(
                            f"DiscretePool: the ordinal column {c!r} holds text; give its "
                            f"levels lowest first (ordinal={{{c!r}: [...]}})"
                        )
                    levels = sorted(present)
                self._declared["ordinal"][c] = declared_ord[c]
                levels = list(Ordinal(c, tuple(levels)).levels)
                self._ordinal[c] = levels
            elif c in declared_cat or c not in self._ordinal and not (
                    pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                levels = declared_cat.get(c)
                if c in declared_cat:
                    self._declared["categorical"][c] = levels
                if levels is None:
                    levels = sorted(present, key=str)
                else:
                    levels = list(_checked_levels(c, levels, "categorical column"))
                self._levels[c] = levels
            else:
                continue
            check_column_levels(c, col, levels, "DiscretePool: the candidate table",
                                "declared levels")
        self._features = self._encode(self.df)

    def __repr__(self) -> str:
        feats = self.feature_columns
        shown = ", ".join(feats[:6]) + (f", … ({len(feats)} in all)" if len(feats) > 6 else "")
        ident = f", id={self.id_column!r}" if self.id_column else ""
        return f"DiscretePool({len(self)} candidates{ident}, features=[{shown}])"

    @property
    def feature_names(self) -> list[str]:
        names = []
        for c in self.feature_columns:
            names += [f"{c}={v}" for v in self._levels[c]] if c in self._levels else [c]
        return names

    def check_levels(self, df: pd.DataFrame, source: str = "rows") -> None:
        for c, levels in (*self._levels.items(), *self._ordinal.items()):
            if c in df.columns:
                check_column_levels(c, df[c], levels, source, "levels of the pool's column")

    def _encode(self, df: pd.DataFrame) -> np.ndarray:
        blocks = []
        for c in self.feature_columns:
            if c in self._levels:
                levels = {v: i for i, v in enumerate(self._levels[c])}
                codes = np.array([levels.get(_json_value(v), -1) for v in df[c]], dtype=int)
                block = np.zeros((len(df), len(levels)))
                ok = codes >= 0
                block[np.flatnonzero(ok), codes[ok]] = 1.0
            elif c in self._ordinal:
                levels = {v: i for i, v in enumerate(self._ordinal[c])}
                codes = np.array([levels.get(_json_value(v), -1) for v in df[c]], dtype=float)
                span = max(len(levels) - 1, 1)
                block = np.where(codes >= 0, codes / span, np.nan)[:, None]
            else:
                block = df[c].to_numpy(dtype=float)[:, None]
            blocks.append(block)
        return np.hstack(blocks)

    def to_features(self, df: pd.DataFrame | None = None) -> np.ndarray:
        """Features of ``df`` (default: the whole pool, in pool order). Categories the pool
        does not have encode as all-zero one-hot blocks."""
        if df is None:
            return self._features.copy()
        _require_columns(df, self.feature_columns, "DiscretePool")
        F = self._encode(df)
        if not np.isfinite(F).all():
            row = df.index[int(np.flatnonzero(~np.isfinite(F).all(axis=1))[0])]
            raise DesignSpaceError(f"DiscretePool: missing or non-finite feature in row {row!r}")
        return F

    def _keys(self, df: pd.DataFrame) -> pd.DataFrame:
        keys = {}
        for c in self.feature_columns:
            if c in self._levels or c in self._ordinal:
                keys[c] = df[c].astype(str).to_numpy()
            else:
                keys[c] = np.round(df[c].to_numpy(dtype=float), 9)
        return pd.DataFrame(keys)

    def _match(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (row of df, pool position) that refer to the same candidate."""
        by_id = self._match_ids(df)
        if by_id is not None:
            return by_id
        _require_columns(df, self.feature_columns, "DiscretePool")
        left = self._keys(df).assign(_row=np.arange(len(df)))
        right = self._keys(self.df).assign(_pos=np.arange(len(self)))
        merged = left.merge(right, on=self.feature_columns, how="inner")
        return merged["_row"].to_numpy(), merged["_pos"].to_numpy()

    def infeasible_reason(self, row) -> str | None:
        frame = _row_frame(row)
        if self.contains(frame)[0]:
            return None
        if self.id_column is not None and self.id_column in frame.columns:
            return f"no candidate with {self.id_column} = {_show(frame[self.id_column].iloc[0])}"
        return "no pool candidate has these feature values"

    def as_dict(self) -> dict:
        return {
            "@class": "DiscretePool",
            "id_column": self.id_column,
            "feature_columns": self.feature_columns,
            **self._table_dict(),
            "index": None if self.id_column else [_json_value(v) for v in self.df.index.tolist()],
            **{k: v for k, v in self._declared.items() if v},
        }

    @classmethod
    def _from_dict(cls, d: dict) -> DiscretePool:
        df = cls._table_from_dict(d)
        if d.get("index") is not None:
            df.index = d["index"]
        return cls(df, id_column=d["id_column"], feature_columns=d["feature_columns"],
                   categorical=d.get("categorical"), ordinal=d.get("ordinal"))


# -----------------------------------------------------------------------------------------------
# Candidate compositions
# -----------------------------------------------------------------------------------------------


def composition_keys(formulas: Sequence[str], source: str | None = None) -> list[str]:
    """Canonical key of each formula: its elements and atomic fractions (6 significant
    digits), so ``"Fe2O3"``, ``"O3Fe2"`` and ``"Fe0.4O0.6"`` share one key.

    Raises :class:`~matforge.errors.InvalidFormula` naming the first formula that does not parse.
    The rule is :func:`matforge.chem.identity.composition_key_strings`.
    """
    from matforge.chem.identity import composition_key_strings

    return composition_key_strings(formulas, source=source)


class CompositionPool(CandidateTable):
    """A fixed table of candidate compositions (a formula column, plus any other columns).

    The surrogate sees composition descriptors of the formulas (``featurizer``, a
    :func:`~matforge.models.pipeline.build_featurizer` spec; ``"auto"``:
    :func:`~matforge.design.strategy.composition_feature_spec` of the pool, i.e. element
    fractions for a pool of at most 16 elements, Magpie statistics and fractions beyond).
    ``feature_columns``: other design columns the surrogate sees beside the composition (a
    synthesis route, a solvent, an annealing temperature), encoded as in a
    :class:`DiscretePool` (numbers as they are, text one-hot, and ``categorical`` /
    ``ordinal`` as declared there). Rows are matched by ``id_column`` when given rows carry
    it, otherwise by composition (see :func:`composition_keys`) and the values of
    ``feature_columns``, so every pool row of that composition (and those values) matches.
    """

    def __init__(self, df: pd.DataFrame, formula_column: str = "formula",
                 id_column: str | None = None, featurizer: Sequence[str] | str = "auto",
                 feature_columns: Sequence[str] = (), categorical=None, ordinal=None):
        if not isinstance(df, pd.DataFrame) or len(df) == 0:
            raise DesignSpaceError("CompositionPool needs a non-empty DataFrame of candidates")
        if formula_column not in df.columns:
            raise DesignSpaceError(
                f"CompositionPool: no formula column {formula_column!r}; have {list(df.columns)}"
            )
        if id_column is not None:
            if id_column not in df.columns:
                raise DesignSpaceError(f"CompositionPool: no id column {id_column!r}")
            ids = pd.Index(df[id_column])
        else:
            ids = pd.RangeIndex(len(df))
        if not ids.is_unique:
            raise DesignSpaceError(
                f"CompositionPool: duplicate ids in {id_column!r}: "
                f"{list(ids[ids.duplicated()].unique()[:5])}"
            )
        self.df = df.reset_index(drop=True)
        self.formula_column = formula_column
        self.id_column = id_column
        if isinstance(featurizer, str):
            if featurizer != "auto":
                raise DesignSpaceError(f"featurizer must be 'auto' or a list, got {featurizer!r}")
            from matforge.design.strategy import composition_feature_spec

            featurizer = composition_feature_spec(self.df[formula_column].tolist())
        self.featurizer = list(featurizer)
        self._ids = ids
        self.extra_columns = [str(c) for c in feature_columns]
        bad = [c for c in self.extra_columns if c in (formula_column, id_column)]
        if bad:
            raise DesignSpaceError(f"CompositionPool: {bad} cannot be extra feature columns")
        # the other design columns are encoded (and their levels checked) by a DiscretePool
        self._extra = DiscretePool(self.df, feature_columns=self.extra_columns,
                                   categorical=categorical, ordinal=ordinal) \
            if self.extra_columns else None
        self._keys = self._with_extras(
            np.array(composition_keys(self.df[formula_column].tolist(),
                                      source="candidate pool"), dtype=object), self.df)
        self._features = None

    def _with_extras(self, keys: np.ndarray, df: pd.DataFrame) -> np.ndarray:
        """Composition keys, followed by the extra feature columns' values when there are."""
        if self._extra is None:
            return keys
        missing = [c for c in self.extra_columns if c not in df.columns]
        if missing:
            raise DesignSpaceError(f"rows need the column(s) {missing}")
        extra = self._extra._keys(df)
        tails = [json.dumps([_stored_value(v) for v in row]) for row in extra.to_numpy().tolist()]
        return np.array([f"{k} | {t}" for k, t in zip(keys, tails, strict=True)], dtype=object)

    def check_levels(self, df: pd.DataFrame, source: str = "rows") -> None:
        if self._extra is not None:
            self._extra.check_levels(df, source)

    def __repr__(self) -> str:
        return f"CompositionPool({len(self)} candidates, formula={self.formula_column!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, CompositionPool) and self.as_dict() == other.as_dict()

    __hash__ = None

    @property
    def feature_names(self) -> list[str]:
        from matforge.models.pipeline import build_featurizer

        extra = self._extra.feature_names if self._extra is not None else []
        return list(build_featurizer(self.featurizer).feature_labels()) + extra

    def keys(self, df: pd.DataFrame) -> np.ndarray:
        """Composition keys of the rows of ``df`` (pool rows: cached)."""
        if df is self.df:
            return self._keys
        if self.formula_column not in df.columns:
            raise DesignSpaceError(f"rows need a {self.formula_column!r} column")
        return self._with_extras(
            np.array(composition_keys(df[self.formula_column].tolist()), dtype=object), df)

    def to_features(self, df: pd.DataFrame | None = None) -> np.ndarray:
        """Composition descriptors of ``df`` (default: the pool, computed once)."""
        from matforge.design.strategy import composition_features

        if df is None:
            if self._features is None:
                F = composition_features(self.df[self.formula_column].tolist(), self.featurizer)
                if self._extra is not None:
                    F = np.hstack([F, self._extra.to_features()])
                self._features = F
            return self._features
        if self.formula_column not in df.columns:
            raise DesignSpaceError(f"rows need a {self.formula_column!r} column")
        F = composition_features(df[self.formula_column].tolist(), self.featurizer)
        if self._extra is not None:
            F = np.hstack([F, self._extra.to_features(df)])
        return F

    def _match(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        by_id = self._match_ids(df)
        if by_id is not None:
            return by_id
        left = pd.DataFrame({"k": self.keys(df), "_row": np.arange(len(df))})
        right = pd.DataFrame({"k": self._keys, "_pos": np.arange(len(self))})
        m = left.merge(right, on="k")
        return m["_row"].to_numpy(), m["_pos"].to_numpy()

    def infeasible_reason(self, row) -> str | None:
        frame = _row_frame(row)
        if self.contains(frame)[0]:
            return None
        return f"{frame[self.formula_column].iloc[0]!r} is not a candidate of the pool"

    def as_dict(self) -> dict:
        d = {
            "@class": "CompositionPool",
            "formula_column": self.formula_column,
            "id_column": self.id_column,
            "featurizer": self.featurizer,
            **self._table_dict(_stored_value),
        }
        if self._extra is not None:  # absent: a pool of compositions alone (as before)
            d["feature_columns"] = list(self.extra_columns)
            declared = self._extra.as_dict()
            d.update({k: declared[k] for k in ("categorical", "ordinal") if k in declared})
        return d

    @classmethod
    def _from_dict(cls, d: dict) -> CompositionPool:
        from matforge.design.strategy import COMPOSITION_FEATURES

        return cls(cls._table_from_dict(d), d["formula_column"], d.get("id_column"),
                   d.get("featurizer", COMPOSITION_FEATURES),
                   feature_columns=d.get("feature_columns", ()),
                   categorical=d.get("categorical"), ordinal=d.get("ordinal"))


# -----------------------------------------------------------------------------------------------
# Formulations: amounts on a constrained simplex
# -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingredient:
    """An ingredient with bounds on its amount, in the units of the formulation's ``total``.

    ``max=None`` means "up to the total". An ingredient with ``min > 0`` is always present.
    """

    name: str
    min: float = 0.0
    max: float | None = None

    def __post_init__(self):
        _check_name(self.name, "ingredient")
        lo = _finite(self.min, f"ingredient {self.name!r}: min")
        object.__setattr__(self, "min", lo)
        if self.max is not None:
            object.__setattr__(self, "max", _finite(self.max, f"ingredient {self.name!r}: max"))
        if lo < 0:
            raise DesignSpaceError(f"ingredient {self.name!r}: min {_fmt(lo)} is negative")
        if self.max is not None and self.max < lo:
            raise DesignSpaceError(
                f"ingredient {self.name!r}: min {_fmt(lo)} > max {_fmt(self.max)}"
            )

    def as_dict(self) -> dict:
        return {"name": self.name, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class Group:
    """Bounds on the summed amount of several ingredients ("fillers between 10 and 40 %")."""

    name: str
    members: tuple[str, ...]
    min: float = 0.0
    max: float | None = None

    def __post_init__(self):
        _check_name(self.name, "group")
        if isinstance(self.members, str) or not isinstance(self.members, Iterable):
            raise DesignSpaceError(f"group {self.name!r}: members must be a list of names")
        members = tuple(self.members)
        if not members:
            raise DesignSpaceError(f"group {self.name!r} has no members")
        if len(set(members)) != len(members):
            raise DesignSpaceError(f"group {self.name!r}: duplicate members {list(members)}")
        object.__setattr__(self, "members", members)
        lo = _finite(self.min, f"group {self.name!r}: min")
        object.__setattr__(self, "min", lo)
        if self.max is not None:
            object.__setattr__(self, "max", _finite(self.max, f"group {self.name!r}: max"))
        if lo < 0:
            raise DesignSpaceError(f"group {self.name!r}: min {_fmt(lo)} is negative")
        if self.max is not None and self.max < lo:
            raise DesignSpaceError(f"group {self.name!r}: min {_fmt(lo)} > max {_fmt(self.max)}")

    def as_dict(self) -> dict:
        return {"name": self.name, "members": list(self.members), "min": self.min, "max": self.max}


class FormulationSpace(DesignSpace):
    """Blends: ingredient amounts that sum exactly to ``total``, with constraints.

    Parameters
    ----------
    ingredients : list of Ingredient (or names, for an ingredient bounded by [0, total])
    total : float, default=1.0
        What the amounts sum to (1 for fractions, 100 for percent, a batch mass in g, ...).
    max_components : int, optional
        At most this many ingredients present (an amount ≤ TOL counts as absent). Ingredients
        with ``min > 0`` are always present and count against it.
    groups : list of Group
        Bounds on sums of ingredients; groups may overlap.
    parameters : ParameterSpace or list of parameters, optional
        Process conditions sampled independently of the blend (e.g. a curing temperature).
    step : float, optional
        Proposals' amounts are rounded to multiples of it (:meth:`round`), in the units of
        ``total``; it must divide the total. Default 0.1 % of the total (0.001 for fractions,
        0.1 for percent); 0: not rounded.

    The space is checked on construction: impossible bounds raise :class:`DesignSpaceError`
    naming the problem (sum of minimums above the total, maximums that cannot reach it, a
    ``max_components`` below the number of always-present ingredients, impossible groups), and a
    mixed-integer feasibility program catches the remaining conflicts.

    Sampling
    --------
    A blend with at most ``k`` components lies on a face of the simplex spanned by ``k``
    ingredients (the always-present ones plus ``k − |always|`` optional ones); faces of fewer
    ingredients have zero volume inside them. ``sample`` is uniform on the union of these
    faces (each face's share proportional to its feasible volume) when rejection sampling is
    affordable: a face is drawn uniformly, a point is drawn uniformly on it (shifted
    Dirichlet(1) above the minimums) and the pair is kept only if it satisfies the maximums and
    groups. When fewer draws would be accepted than affordable (tight bounds, groups with
    ``min == max``), a hit-and-run sampler runs on each face instead, faces being drawn in
    proportion to the exact volume of the face's box constraints (inclusion–exclusion), which
    ignores the groups: an approximation, recorded in ``sampler_`` after a call. With more
    than 20,000 faces they are drawn uniformly instead of by volume. Faces that are the same
    polytope up to relabelling (same bounds and group memberships) share one sampler.

    Rounding
    --------
    :meth:`round` puts blends on the grid of ``step``: amounts floored to the grid, then the
    missing steps given to the ingredients present with the largest remainders (within their
    bounds), so the amounts sum to the total exactly (as integers of steps). A blend whose
    rounding breaks a group bound or ``max_components`` goes to the nearest grid point that
    meets every constraint (least total change, an integer program). Construction refuses a
    step on whose grid no blend is feasible.
    """

    def __init__(self, ingredients: Sequence[Ingredient | str], total: float = 1.0,
                 max_components: int | None = None, groups: Sequence[Group] = (),
                 parameters: ParameterSpace | Sequence[Parameter] | None = None,
                 step: float | None = None):
        total = _finite(total, "FormulationSpace: total")
        if total <= 0:
            raise DesignSpaceError(f"FormulationSpace: total must be positive, got {_fmt(total)}")
        ings = []
        for i in ingredients:
            if isinstance(i, str):
                i = Ingredient(i)
            elif isinstance(i, Mapping):
                i = Ingredient(**i)
            if not isinstance(i, Ingredient):
                raise DesignSpaceError(f"not an ingredient: {i!r}")
            ings.append(i)
        if not ings:
            raise DesignSpaceError("FormulationSpace needs at least one ingredient")
        names = [i.name for i in ings]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DesignSpaceError(f"FormulationSpace: duplicate ingredient names {dupes}")
        grps = [Group(**g) if isinstance(g, Mapping) else g for g in groups]
        gnames = [g.name for g in grps]
        dupes = sorted({n for n in gnames if gnames.count(n) > 1})
        if dupes:
            raise DesignSpaceError(f"FormulationSpace: duplicate group names {dupes}")
        if parameters is not None and not isinstance(parameters, ParameterSpace):
            parameters = ParameterSpace(parameters)
        if parameters is not None:
            clash = sorted(set(names) & set(parameters.columns))
            if clash:
                raise DesignSpaceError(f"FormulationSpace: {clash} are both ingredients and parameters")
        if max_components is not None:
            if isinstance(max_components, bool) or int(max_components) != max_components \
                    or max_components < 1:
                raise DesignSpaceError(
                    f"FormulationSpace: max_components must be a positive integer, "
                    f"got {max_components!r}"
                )
            max_components = int(max_components)

        self.ingredients = tuple(ings)
        self.total = total
        self.max_components = max_components
        self.groups = tuple(grps)
        self.parameters = parameters
        self.step = _check_step(step, "FormulationSpace")
        self.sampler_: str | None = None
        self.rounding_: str | None = None

        n = len(ings)
        self._names = names
        self._lo = np.array([i.min for i in ings])
        self._hi = np.array([total if i.max is None else min(i.max, total) for i in ings])
        self._k = n if max_components is None else min(max_components, n)
        index = {nm: j for j, nm in enumerate(names)}
        self._G = np.zeros((len(grps), n))
        for gi, g in enumerate(grps):
            unknown = [m for m in g.members if m not in index]
            if unknown:
                raise DesignSpaceError(
                    f"group {g.name!r}: unknown ingredient(s) {unknown}; ingredients are {names}"
                )
            self._G[gi, [index[m] for m in g.members]] = 1.0
        self._gmin = np.array([g.min for g in grps])
        self._gmax = np.array([total if g.max is None else min(g.max, total) for g in grps])
        self._always = np.flatnonzero(self._lo > 0)
        self._optional = np.flatnonzero((self._lo == 0) & (self._hi > 0))
        self._m_opt = min(self._k - len(self._always), len(self._optional))
        self._polytopes: dict[tuple, Polytope] = {}
        self._supports_cache: np.ndarray | None | bool = False
        self._check_feasible()
        self._set_grid()

    # -- construction checks -------------------------------------------------------------------

    def _names_of(self, idx) -> str:
        return ", ".join(self._names[j] for j in idx)

    def _check_feasible(self) -> None:
        lo, hi, T, k = self._lo, self._hi, self.total, self._k
        for j, ing in enumerate(self.ingredients):
            if lo[j] > T + TOL:
                raise DesignSpaceError(
                    f"ingredient {ing.name!r}: min {_fmt(lo[j])} exceeds the total {_fmt(T)}"
                )
        if lo.sum() > T + TOL:
            raise DesignSpaceError(
                f"the ingredient minimums sum to {_fmt(lo.sum())}, more than the total "
                f"{_fmt(T)} ({', '.join(f'{self._names[j]} ≥ {_fmt(lo[j])}' for j in self._always)})"
            )
        if len(self._always) > k:
            raise DesignSpaceError(
                f"max_components={self.max_components} is smaller than the "
                f"{len(self._always)} ingredients that are always present (min > 0): "
                f"{self._names_of(self._always)}"
            )
        reach = hi[self._always].sum() + np.sort(hi[self._optional])[::-1][:self._m_opt].sum()
        if reach < T - TOL:
            limit = f" with at most {k} components" if k < len(lo) else ""
            raise DesignSpaceError(
                f"the ingredient maximums cannot reach the total {_fmt(T)}{limit}: "
                f"the largest reachable sum is {_fmt(reach)}"
            )
        for gi, g in enumerate(self.groups):
            members = np.flatnonzero(self._G[gi])
            gmin, gmax = self._gmin[gi], self._gmax[gi]
            others = np.setdiff1d(np.arange(len(lo)), members)
            if gmin > T + TOL:
                raise DesignSpaceError(
                    f"group {g.name!r}: min {_fmt(gmin)} exceeds the total {_fmt(T)}"
                )
            if lo[members].sum() > gmax + TOL:
                raise DesignSpaceError(
                    f"group {g.name!r}: its members' minimums sum to {_fmt(lo[members].sum())}, "
                    f"above the group max {_fmt(gmax)}"
                )
            if hi[members].sum() < gmin - TOL:
                raise DesignSpaceError(
                    f"group {g.name!r}: its members' maximums sum to {_fmt(hi[members].sum())}, "
                    f"below the group min {_fmt(gmin)}"
                )
            if gmin + lo[others].sum() > T + TOL:
                raise DesignSpaceError(
                    f"group {g.name!r}: its min {_fmt(gmin)} plus the other ingredients' "
                    f"minimums ({_fmt(lo[others].sum())}) exceed the total {_fmt(T)}"
                )
            if gmax + hi[others].sum() < T - TOL:
                raise DesignSpaceError(
                    f"group {g.name!r}: its max {_fmt(gmax)} plus the other ingredients' "
                    f"maximums ({_fmt(hi[others].sum())}) cannot reach the total {_fmt(T)}"
                )
        if self._feasible_program(groups=True, cardinality=True):
            return
        limit = f"max_components={self.max_components}"
        if self.groups and not self._feasible_program(groups=False, cardinality=True):
            raise DesignSpaceError(f"no blend meets the ingredient bounds with {limit}")
        if not self._feasible_program(groups=True, cardinality=False):
            conflicting = [g.name for gi, g in enumerate(self.groups)
                           if not self._feasible_program(groups=[gi], cardinality=False)]
            which = f" (group(s) {conflicting} on their own)" if conflicting else ""
            raise DesignSpaceError(
                f"no blend meets the group bounds together with the ingredient bounds{which}"
            )
        raise DesignSpaceError(
            f"{limit} is too small: every blend that meets the group and ingredient bounds "
            f"needs more ingredients"
        )

    @property
    def resolution(self) -> float | None:
        """The step amounts are rounded to (None: not rounded)."""
        if self._grid_off is not None:
            return None
        step = self.total * AMOUNT_STEP if self.step is None else self.step
        return step or None

    def _set_grid(self) -> None:
        """Integer bounds of the grid of ``resolution`` (amounts = k · step). A given step that
        does not divide the total, or on whose grid no blend is feasible, is refused; the
        default step is then dropped (blends not rounded), and ``precision`` says why."""
        self._grid_off: str | None = None
        step = self.resolution
        if step is None:
            return
        problem = self._grid_problem(step)
        if problem is None:
            return
        if self.step is not None:
            raise DesignSpaceError(f"FormulationSpace: {problem}")
        self._grid_off = problem

    def _grid_problem(self, step: float) -> str | None:
        K = self.total / step
        if abs(K - round(K)) > 1e-9 * max(K, 1.0) or round(K) < 1:
            return (f"the step {_fmt(step)} does not divide the total {_fmt(self.total)}, so "
                    f"amounts on its grid cannot sum to it; use a step that does")
        if K > 1e12:
            return f"the step {_fmt(step)} is too fine; use 0 for 'not rounded'"
        self._K = int(round(K))
        # (+ 0.0: ceil(-1e-9) is -0.0, which would print as "-0.0" in a suggestion)
        self._lo_k = np.ceil(self._lo / step - 1e-9) + 0.0
        self._hi_k = np.floor(self._hi / step + 1e-9) + 0.0
        self._gmin_k = np.ceil(self._gmin / step - 1e-9) + 0.0
        self._gmax_k = np.floor(self._gmax / step + 1e-9) + 0.0
        empty = np.flatnonzero(self._lo_k > self._hi_k)
        if len(empty):
            j = int(empty[0])
            return (f"ingredient {self._names[j]!r} ∈ [{_fmt(self._lo[j])}, "
                    f"{_fmt(self._hi[j])}] holds no multiple of the step {_fmt(step)}; use a "
                    f"finer precision")
        if self._grid_program(None) is None:
            return (f"no blend on the grid of step {_fmt(step)} meets the bounds, groups and "
                    f"max_components; use a finer precision")
        return None

    def _grid_program(self, u: np.ndarray | None) -> np.ndarray | None:
        """Integer amounts k (in steps) meeting every constraint, nearest to ``u`` in total
        change (Σ|k − u|), or any such k when ``u`` is None; None if there is none (HiGHS)."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        n = len(self._lo)
        use_z = self._k < n
        # variables: k (n, integer), d ≥ |k − u| (n), z (n, binary: present) if cardinality
        nv = n * (3 if use_z else 2)
        rows, lb, ub = [], [], []

        def add(row, low, high):
            rows.append(row)
            lb.append(low)
            ub.append(high)

        eye, zeros = np.eye(n), np.zeros((n, nv - 2 * n))
        add(np.r_[np.ones(n), np.zeros(nv - n)], self._K, self._K)
        for gi in range(len(self.groups)):
            add(np.r_[self._G[gi], np.zeros(nv - n)], self._gmin_k[gi], self._gmax_k[gi])
        target = np.zeros(n) if u is None else np.asarray(u, dtype=float)
        for j in range(n):  # d_j ≥ k_j − u_j and d_j ≥ u_j − k_j
            add(np.r_[eye[j], -eye[j], zeros[j]], -np.inf, target[j])
            add(np.r_[-eye[j], -eye[j], zeros[j]], -np.inf, -target[j])
        lower = np.r_[self._lo_k, np.zeros(n)]
        upper = np.r_[self._hi_k, np.full(n, np.inf)]
        integrality = np.r_[np.ones(n), np.zeros(n)]
        if use_z:
            for j in range(n):  # k_j ≤ hi_j z_j
                row = np.zeros(nv)
                row[j], row[2 * n + j] = 1.0, -self._hi_k[j]
                add(row, -np.inf, 0.0)
            add(np.r_[np.zeros(2 * n), np.ones(n)], 0, self._k)
            lower = np.r_[lower, np.zeros(n)]
            upper = np.r_[upper, np.ones(n)]
            integrality = np.r_[integrality, np.ones(n)]
        cost = np.r_[np.zeros(n), np.ones(n) if u is not None else np.zeros(n),
                     np.zeros(nv - 2 * n)]
        res = milp(cost, constraints=LinearConstraint(np.array(rows), lb, ub),
                   integrality=integrality, bounds=Bounds(lower, upper))
        if res.status != 0 or res.x is None:
            return None
        return np.round(res.x[:n])

    def _round_amounts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Blends (inside the space) as integer amounts k on the grid with Σk = K; the mask of
        rows that plain largest-remainder rounding could not put inside the space."""
        U = X / self.resolution
        present = X > TOL
        k = np.clip(np.floor(U + 1e-9), self._lo_k, self._hi_k)
        frac = U - k
        r = self._K - k.sum(axis=1)
        stuck = np.zeros(len(X), dtype=bool)
        rows = np.arange(len(X))
        while True:  # each pass moves one step in every row still off the total
            up, down = (r > 0) & ~stuck, (r < 0) & ~stuck
            if not (up.any() or down.any()):
                break
            # Short: the present ingredient with the largest remainder gets a step; over: the
            # one with the smallest gives one back (absent ones stay absent: max_components).
            score = np.where(up[:, None], np.where(present & (k < self._hi_k), frac, -np.inf),
                             np.where(k > self._lo_k, -frac, -np.inf))
            j = np.argmax(score, axis=1)
            moving = (up | down) & np.isfinite(score[rows, j])
            stuck |= (up | down) & ~moving
            sign = np.where(up, 1.0, -1.0)[moving]
            k[rows[moving], j[moving]] += sign
            frac[rows[moving], j[moving]] -= sign
            r[moving] -= sign
        return k, stuck

    def _feasible_program(self, groups, cardinality: bool) -> bool:
        """Mixed-integer feasibility of the linear constraints (HiGHS)."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        n = len(self._lo)
        rows = range(len(self.groups)) if groups is True else (groups or [])
        rows = list(rows)
        use_z = cardinality and self._k < n
        nv = 2 * n if use_z else n
        A, lb, ub = [np.r_[np.ones(n), np.zeros(nv - n)]], [self.total], [self.total]
        for gi in rows:
            A.append(np.r_[self._G[gi], np.zeros(nv - n)])
            lb.append(self._gmin[gi])
            ub.append(self._gmax[gi])
        lower, upper = np.r_[self._lo], np.r_[self._hi]
        integrality = np.zeros(nv)
        if use_z:
            for j in range(n):  # x_j ≤ hi_j z_j
                row = np.zeros(nv)
                row[j], row[n + j] = 1.0, -self._hi[j]
                A.append(row)
                lb.append(-np.inf)
                ub.append(0.0)
            A.append(np.r_[np.zeros(n), np.ones(n)])
            lb.append(0)
            ub.append(self._k)
            lower = np.r_[lower, (self._lo > 0).astype(float)]
            upper = np.r_[upper, np.ones(n)]
            integrality[n:] = 1
        res = milp(np.zeros(nv), constraints=LinearConstraint(np.array(A), lb, ub),
                   integrality=integrality, bounds=Bounds(lower, upper))
        return res.status == 0

    # -- basic protocol ------------------------------------------------------------------------

    def __eq__(self, other) -> bool:
        return isinstance(other, FormulationSpace) and self.as_dict() == other.as_dict()

    __hash__ = None

    def __repr__(self) -> str:
        ings = []
        for j, nm in enumerate(self._names):
            lo, hi = self._lo[j], self._hi[j]
            ings.append(nm if lo == 0 and hi >= self.total else f"{nm} ∈ [{_fmt(lo)}, {_fmt(hi)}]")
        lines = [f"FormulationSpace(total={_fmt(self.total)}"
                 + (f", max_components={self.max_components}" if self.max_components else "")
                 + (f", step={_fmt(self.step)}" if self.step is not None else "")
                 + ",", f"  ingredients=[{', '.join(ings)}],"]
        if self.groups:
            gs = [f"{g.name} {{{', '.join(g.members)}}} ∈ [{_fmt(self._gmin[i])}, "
                  f"{_fmt(self._gmax[i])}]" for i, g in enumerate(self.groups)]
            lines.append(f"  groups=[{'; '.join(gs)}],")
        if self.parameters is not None:
            lines.append(f"  parameters=[{', '.join(str(p) for p in self.parameters)}],")
        lines[-1] = lines[-1].rstrip(",") + ")"
        return "\n".join(lines)

    @property
    def ingredient_names(self) -> list[str]:
        return list(self._names)

    @property
    def columns(self) -> list[str]:
        return self._names + (self.parameters.columns if self.parameters is not None else [])

    @property
    def feature_names(self) -> list[str]:
        extra = self.parameters.feature_names if self.parameters is not None else []
        return self._names + extra

    def as_dict(self) -> dict:
        d = {
            "@class": "FormulationSpace",
            "ingredients": [i.as_dict() for i in self.ingredients],
            "total": self.total,
            "max_components": self.max_components,
            "groups": [g.as_dict() for g in self.groups],
            "parameters": self.parameters.as_dict() if self.parameters is not None else None,
        }
        if self.step is not None:  # absent (spaces saved before steps existed): the default
            d["step"] = self.step
        return d

    @classmethod
    def _from_dict(cls, d: dict) -> FormulationSpace:
        params = d.get("parameters")
        return cls(
            [Ingredient(**i) for i in d["ingredients"]],
            total=d["total"],
            max_components=d.get("max_components"),
            groups=[Group(**g) for g in d.get("groups", [])],
            parameters=ParameterSpace._from_dict(params) if params else None,
            step=d.get("step"),
        )

    @property
    def precision(self) -> dict[str, str]:
        step = self.resolution
        if self._grid_off is not None:
            out = {"amounts": f"not rounded ({self._grid_off.split(';')[0]})"}
        else:
            out = {"amounts": _fmt(step) if step else "not rounded"}
        if self.parameters is not None:
            out.update(self.parameters.precision)
        return out

    def with_precision(self, precision) -> FormulationSpace:
        """A copy rounding to other steps: ``precision`` is one step for the amounts and every
        continuous parameter, or a mapping ``{"amounts": step, parameter: step, "*": step}``
        (``"*"``: every column not named); 0 leaves a column unrounded. The amounts share one
        step (it keeps their sum exact), so ingredients cannot be named."""
        if isinstance(precision, Mapping):
            named = [k for k in precision if k in self._names]
            if named:
                raise DesignSpaceError(
                    f"FormulationSpace: the ingredient amounts share one step; give it as "
                    f"'amounts' (or a bare step), not per ingredient ({named})"
                )
        names = ["amounts"] + [p.name for p in (self.parameters or ()) if p.kind == "continuous"]
        steps = _steps(precision, names, "FormulationSpace")
        params = self.parameters
        if params is not None:
            params = params.with_precision({k: v for k, v in steps.items() if k != "amounts"})
        return FormulationSpace(self.ingredients, total=self.total,
                                max_components=self.max_components, groups=self.groups,
                                parameters=params, step=steps.get("amounts", self.step))

    # -- checks --------------------------------------------------------------------------------

    def _amounts(self, df: pd.DataFrame) -> np.ndarray:
        _require_columns(df, self.columns, "FormulationSpace")
        return df[self._names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)

    def _mask(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(X).all(axis=1)
            ok &= ((X >= self._lo - TOL) & (X <= self._hi + TOL)).all(axis=1)
            ok &= np.abs(X.sum(axis=1) - self.total) <= TOL
            ok &= (X > TOL).sum(axis=1) <= self._k
            if len(self.groups):
                S = X @ self._G.T
                ok &= ((S >= self._gmin - TOL) & (S <= self._gmax + TOL)).all(axis=1)
        return ok

    def contains(self, df: pd.DataFrame) -> np.ndarray:
        ok = self._mask(self._amounts(df))
        if self.parameters is not None:
            ok &= self.parameters.contains(df)
        return ok

    def infeasible_reason(self, row) -> str | None:
        frame = _row_frame(row)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            return f"missing column(s) {missing}"
        x = self._amounts(frame)[0]
        reasons = []
        for j, nm in enumerate(self._names):
            if not np.isfinite(x[j]):
                reasons.append(f"{nm} is not a number ({_show(frame[nm].iloc[0])})")
            elif x[j] < self._lo[j] - TOL:
                reasons.append(f"{nm} = {_fmt(x[j])} is below its min {_fmt(self._lo[j])}")
            elif x[j] > self._hi[j] + TOL:
                reasons.append(f"{nm} = {_fmt(x[j])} is above its max {_fmt(self._hi[j])}")
        if np.isfinite(x).all():
            s = x.sum()
            if abs(s - self.total) > TOL:
                reasons.append(f"the amounts sum to {s:.12g}, not the total {_fmt(self.total)}")
            present = np.flatnonzero(x > TOL)
            if len(present) > self._k:
                reasons.append(
                    f"{len(present)} ingredients are present ({self._names_of(present)}), "
                    f"more than max_components={self.max_components}"
                )
            for gi, g in enumerate(self.groups):
                gs = float(self._G[gi] @ x)
                if gs < self._gmin[gi] - TOL:
                    reasons.append(f"group {g.name!r} ({', '.join(g.members)}) sums to "
                                   f"{_fmt(gs)}, below its min {_fmt(self._gmin[gi])}")
                elif gs > self._gmax[gi] + TOL:
                    reasons.append(f"group {g.name!r} ({', '.join(g.members)}) sums to "
                                   f"{_fmt(gs)}, above its max {_fmt(self._gmax[gi])}")
        if self.parameters is not None:
            if r := self.parameters.infeasible_reason(frame):
                reasons.append(r)
        return "; ".join(reasons) or None

    # -- features ------------------------------------------------------------------------------

    def check_levels(self, df: pd.DataFrame, source: str = "rows") -> None:
        if self.parameters is not None:
            self.parameters.check_levels(df, source)

    def to_features(self, df: pd.DataFrame) -> np.ndarray:
        """Ingredient amounts as fractions of the total, then the parameters' features."""
        X = self._amounts(df)
        if not np.isfinite(X).all():
            row = df.index[int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])]
            raise DesignSpaceError(f"FormulationSpace: missing or non-numeric amount in row {row!r}")
        F = X / self.total
        if self.parameters is not None:
            F = np.hstack([F, self.parameters.to_features(df)])
        return F

    def from_features(self, F: np.ndarray) -> pd.DataFrame:
        """Decode features into a DataFrame (not repaired: pass it through :meth:`project`)."""
        F = np.asarray(F, dtype=float).reshape(-1, len(self.feature_names))
        n = len(self._names)
        df = pd.DataFrame(F[:, :n] * self.total, columns=self._names)
        if self.parameters is not None:
            df = pd.concat([df, self.parameters.from_features(F[:, n:])], axis=1)
        return df

    # -- faces (sets of active ingredients) ----------------------------------------------------

    def _supports(self) -> np.ndarray | None:
        """Every maximal active set (always-present + m_opt optional), or None if too many."""
        if self._supports_cache is False:
            n_opt, m_opt = len(self._optional), self._m_opt
            if math.comb(n_opt, m_opt) > MAX_ENUMERATED_SUPPORTS:
                self._supports_cache = None
            else:
                combos = np.array(list(itertools.combinations(self._optional, m_opt)),
                                  dtype=int).reshape(math.comb(n_opt, m_opt), m_opt)
                always = np.tile(self._always, (len(combos), 1))
                self._supports_cache = np.hstack([always, combos])
        return self._supports_cache

    def _random_supports(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` maximal active sets drawn uniformly (random keys, exact)."""
        n_opt, m_opt = len(self._optional), self._m_opt
        if m_opt == n_opt:
            chosen = np.tile(np.arange(n_opt), (size, 1))
        elif m_opt == 0:
            chosen = np.zeros((size, 0), dtype=int)
        else:
            keys = rng.random((size, n_opt))
            chosen = np.argpartition(keys, m_opt - 1, axis=1)[:, :m_opt]
        return np.hstack([np.tile(self._always, (size, 1)), self._optional[chosen]])

    def _canonical(self, support) -> tuple[tuple, np.ndarray]:
        """Faces whose members have equal bounds and group memberships are one polytope up to a
        relabelling (typical: many ingredients with default bounds). The key names that
        polytope; the returned order maps its coordinates to ingredients."""
        S = np.asarray(support, dtype=int)
        sig = [(self._lo[j], self._hi[j], tuple(self._G[:, j])) for j in S]
        order = sorted(range(len(S)), key=sig.__getitem__)
        return tuple(sig[i] for i in order), S[order]

    def _polytope(self, support) -> tuple[Polytope, np.ndarray]:
        key, S = self._canonical(support)
        poly = self._polytopes.get(key)
        if poly is None:
            m = len(S)
            A_eq, b_eq = [np.ones((1, m))], [[self.total]]
            A_ub = [-np.eye(m), np.eye(m)]
            b_ub = [-self._lo[S], self._hi[S]]
            if len(self.groups):
                GS = self._G[:, S]
                # Groups with min == max are equalities: saves the search for flat directions.
                eq = self._gmax - self._gmin <= TOL
                A_eq.append(GS[eq])
                b_eq.append(self._gmin[eq])
                A_ub += [GS[~eq], -GS[~eq]]
                b_ub += [self._gmax[~eq], -self._gmin[~eq]]
            poly = Polytope(np.vstack(A_eq), np.concatenate(b_eq), np.vstack(A_ub),
                            np.concatenate(b_ub), scale=self.total)
            self._polytopes[key] = poly
        return poly, S

    def _face_volumes(self, supports: np.ndarray) -> np.ndarray:
        """Relative (m−1)-volumes of each face's box-constrained slice {lo ≤ x ≤ hi, Σx = T}.

        Inclusion–exclusion over the ingredients whose range is narrower than the free amount
        ``R = T − Σ min``: V ∝ Σ_J (−1)^|J| (R − Σ_{j∈J} w_j)_+^(m−1) with ``w = max − min``
        (the density of a sum of uniforms). Returns None if that takes too many terms.
        """
        m = supports.shape[1]
        R = self.total - self._lo[self._always].sum()
        if R <= 0:
            return np.ones(len(supports))
        w = (self._hi - self._lo) / R
        if m == 1:
            return (w[supports[:, 0]] >= 1 - 1e-12).astype(float)
        memo: dict[tuple, float] = {}
        budget = [200_000]

        def volume(tight: tuple) -> float:
            terms: list[float] = []

            def walk(start: int, acc: float, sign: int) -> None:
                terms.append(sign * (1.0 - acc) ** (m - 1))
                budget[0] -= 1
                if budget[0] < 0:
                    raise OverflowError
                for i in range(start, len(tight)):
                    if acc + tight[i] >= 1.0:
                        break  # sorted: every later term vanishes too
                    walk(i + 1, acc + tight[i], -sign)

            walk(0, 0.0, 1)
            return max(math.fsum(terms), 0.0)

        out = np.empty(len(supports))
        try:
            for s, support in enumerate(supports):
                ws = w[support]
                tight = tuple(sorted(ws[ws < 1.0]))
                if tight not in memo:
                    memo[tight] = volume(tight)
                out[s] = memo[tight]
        except OverflowError:
            return None
        return out

    # -- sampling ------------------------------------------------------------------------------

    def _rejection_draws(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform face, uniform point above the minimums on it; keep exact-feasible pairs."""
        S = self._random_supports(size, rng)
        lo = self._lo[S]
        R = self.total - lo.sum(axis=1, keepdims=True)
        E = rng.exponential(size=S.shape)
        XS = lo + R * (E / E.sum(axis=1, keepdims=True))
        ok = (XS <= self._hi[S]).all(axis=1)
        X = np.zeros((size, len(self._names)))
        np.put_along_axis(X, S, XS, axis=1)
        if len(self.groups):
            G = X @ self._G.T
            ok &= ((G >= self._gmin) & (G <= self._gmax)).all(axis=1)
        return X[ok]

    def _hit_and_run(self, n: int, rng: np.random.Generator) -> np.ndarray:
        supports = self._supports()
        if supports is not None:
            weights = self._face_volumes(supports)
            if weights is None or weights.sum() <= 0:
                weights = np.ones(len(supports))
        X = np.zeros((n, len(self._names)))
        todo = np.arange(n)
        for _ in range(100):
            if not len(todo) or (supports is not None and weights.sum() <= 0):
                break
            if supports is not None:
                picks = rng.choice(len(supports), size=len(todo), p=weights / weights.sum())
                chosen = supports[picks]
            else:
                chosen = self._random_supports(len(todo), rng)
            # One hit-and-run batch per distinct polytope, mapped back face by face.
            batches: dict[tuple, list[int]] = {}
            orders = np.empty_like(chosen)
            for i, support in enumerate(chosen):
                key, orders[i] = self._canonical(support)
                batches.setdefault(key, []).append(i)
            keep = np.ones(len(todo), dtype=bool)
            for rows in batches.values():
                poly, _ = self._polytope(orders[rows[0]])
                if not poly.feasible:
                    keep[rows] = False
                    if supports is not None:
                        weights[picks[rows]] = 0.0
                    continue
                block = np.zeros((len(rows), len(self._names)))
                np.put_along_axis(block, orders[rows], poly.sample(len(rows), rng), axis=1)
                X[todo[rows]] = block
            todo = todo[~keep]
        if len(todo):
            raise DesignSpaceError("FormulationSpace: could not find feasible faces to sample")
        return X[rng.permutation(n)]

    def _sample_amounts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if n == 0:
            return np.zeros((0, len(self._names)))
        cap = max(10_000, 2_000_000 // len(self._names))  # draws per batch: ~16 MB arrays
        pilot_size = min(max(2048, 2 * n), cap)
        pilot = self._rejection_draws(pilot_size, rng)
        rate = len(pilot) / pilot_size
        if rate > 0 and n / rate <= MAX_REJECTION_DRAWS:
            self.sampler_ = "rejection (exactly uniform)"
            parts, have = [pilot[:n]], min(len(pilot), n)
            while have < n:
                size = min(int((n - have) / rate * 1.2) + 64, cap)
                more = self._rejection_draws(size, rng)[: n - have]
                parts.append(more)
                have += len(more)
            return np.vstack(parts)
        self.sampler_ = ("hit-and-run (faces drawn by box-constrained volume; "
                         "approximately uniform)")
        X = self._hit_and_run(n, rng)
        bad = ~self._mask(X)
        if bad.any():  # rounding on a nearly flat face: repair (moves points by ~1e-12)
            X[bad] = self._project_amounts(X[bad])
            if not self._mask(X).all():
                raise DesignSpaceError(
                    "FormulationSpace: the sampler produced blends outside the space (a nearly "
                    "degenerate face?); please report this space: " + repr(self)
                )
        return X

    def sample(self, n: int, rng=None) -> pd.DataFrame:
        """``n`` blends (and parameter settings) drawn uniformly; see the class docstring."""
        rng = _rng(rng)
        n = int(n)
        df = pd.DataFrame(self._sample_amounts(n, rng), columns=self._names)
        if self.parameters is not None:
            df = pd.concat([df, self.parameters.sample(n, rng)], axis=1)
        return df

    # -- repair --------------------------------------------------------------------------------

    def _relaxed_projection(self, support: np.ndarray, p: np.ndarray) -> np.ndarray | None:
        """Nearest point to ``p`` on the face ``support`` ignoring the groups (exact, cheap)."""
        S = np.asarray(support)
        lo, hi = self._lo[S], self._hi[S]
        if lo.sum() > self.total + TOL or hi.sum() < self.total - TOL:
            return None
        x = np.zeros(len(p))
        x[S] = project_box_simplex(p[S], lo, hi, self.total)
        return x

    def _groups_ok(self, x: np.ndarray) -> bool:
        g = self._G @ x
        return bool(((g >= self._gmin - TOL) & (g <= self._gmax + TOL)).all())

    def _project_on(self, support: np.ndarray, p: np.ndarray) -> np.ndarray | None:
        """Nearest point to ``p`` among blends whose active ingredients lie in ``support``."""
        poly, S = self._polytope(support)
        if not poly.feasible:
            return None
        x = np.zeros(len(p))
        x[S] = poly.project(p[S])
        return x

    def _project_row(self, p: np.ndarray, max_faces: int = 64) -> np.ndarray:
        supports = self._supports()
        sq = p**2
        if supports is not None:
            # ‖x − p‖² ≥ Σ_{j ∉ S} p_j²: try faces in order of that bound, stop when it exceeds
            # the best distance found (exact nearest point, up to max_faces faces).
            bound = sq.sum() - sq[supports].sum(axis=1)
            order = np.argsort(bound, kind="stable")
            candidates = [(bound[s], supports[s]) for s in order]
        else:
            ranked = self._optional[np.argsort(-p[self._optional], kind="stable")]
            chosen, rest = ranked[:self._m_opt], ranked[self._m_opt:]
            candidates = [(0.0, np.r_[self._always, chosen])]
            for out_j in range(len(chosen)):
                for in_j in rest[:5]:
                    swapped = chosen.copy()
                    swapped[out_j] = in_j
                    candidates.append((0.0, np.r_[self._always, swapped]))
        # Dropping the groups relaxes the problem, so the face's group-free projection (exact
        # and cheap) bounds its distance from below, and is the answer when it meets the groups.
        best, best_d, tried = None, np.inf, 0
        for lb, support in candidates:
            if lb >= best_d:
                break
            x = self._relaxed_projection(support, p)
            if x is None or np.sum((x - p) ** 2) >= best_d:
                continue
            if len(self.groups) and not self._groups_ok(x):
                if tried >= max_faces:
                    continue
                tried += 1
                x = self._project_on(support, p)
                if x is None:
                    continue
            d = float(np.sum((x - p) ** 2))
            if d < best_d:
                best, best_d = x, d
        if best is None:
            for support in self._random_supports(200, np.random.default_rng(0)):
                if self._relaxed_projection(support, p) is None:
                    continue
                best = self._project_on(support, p)
                if best is not None:
                    break
        if best is None:
            raise DesignSpaceError("FormulationSpace: no feasible face found to repair a blend")
        return best

    def _project_amounts(self, X: np.ndarray) -> np.ndarray:
        return np.array([self._project_row(p) for p in X]).reshape(X.shape)

    def project(self, df: pd.DataFrame) -> pd.DataFrame:
        """Map proposals to the nearest feasible blends (Euclidean distance on the amounts).

        Rows already inside the space are returned unchanged. For the others, faces (sets of at
        most ``max_components`` active ingredients) are tried in order of a lower bound on the
        distance (the amounts left out, then the distance with the groups dropped), so the
        result is the exact nearest point when the faces can be enumerated (≤ 20,000) and at
        most 64 of them need a constrained projection; with more faces, the face of the largest
        proposed amounts and its single swaps are tried. Parameters are clipped
        to their bounds and integers rounded.
        """
        X = self._amounts(df)
        bad_rows = ~np.isfinite(X).all(axis=1)
        if bad_rows.any():
            raise DesignSpaceError(
                f"cannot repair row {df.index[int(np.flatnonzero(bad_rows)[0])]!r}: "
                f"an ingredient amount is missing or not a number"
            )
        out = df.copy()
        todo = ~self._mask(X)
        if todo.any():
            X = X.copy()
            X[todo] = self._project_amounts(X[todo])
            if not self._mask(X).all():
                row = df.index[int(np.flatnonzero(~self._mask(X))[0])]
                raise DesignSpaceError(
                    f"FormulationSpace: could not repair row {row!r} (a nearly degenerate "
                    f"face?); please report this space: {self!r}"
                )
            out[self._names] = X
        if self.parameters is not None:
            out = self.parameters.project(out)
        return out

    repair = project

    def round(self, df: pd.DataFrame) -> pd.DataFrame:
        """Blends (inside the space) on the grid of ``step``, still inside the space: the
        amounts sum exactly to the total (as integers of steps) and meet every bound, group and
        ``max_components`` (see the class docstring); parameters on their own grids.

        Rows that plain rounding would push outside go to the nearest feasible grid point, at
        most :data:`MAX_GRID_PROGRAMS` of them per call: the others are dropped, and
        ``rounding_`` says how many (a sample of candidates loses nothing it needs)."""
        out = df.copy()
        self.rounding_ = None
        step = self.resolution
        if step is not None and len(df):
            X = self._amounts(df)
            if not self._mask(X).all():
                raise DesignSpaceError("FormulationSpace.round takes blends inside the space; "
                                       "project() the others first")
            k, stuck = self._round_amounts(X)
            A = _on_grid(k, step)
            bad = stuck | ~self._mask(A)
            drop = np.zeros(len(df), dtype=bool)
            for n_done, i in enumerate(np.flatnonzero(bad)):
                kk = self._grid_program(X[i] / step) if n_done < MAX_GRID_PROGRAMS else None
                if kk is None:
                    drop[i] = True
                else:
                    A[i] = _on_grid(kk, step)
            if bad.any():
                self.rounding_ = (f"{int(bad.sum())} of {len(df)} blends moved to the nearest "
                                  f"feasible grid point"
                                  + (f", {int(drop.sum())} dropped" if drop.any() else ""))
            out[self._names] = A
            out = out[~drop]
        if self.parameters is not None:
            out = self.parameters.round(out)
        return out


_SPACES: dict[str, type[DesignSpace]] = {
    "DiscretePool": DiscretePool,
    "CompositionPool": CompositionPool,
    "ParameterSpace": ParameterSpace,
    "FormulationSpace": FormulationSpace,
}
