"""Descriptors of bimetallic surfaces for adsorption-energy models.

Two descriptor sets:

* :data:`MA_DESCRIPTORS` — the 13 electronic and atomic descriptors of Ma et al. (J. Phys. Chem.
  Lett. 6, 3528, 2015), five of them moments of the DFT d band of the surface atoms. They exist
  for the bundled surfaces only: a new surface needs a DFT calculation first.
* :func:`dft_free_descriptors` — needs no DFT at all: tabulated element properties (matforge's
  element table, :mod:`matforge.chem.elements`) of the adsorption-site metal, the top layer and
  the guest metal, the surface type, the lattice strain imposed by the host, and the d-band
  moments of a tight-binding model (:func:`tight_binding_dband`).

The tight-binding model (:func:`tight_binding_dband`) is the second-moment approximation of a
d band (Cyrot-Lackmann; Ducastelle, *Order and Phase Stability in Alloys*, 1991): the squared
width of the local d band of an atom is the sum over its neighbours of the squared d–d hopping
integrals, which scale with distance and orbital size as Harrison's ``V ∝ (r_i r_j)^{3/2} / d^5``
(W. A. Harrison, *Electronic Structure and the Properties of Solids*, 1980, ch. 20). The band
centre follows from the rectangular-band model at fixed d filling (charge neutrality of the
surface atom), ``ε_d = W (1/2 − f)``, used by Ruban, Hammer, Stoltze, Skriver and Nørskov (J.
Mol. Catal. A 115, 421, 1997) to explain the d-band shifts of overlayers. Orbital radii ``r_i``
are the d-orbital radii of Zunger's pseudopotentials (``ZungerPP-r_d`` in the Magpie table),
lattice constants the Magpie fcc estimates (``GSestFCClatcnt``), the d filling
``f = (column − 1)/10`` (one s electron per atom). Because these radii are not Harrison's own,
widths are reported relative to the pure top metal's bulk (``tb_width_ratio``) and the centre
in units of that bulk width (``tb_center``): a trend, not an absolute energy. (The Xin group's
``tbdmm`` package on PyPI computes such moments from structures; version 0.1.0 of December
2024 has no releases or users since, so it is not a dependency.)

Every function is vectorised over a list of surfaces and returns a DataFrame in their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from matforge.catalysis.surfaces import Surface, parse_surface
from matforge.errors import CatalysisError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "DFT_FREE_ELEMENT_PROPERTIES",
    "MA_DESCRIPTORS",
    "as_surfaces",
    "dft_free_descriptors",
    "tight_binding_dband",
]

#: The 13 descriptors of Ma et al. (2015), as columns of the ``catalysis_ma2015_co`` dataset.
MA_DESCRIPTORS: tuple[str, ...] = (
    "filling_of_a_d-band",
    "center_of_a_d-band",
    "width_of_a_d-band",
    "skewness_of_a_d-band",
    "kurtosis_of_a_d-band",
    "work_function",
    "atomic_radius",
    "spatial_extent_of_d-orbitals",
    "ionization_potential",
    "electron_affinity",
    "pauling_electronegativity",
    "local_pauling_electronegativity",
    "d_coupling_matrix",
)

#: Element-table columns used for the site, top-layer and guest metals (units in
#: :mod:`matforge.chem.elements`): d electrons, group, period, Pauling electronegativity,
#: first ionisation energy (eV), Miedema work-function parameter phi (V), fcc lattice estimate
#: (Å), Zunger d radius (a.u.), melting point (K), Miedema electron density n_ws^(1/3),
#: covalent radius (pm), ground-state DFT energy per atom of the element (OQMD, eV/atom; a
#: tabulated cohesion proxy, see :data:`matforge.catalysis.model.LEVEL_DESCRIPTORS`).
DFT_FREE_ELEMENT_PROPERTIES: tuple[str, ...] = (
    "NdValence",
    "Column",
    "Row",
    "pauling_en",
    "FirstIonizationEnergy",
    "phi",
    "GSestFCClatcnt",
    "ZungerPP-r_d",
    "MeltingT",
    "n_ws^third",
    "CovalentRadius",
    "GSenergy_pa",
)

_TYPES = ("overlayer", "subsurface", "intermetallic", "single_atom")


def as_surfaces(surfaces) -> list[Surface]:
    """Surfaces from :class:`Surface` objects or notation strings (errors name the bad item)."""
    if isinstance(surfaces, str | Surface):
        surfaces = [surfaces]
    out = []
    for i, s in enumerate(surfaces):
        out.append(s if isinstance(s, Surface) else parse_surface(str(s), source=f"item {i}"))
    return out


def _table(symbols: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    from matforge.chem.elements import element_table

    t = element_table()
    X = t.loc[list(symbols), list(columns)].to_numpy(dtype=float)
    if np.isnan(X).any():
        bad = sorted({(symbols[i], columns[j]) for i, j in zip(*np.nonzero(np.isnan(X)), strict=True)})
        raise CatalysisError(f"the element table has no value for {bad[:5]}")
    return X


def _site(s: Surface) -> str:
    """The metal atom the adsorbate sits on: the isolated atom of a single-atom alloy, else the
    top layer's."""
    return s.guest if s.surface_type == "single_atom" else s.top


def tight_binding_dband(surfaces) -> pd.DataFrame:
    """Second-moment tight-binding d-band estimates of the adsorption-site atom.

    Columns: ``tb_width_ratio`` (local d-band width over the bulk width of the pure site metal,
    dimensionless), ``tb_center`` (rectangular-band centre ``W (1/2 − f)`` in units of that bulk
    width; negative = below the Fermi level), ``tb_filling`` (``f``), ``strain`` (host lattice
    constant over the site metal's, minus 1). See the module docstring for the model and its
    sources.

    Geometry, fcc(100) (12 bulk neighbours): a surface atom has 4 neighbours in its layer and 4
    in the layer below, at the host's nearest-neighbour distance (pseudomorphic growth: the
    host fixes the spacing). Layer below: the guest for overlayers and subsurface alloys, T3B
    averaged (3/4 T, 1/4 B) for intermetallics, the majority metal for single atoms (whose
    in-plane neighbours are the majority metal too).
    """
    import pandas as pd

    surfaces = as_surfaces(surfaces)
    n = len(surfaces)
    site = [_site(s) for s in surfaces]
    elements = sorted({e for s in surfaces for e in (s.top, s.guest)})
    props = dict(zip(elements, _table(elements, ["ZungerPP-r_d", "GSestFCClatcnt", "Column"]),
                     strict=True))
    r = {e: props[e][0] for e in elements}
    a = {e: props[e][1] for e in elements}
    width = np.empty(n)
    strain = np.empty(n)
    filling = np.empty(n)
    for i, s in enumerate(surfaces):
        t, g, x = s.top, s.guest, site[i]
        if s.surface_type == "overlayer":
            a_host, plane, below = a[g], [(t, 1.0)], [(g, 1.0)]
        elif s.surface_type == "subsurface":
            a_host, plane, below = a[t], [(t, 1.0)], [(g, 1.0)]
        elif s.surface_type == "intermetallic":
            a_host = 0.75 * a[t] + 0.25 * a[g]  # Vegard's law for T3B
            plane, below = [(t, 1.0)], [(t, 0.75), (g, 0.25)]
        else:  # single atom x = g in the top layer of t
            a_host, plane, below = a[t], [(t, 1.0)], [(t, 1.0)]
        d = a_host / np.sqrt(2.0)
        d_bulk = a[x] / np.sqrt(2.0)

        def beta2(other: str, dist: float, _x=x) -> float:
            return (r[_x] * r[other]) ** 3 / dist**10

        mu2 = 4 * sum(w * beta2(e, d) for e, w in plane) + 4 * sum(w * beta2(e, d) for e, w in below)
        mu2_bulk = 12 * beta2(x, d_bulk)
        width[i] = np.sqrt(mu2 / mu2_bulk)
        strain[i] = a_host / a[x] - 1.0
        filling[i] = np.clip((props[x][2] - 1.0) / 10.0, 0.0, 1.0)
    return pd.DataFrame(
        {
            "tb_width_ratio": width,
            "tb_center": width * (0.5 - filling),
            "tb_filling": filling,
            "strain": strain,
        }
    )


def dft_free_descriptors(surfaces) -> pd.DataFrame:
    """Descriptors of ``surfaces`` (objects or notations) that need no DFT calculation.

    Columns: ``site_<prop>``, ``top_<prop>``, ``guest_<prop>`` for each of
    :data:`DFT_FREE_ELEMENT_PROPERTIES`; ``guest_minus_site_<prop>`` for electronegativity,
    d electrons and lattice constant; the one-hot ``type_<surface_type>``; the
    tight-binding d-band moments and strain of :func:`tight_binding_dband`.
    """
    import pandas as pd

    surfaces = as_surfaces(surfaces)
    if not surfaces:
        raise CatalysisError("no surfaces given")
    cols = list(DFT_FREE_ELEMENT_PROPERTIES)
    parts = {}
    for role, symbols in (
        ("site", [_site(s) for s in surfaces]),
        ("top", [s.top for s in surfaces]),
        ("guest", [s.guest for s in surfaces]),
    ):
        X = _table(symbols, cols)
        for j, c in enumerate(cols):
            parts[f"{role}_{c}"] = X[:, j]
    for c in ("pauling_en", "NdValence", "GSestFCClatcnt"):
        parts[f"guest_minus_site_{c}"] = parts[f"guest_{c}"] - parts[f"site_{c}"]
    for t in _TYPES:
        parts[f"type_{t}"] = np.array([s.surface_type == t for s in surfaces], dtype=float)
    out = pd.DataFrame(parts)
    tb = tight_binding_dband(surfaces)
    return pd.concat([out, tb], axis=1)
