"""The interface every design space follows (:class:`DesignSpace`), its one deserialiser
(:func:`space_from_dict`), and the tolerance, grid and validation helpers the spaces share.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import numpy as np
import pandas as pd

from matforge.errors import DesignSpaceError

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



#: every concrete space by its ``"@class"`` name (filled in by :mod:`matforge.design.spaces`)
_SPACES: dict[str, type[DesignSpace]] = {}
