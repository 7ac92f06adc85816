"""Activity volcanoes from adsorption energies, with the source of every coefficient.

* **CO2 reduction** (:data:`CO2R_WINDOW`): the optimal CO binding-energy window −0.7 to
  −0.5 eV, the volcano peak used with the Ma et al. (2015) surfaces by Kavalsky et al.
  (Digital Discovery 2023, doi:10.1039/D2DD00133K; their ``sequential_learning.py`` default
  ``target_window=[-0.7, -0.5]``, "the volcano peak that is relevant for CO2 reduction
  reaction"). Cu(100) itself binds CO at −0.63 eV in the data, inside the window. No rate
  model is implied: the "activity" plotted is minus the distance to the window (eV).
* **Hydrogen evolution**: ``ΔG_H* = ΔE_H* + 0.24 eV`` (zero-point and entropy correction) and
  the exchange current ``i0 ∝ 1 / (1 + exp(|ΔG_H*| / kT))`` of the kinetic model of Nørskov,
  Bligaard, Logadottir, Kitchin, Chen, Pandelov and Stimming, J. Electrochem. Soc. 152, J23
  (2005); the peak is at ``ΔG_H* = 0``.
* **Oxygen reduction** (4 e⁻, associative): limiting potential of the computational hydrogen
  electrode, ``U_L = min(4.92 − ΔG_OOH, ΔG_OOH − ΔG_O, ΔG_O − ΔG_OH, ΔG_OH)`` (Nørskov et al.,
  J. Phys. Chem. B 108, 17886, 2004; 4.92 eV = 4 × 1.23 eV), with free-energy corrections
  ``ΔZPE − TΔS`` of +0.35 (OH*), +0.05 (O*), +0.40 eV (OOH*) from that paper's Table 1 and the
  scaling relation ``ΔG_OOH* = ΔG_OH* + 3.2 eV`` (Man et al., ChemCatChem 3, 1159, 2011) when
  OOH* is not computed. Needs O* and OH* energies (referenced to H2O and H2), which only an
  oracle or the user's data provide.

Energies in eV throughout; adsorption energies are referenced as in the data they come from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matforge.errors import CatalysisError

__all__ = [
    "CO2R_WINDOW",
    "VOLCANOES",
    "Volcano",
    "co2r_window_probability",
    "her_delta_g",
    "her_exchange_current",
    "orr_limiting_potential",
    "window_probability",
]

#: optimal CO binding energy for CO2 reduction, eV (Kavalsky et al. 2023 with Ma et al. 2015)
CO2R_WINDOW = (-0.7, -0.5)
#: ΔG_H* = ΔE_H* + HER_CORRECTION (Nørskov et al. 2005)
HER_CORRECTION = 0.24
#: ΔZPE − TΔS of the ORR intermediates, eV (Nørskov et al. 2004)
ORR_CORRECTIONS = {"OH": 0.35, "O": 0.05, "OOH": 0.40}
#: ΔG_OOH* − ΔG_OH* (Man et al. 2011)
OOH_OH_SCALING = 3.2
KT_300K = 0.025852  # eV, k_B × 300 K


def window_probability(mean, std, low: float, high: float) -> np.ndarray:
    """P(low ≤ E ≤ high) for E ~ Normal(mean, std) (std 0 = a point); vectorised."""
    from scipy.stats import norm

    if not low < high:
        raise CatalysisError(f"window must have low < high, got [{low}, {high}]")
    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    if (std < 0).any():
        raise CatalysisError("standard deviations must be ≥ 0")
    safe = np.where(std > 0, std, 1.0)
    p = norm.cdf((high - mean) / safe) - norm.cdf((low - mean) / safe)
    point = ((mean >= low) & (mean <= high)).astype(float)
    return np.where(std > 0, p, point)


def co2r_window_probability(mean, std, window: tuple[float, float] = CO2R_WINDOW) -> np.ndarray:
    """Probability that the CO binding energy lies in the CO2-reduction window."""
    return window_probability(mean, std, *window)


def her_delta_g(delta_e_h) -> np.ndarray:
    """ΔG_H* (eV) from the hydrogen adsorption energy ΔE_H* (eV, vs ½ H2)."""
    return np.asarray(delta_e_h, dtype=float) + HER_CORRECTION


def her_exchange_current(delta_g_h, kT: float = KT_300K) -> np.ndarray:
    """Relative exchange current of HER, ``1 / (1 + exp(|ΔG_H*| / kT))`` (peak ½ at 0)."""
    g = np.abs(np.asarray(delta_g_h, dtype=float))
    return 1.0 / (1.0 + np.exp(np.minimum(g / kT, 700.0)))


def orr_limiting_potential(delta_e_oh, delta_e_o, delta_e_ooh=None) -> np.ndarray:
    """ORR limiting potential (V vs RHE) from ΔE_OH*, ΔE_O* (and ΔE_OOH*), eV, vs H2O/H2."""
    g_oh = np.asarray(delta_e_oh, dtype=float) + ORR_CORRECTIONS["OH"]
    g_o = np.asarray(delta_e_o, dtype=float) + ORR_CORRECTIONS["O"]
    if delta_e_ooh is None:
        g_ooh = g_oh + OOH_OH_SCALING
    else:
        g_ooh = np.asarray(delta_e_ooh, dtype=float) + ORR_CORRECTIONS["OOH"]
    steps = np.stack([4.92 - g_ooh, g_ooh - g_o, g_o - g_oh, g_oh])
    return steps.min(axis=0)


@dataclass(frozen=True)
class Volcano:
    """One activity relation: ``descriptor`` (the adsorption energy it takes, eV), ``window``
    (the optimal range of that energy), ``activity_label`` and ``source``."""

    name: str
    descriptor: str
    window: tuple[float, float]
    activity_label: str
    source: str

    def activity(self, energy) -> np.ndarray:
        """The volcano's activity axis at ``energy`` (eV)."""
        e = np.asarray(energy, dtype=float)
        if self.name == "co2r":
            low, high = self.window
            return -np.maximum(np.maximum(low - e, e - high), 0.0)
        if self.name == "her":
            return np.log10(her_exchange_current(her_delta_g(e)))
        raise CatalysisError(f"no one-descriptor activity for {self.name!r}")

    def probability(self, mean, std) -> np.ndarray:
        """P(energy in the optimal window)."""
        return window_probability(mean, std, *self.window)


VOLCANOES = {
    "co2r": Volcano(
        "co2r", "CO binding energy (eV)", CO2R_WINDOW,
        "− distance to the optimal window (eV)",
        "window −0.7 to −0.5 eV: Kavalsky et al., Digital Discovery 2023 (with Ma et al. 2015)",
    ),
    "her": Volcano(
        "her", "H adsorption energy ΔE_H* (eV)",
        (-0.1 - HER_CORRECTION, 0.1 - HER_CORRECTION),
        "log10 relative exchange current",
        "ΔG_H* = ΔE_H* + 0.24 eV and i0 ∝ 1/(1+exp(|ΔG_H*|/kT)): Nørskov et al., "
        "J. Electrochem. Soc. 152, J23 (2005); window |ΔG_H*| ≤ 0.1 eV (matforge's choice)",
    ),
}


def get_volcano(name: str) -> Volcano:
    """A :data:`VOLCANOES` entry; :class:`CatalysisError` names the known ones."""
    try:
        return VOLCANOES[name]
    except KeyError:
        raise CatalysisError(f"unknown volcano {name!r}; known: {sorted(VOLCANOES)}") from None
