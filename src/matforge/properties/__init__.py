"""Physics formulas on predicted properties, with Monte Carlo uncertainty propagation.

>>> from matforge.properties import vickers_hardness_chen
>>> round(float(vickers_hardness_chen(443.0, 535.0)), 1)     # diamond, GPa
95.4

* :mod:`matforge.properties.mechanical` — Vickers hardness from bulk and shear moduli (Chen 2011,
  Tian 2012) and Pugh's ratio; all moduli and hardnesses in GPa.
* :mod:`matforge.properties.derived` — :class:`DerivedProperty` (a named formula over named model
  outputs) and the registry of the built-in ones (``hardness_vickers``, ``hardness_chen``,
  ``hardness_tian``, ``pugh_ratio``, ``poisson_ratio``).
* :mod:`matforge.properties.propagation` — :class:`Predictive` distributions of model outputs
  (normal, or log-normal for models of log10 targets) and :func:`propagate`, seeded Monte Carlo
  with common random numbers so results do not depend on how rows are batched.

numpy only: importing this package is cheap.
"""

from matforge.properties.derived import DERIVED, DerivedProperty, get_derived
from matforge.properties.mechanical import (
    mechanically_plausible,
    poisson_ratio,
    pugh_ratio,
    vickers_hardness_chen,
    vickers_hardness_tian,
)
from matforge.properties.propagation import Predictive, normal_draws, propagate

__all__ = [
    "DERIVED",
    "DerivedProperty",
    "Predictive",
    "get_derived",
    "mechanically_plausible",
    "normal_draws",
    "poisson_ratio",
    "propagate",
    "pugh_ratio",
    "vickers_hardness_chen",
    "vickers_hardness_tian",
]
