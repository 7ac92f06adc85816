"""Plain, strict JSON from the values matforge hands around: the one sanitising rule.

Model cards, campaign states, benchmark results and API answers are written as strict JSON
(PostgreSQL's JSON and browsers' ``JSON.parse`` have no NaN or infinity), so every writer passes
its document through :func:`to_jsonable` first.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import numpy as np

__all__ = ["finite_or_none", "to_jsonable"]


def finite_or_none(x: Any) -> float | None:
    """``float(x)``, or None when it is NaN, infinite or not a number at all."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars become Python numbers, NaN and infinities
    None, tuples lists, dict keys strings, dates ISO 8601 text, a
    scikit-learn estimator its class and parameters; any other object its ``repr``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, _dt.date | _dt.datetime):  # pandas Timestamps too
        return value.isoformat()
    if hasattr(value, "get_params"):
        return {
            "class": f"{type(value).__module__}.{type(value).__qualname__}",
            "params": to_jsonable(value.get_params(deep=False)),
        }
    return repr(value)
