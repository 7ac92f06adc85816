"""Named formulas over named model outputs: what a screen computes after predicting.

A :class:`DerivedProperty` says which columns it reads (``inputs``, e.g. ``bulk_modulus`` and
``shear_modulus`` in GPa) and how to combine them; :data:`DERIVED` holds the built-in ones:

==================  ==================================================  ======
``hardness_vickers`` Vickers hardness, Chen et al. (2011) model           GPa
``hardness_chen``    same as ``hardness_vickers``                         GPa
``hardness_tian``    Vickers hardness, Tian et al. (2012) model           GPa
``pugh_ratio``       B / G (Pugh 1954)                                    —
``poisson_ratio``    (3B − 2G) / (6B + 2G)                                —
==================  ==================================================  ======

The hardness entries are NaN outside :func:`~matforge.properties.mechanical.mechanically_plausible`
(negative Poisson's ratio, non-positive moduli), where the empirical models do not apply; in a
Monte Carlo those samples are left out, and a row none of whose samples is plausible gets NaN
(and is not ranked).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from matforge.properties.mechanical import (
    CHEN_2011,
    TIAN_2012,
    mechanically_plausible,
    poisson_ratio,
    pugh_ratio,
    vickers_hardness_chen,
    vickers_hardness_tian,
)

__all__ = ["DERIVED", "DerivedProperty", "get_derived"]


@dataclass(frozen=True)
class DerivedProperty:
    """``name = function(*[column[i] for i in inputs])``, vectorised over numpy arrays.

    ``function`` must be a module-level function (so a screen can ship it to worker processes)
    that broadcasts over arrays of any shape (rows, or rows × Monte Carlo samples).
    """

    name: str
    function: Callable[..., np.ndarray]
    inputs: tuple[str, ...]
    unit: str = ""
    description: str = ""
    citations: tuple[str, ...] = field(default=())

    def __call__(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Evaluate on ``columns`` (a mapping holding every name in ``inputs``)."""
        return self.function(*(columns[name] for name in self.inputs))


_MODULI = ("bulk_modulus", "shear_modulus")


def hardness_chen_plausible(bulk_modulus, shear_modulus) -> np.ndarray:
    """Chen hardness (GPa), NaN where the moduli are not mechanically plausible."""
    hv = vickers_hardness_chen(bulk_modulus, shear_modulus)
    return np.where(mechanically_plausible(bulk_modulus, shear_modulus), hv, np.nan)


def hardness_tian_plausible(bulk_modulus, shear_modulus) -> np.ndarray:
    """Tian hardness (GPa), NaN where the moduli are not mechanically plausible."""
    hv = vickers_hardness_tian(bulk_modulus, shear_modulus)
    return np.where(mechanically_plausible(bulk_modulus, shear_modulus), hv, np.nan)


DERIVED: dict[str, DerivedProperty] = {
    p.name: p
    for p in (
        DerivedProperty(
            "hardness_vickers", hardness_chen_plausible, _MODULI, "GPa",
            "Vickers hardness from B and G, Chen et al. (2011)", (CHEN_2011,),
        ),
        DerivedProperty(
            "hardness_chen", hardness_chen_plausible, _MODULI, "GPa",
            "Vickers hardness from B and G, Chen et al. (2011)", (CHEN_2011,),
        ),
        DerivedProperty(
            "hardness_tian", hardness_tian_plausible, _MODULI, "GPa",
            "Vickers hardness from B and G, Tian et al. (2012)", (TIAN_2012,),
        ),
        DerivedProperty("pugh_ratio", pugh_ratio, _MODULI, "", "Pugh's ratio B/G"),
        DerivedProperty("poisson_ratio", poisson_ratio, _MODULI, "", "isotropic Poisson's ratio"),
    )
}  # fmt: skip


def get_derived(spec: str | DerivedProperty) -> DerivedProperty:
    """A :class:`DerivedProperty` from its registered name (or the object itself)."""
    if isinstance(spec, DerivedProperty):
        return spec
    try:
        return DERIVED[spec]
    except (KeyError, TypeError):
        from matforge.errors import MatforgeError

        raise MatforgeError(
            f"unknown derived property {spec!r}; known: {', '.join(DERIVED)}"
        ) from None
