"""Unit checks and conversion to a property's canonical unit, with pint.

matforge's registry adds two counting units to pint's defaults: ``atom`` and ``formula_unit``
(alias ``fu``), each a dimension of its own. So ``meV/atom`` converts to ``eV/atom``, but
``eV`` (a total energy) and ``eV/fu`` are refused for an ``eV/atom`` property instead of being
silently taken as equal.
"""

from __future__ import annotations

import functools

import numpy as np

from matforge.errors import UnitError


@functools.cache
def registry():
    """The process-wide pint registry (built on first use: importing pint takes ~0.4 s).

    pint's parsed definitions are cached on disk (its own user cache folder), which makes
    building the registry ~0.2 s faster from the second process on; without a writable cache
    folder it is built from the definitions file as before."""
    import pint

    try:
        ureg = pint.UnitRegistry(cache_folder=":auto:")
    except OSError:  # no writable cache folder
        ureg = pint.UnitRegistry()
    ureg.define("atom = [atom_count]")
    ureg.define("formula_unit = [formula_unit_count] = fu")
    return ureg


@functools.cache
def _parse(unit: str):
    import pint

    try:
        return registry().parse_units(unit.strip() or "dimensionless")
    except pint.UndefinedUnitError:
        raise UnitError(f"unknown unit '{unit}'") from None
    except Exception:  # pint raises several unrelated types for malformed strings
        raise UnitError(f"malformed unit '{unit}'") from None


def check_unit(unit: str, canonical: str, *, property: str) -> None:
    """Raise :class:`UnitError` unless ``unit`` is a pint unit convertible to ``canonical``."""
    parsed = _parse(unit)
    target = _parse(canonical)
    if parsed.dimensionality != target.dimensionality:
        raise UnitError(
            f"unit '{unit}' ({parsed.dimensionality}) is not compatible with the canonical "
            f"unit of property '{property}', '{canonical}' ({target.dimensionality})"
        )
    try:  # e.g. degC/min: pint refuses offset units inside compound units
        registry().Quantity(1.0, parsed).to(target)
        delta_to_canonical(np.ones(1), unit, canonical)
    except Exception as exc:
        raise UnitError(f"cannot convert '{unit}' to '{canonical}': {exc}") from None


def to_canonical(values: np.ndarray, unit: str, canonical: str) -> np.ndarray:
    """Convert absolute values from ``unit`` to ``canonical`` (offsets applied: 25 degC -> 298.15 K)."""
    values = np.asarray(values, dtype=float)
    if unit == canonical:
        return values
    q = registry().Quantity(values, _parse(unit))
    return np.asarray(q.to(_parse(canonical)).magnitude, dtype=float)


def delta_to_canonical(values: np.ndarray, unit: str, canonical: str) -> np.ndarray:
    """Convert differences (uncertainties) from ``unit`` to ``canonical``: scale, no offset.

    A 0.5 degC uncertainty is 0.5 K, not 273.65 K; 0.9 degF is 0.5 K.
    """
    values = np.asarray(values, dtype=float)
    if unit == canonical:
        return values
    Q = registry().Quantity
    # The difference of two quantities is a delta quantity (delta_degC for degC, the unit
    # itself for multiplicative units), which pint converts without an offset.
    delta = Q(values, _parse(unit)) - Q(np.zeros_like(values), _parse(unit))
    zero = Q(0.0, _parse(canonical))
    return np.asarray(delta.to((zero - zero).units).magnitude, dtype=float)
