"""Hardness and ductility from elastic moduli (all in GPa).

With ``B`` the bulk and ``G`` the shear modulus (Voigt-Reuss-Hill averages) and ``k = G / B``
(the inverse of Pugh's ratio):

* Chen et al. (2011): ``Hv = 2 (k² G)^0.585 − 3``. Fitted on 39 hard and superhard compounds;
  it goes below zero for soft, ductile materials (``Hv = −3`` at ``G = 0``) and is returned as
  the formula gives it, so rankings stay monotonic.
* Tian et al. (2012): ``Hv = 0.92 k^1.137 G^0.708``, always ≥ 0.
* Pugh (1954): ``B / G``; above ~1.75 a material tends to be ductile, below it brittle.

Both hardness models were fitted on ordinary solids (``k`` up to ~1.2, diamond); as ``k``
grows past the isotropic bound they explode (``k = 5`` multiplies ``Hv`` by ~25), which is how
a poor modulus prediction for a molecular crystal would otherwise top a ranking.
:func:`mechanically_plausible` (``B > 0``, ``G > 0``, Poisson's ratio ``ν = (3B − 2G) /
(6B + 2G) ≥ 0``, i.e. ``k ≤ 1.5``) is the domain the derived properties of
:mod:`matforge.properties.derived` keep; outside it they give NaN.

Inputs broadcast as numpy arrays; non-positive moduli give NaN where a power of a negative
number would be taken.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "mechanically_plausible",
    "poisson_ratio",
    "pugh_ratio",
    "vickers_hardness_chen",
    "vickers_hardness_tian",
]

CHEN_2011 = (
    "@article{chen2011hardness, title={Modeling hardness of polycrystalline materials and bulk "
    "metallic glasses}, author={Chen, Xing-Qiu and Niu, Haiyang and Li, Dianzhong and Li, Yiyi}, "
    "journal={Intermetallics}, volume={19}, number={9}, pages={1275--1281}, year={2011}, "
    "doi={10.1016/j.intermet.2011.03.026}}"
)
TIAN_2012 = (
    "@article{tian2012microscopic, title={Microscopic theory of hardness and design of novel "
    "superhard crystals}, author={Tian, Yongjun and Xu, Bo and Zhao, Zhisheng}, "
    "journal={International Journal of Refractory Metals and Hard Materials}, volume={33}, "
    "pages={93--106}, year={2012}, doi={10.1016/j.ijrmhm.2012.02.021}}"
)


def _moduli(bulk_modulus, shear_modulus) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(bulk_modulus, dtype=np.float64)
    g = np.asarray(shear_modulus, dtype=np.float64)
    return b, g


def vickers_hardness_chen(bulk_modulus, shear_modulus) -> np.ndarray:
    """Vickers hardness (GPa) by Chen et al. (2011): ``2 (k² G)^0.585 − 3``, ``k = G/B``.

    ``bulk_modulus`` and ``shear_modulus`` in GPa (arrays broadcast). Diamond (B = 443, G = 535)
    gives ≈ 95 GPa (measured: 96 ± 5).
    """
    b, g = _moduli(bulk_modulus, shear_modulus)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = g / b
        return 2.0 * np.power(k * k * g, 0.585) - 3.0


def vickers_hardness_tian(bulk_modulus, shear_modulus) -> np.ndarray:
    """Vickers hardness (GPa) by Tian et al. (2012): ``0.92 k^1.137 G^0.708``, ``k = G/B``.

    Moduli in GPa. Diamond (B = 443, G = 535) gives ≈ 97 GPa.
    """
    b, g = _moduli(bulk_modulus, shear_modulus)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = g / b
        return 0.92 * np.power(k, 1.137) * np.power(g, 0.708)


def pugh_ratio(bulk_modulus, shear_modulus) -> np.ndarray:
    """Pugh's ratio ``B / G`` (dimensionless); > 1.75 suggests ductile, < 1.75 brittle."""
    b, g = _moduli(bulk_modulus, shear_modulus)
    with np.errstate(divide="ignore", invalid="ignore"):
        return b / g


def poisson_ratio(bulk_modulus, shear_modulus) -> np.ndarray:
    """Isotropic Poisson's ratio ``(3B − 2G) / (6B + 2G)`` (dimensionless)."""
    b, g = _moduli(bulk_modulus, shear_modulus)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (3.0 * b - 2.0 * g) / (6.0 * b + 2.0 * g)


def mechanically_plausible(bulk_modulus, shear_modulus) -> np.ndarray:
    """``B > 0``, ``G > 0`` and Poisson's ratio ≥ 0 (``G/B ≤ 1.5``): ordinary, stable solids."""
    b, g = _moduli(bulk_modulus, shear_modulus)
    return (b > 0) & (g > 0) & (g <= 1.5 * b)
