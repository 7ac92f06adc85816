"""What an experiment costs, so that a campaign can ask for the most promise per unit cost.

A :class:`CostModel` prices a candidate experiment in the lab's own unit (euros, hours of
furnace time, ...) from up to three parts, summed:

* ``column``: a column of a candidate pool holding each candidate's cost (a quote, a
  synthesis time), for :class:`~matforge.design.spaces.DiscretePool` and
  :class:`~matforge.design.campaign.CompositionPool` spaces;
* ``ingredients``: a price per unit amount of each ingredient of a
  :class:`~matforge.design.spaces.FormulationSpace` (amounts in the units of its ``total``:
  euros per gram for a batch of 50 g), unpriced ingredients costing nothing;
* ``per_experiment``: a fixed cost added to every experiment.

With costs, :func:`~matforge.design.strategy.propose` divides the acquisition by the cost of
each candidate (expected improvement per unit cost, Snoek et al. 2012): a candidate twice as
expensive must promise twice as much. Every cost must be finite and ≥ 0, and every candidate's
total must be > 0 (a free experiment would have an infinite score): refused otherwise, naming
the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from matforge.errors import DesignSpaceError

__all__ = ["CostModel", "parse_ingredient_costs"]


def _cost(value, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DesignSpaceError(f"{what}: {value!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(x):
        raise DesignSpaceError(f"{what}: {value!r} is not a finite number")
    if x < 0:
        raise DesignSpaceError(f"{what}: {value!r} is negative; a cost is ≥ 0")
    return x


@dataclass(frozen=True)
class CostModel:
    """Cost of each candidate experiment (see the module docstring)."""

    column: str | None = None
    ingredients: Mapping[str, float] = field(default_factory=dict)
    per_experiment: float = 0.0
    unit: str | None = None

    def __post_init__(self):
        if self.column is not None and (not isinstance(self.column, str) or not self.column):
            raise DesignSpaceError(f"cost column must be a column name, got {self.column!r}")
        if not isinstance(self.ingredients, Mapping):
            raise DesignSpaceError("ingredient costs must be a mapping {ingredient: price}")
        prices = {
            str(k): _cost(v, f"cost of ingredient {k!r}") for k, v in self.ingredients.items()
        }
        object.__setattr__(self, "ingredients", prices)
        object.__setattr__(
            self, "per_experiment", _cost(self.per_experiment, "cost per experiment")
        )
        if self.column is None and not prices and self.per_experiment == 0:
            raise DesignSpaceError(
                "a cost model needs a cost column, ingredient prices or a cost per experiment"
            )

    def check(self, space) -> None:
        """Raise :class:`DesignSpaceError` unless this model prices every candidate of
        ``space`` at a finite cost > 0: the column exists in a pool and holds numbers ≥ 0,
        priced ingredients are ingredients of a formulation space, and no blend can be free."""
        from matforge.design.spaces import FormulationSpace

        if self.column is not None:
            df = getattr(space, "df", None)
            if df is None:
                raise DesignSpaceError(
                    f"a cost column ({self.column!r}) gives each candidate's cost, so it needs a "
                    f"pool of candidates; for blends give ingredient prices, for any space a cost "
                    f"per experiment"
                )
            if self.column not in df.columns:
                raise DesignSpaceError(
                    f"no cost column {self.column!r} in the candidates; have {list(df.columns)}"
                )
            self.costs(df, source="the candidate pool")
        if self.ingredients:
            if not isinstance(space, FormulationSpace):
                raise DesignSpaceError("ingredient prices need a formulation space")
            unknown = [k for k in self.ingredients if k not in space.ingredient_names]
            if unknown:
                raise DesignSpaceError(
                    f"prices for {unknown}, which are not ingredients; the ingredients are "
                    f"{space.ingredient_names}"
                )
            free = [i for i in space.ingredient_names if self.ingredients.get(i, 0.0) == 0]
            if free and self.per_experiment == 0 and self.column is None:
                raise DesignSpaceError(
                    f"ingredient(s) {free} cost nothing, so a blend of them would be free and "
                    f"score infinitely per unit cost; price them or add a cost per experiment"
                )

    def costs(
        self, df: pd.DataFrame, source: str = "candidates", strict: bool = True
    ) -> np.ndarray:
        """(n,) cost of each row of ``df``; raises naming the first row (1-based) whose cost
        is missing, not a number, negative or 0 in total (``strict=False``: NaN for such rows,
        e.g. to add up what was spent on experiments recorded without their cost)."""
        n = len(df)
        total = np.full(n, self.per_experiment, dtype=float)
        if self.column is not None:
            if self.column not in df.columns:
                if not strict:
                    return np.full(n, np.nan)
                raise DesignSpaceError(f"{source}: no cost column {self.column!r}")
            raw = df[self.column]
            col = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(col) | (col < 0)
            if bad.any() and not strict:
                col = np.where(bad, np.nan, col)
            elif bad.any():
                i = int(np.flatnonzero(bad)[0])
                value = raw.iloc[i]
                value = value.item() if isinstance(value, np.generic) else value
                why = (
                    "is missing"
                    if pd.isna(value)
                    else "is negative"
                    if np.isfinite(col[i])
                    else "is not a finite number"
                )
                raise DesignSpaceError(
                    f"{source}: cost column {self.column!r}, row {i + 1}: {value!r} {why}; a "
                    f"cost is a number ≥ 0"
                )
            total = total + col
        if self.ingredients:
            names = list(self.ingredients)
            missing = [c for c in names if c not in df.columns]
            if missing:
                if not strict:
                    return np.full(n, np.nan)
                raise DesignSpaceError(f"{source}: no amount column(s) {missing} to price")
            A = df[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
            total = total + A @ np.array([self.ingredients[c] for c in names])
        if not strict:
            return total
        zero = ~(total > 0)
        if zero.any():
            i = int(np.flatnonzero(zero)[0])
            raise DesignSpaceError(
                f"{source}: row {i + 1} costs {total[i]:g}; acquisition per unit cost needs every "
                f"experiment to cost more than 0 (add a cost per experiment)"
            )
        return total

    def as_dict(self) -> dict:
        return {
            "column": self.column,
            "ingredients": dict(self.ingredients),
            "per_experiment": self.per_experiment,
            "unit": self.unit,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> CostModel:
        return cls(
            column=d.get("column"),
            ingredients=d.get("ingredients") or {},
            per_experiment=d.get("per_experiment", 0.0),
            unit=d.get("unit"),
        )

    def __str__(self) -> str:
        parts = []
        if self.per_experiment:
            parts.append(f"{self.per_experiment:g} per experiment")
        if self.column:
            parts.append(f"column {self.column!r}")
        if self.ingredients:
            parts.append(
                ", ".join(f"{k} {v:g}" for k, v in self.ingredients.items()) + " per unit amount"
            )
        unit = f" ({self.unit})" if self.unit else ""
        return " + ".join(parts) + unit


def parse_ingredient_costs(items) -> dict[str, float]:
    """``NAME=PRICE`` texts (``--ingredient-cost``) as ``{name: price}``."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        name = name.strip()
        if not sep or not name:
            raise DesignSpaceError(f"ingredient cost {item!r}: expected NAME=PRICE (pcbm=120)")
        if name in out:
            raise DesignSpaceError(f"ingredient cost given twice for {name!r}")
        out[name] = _cost(value.strip(), f"ingredient cost {item!r}")
    return out
