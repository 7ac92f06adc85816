"""Process parameters (:class:`Continuous`, :class:`Integer`, :class:`Ordinal`,
:class:`Categorical`) and the space they span, :class:`ParameterSpace`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from matforge.design.spaces.base import (
    TOL,
    DesignSpace,
    _check_name,
    _check_step,
    _finite,
    _fmt,
    _json_value,
    _require_columns,
    _rng,
    _round_significant,
    _round_to_step,
    _row_frame,
    _show,
    _steps,
    default_step,
)
from matforge.errors import DesignSpaceError

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
