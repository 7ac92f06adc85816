"""Laboratory X-ray radiation: the wavelengths (Å) and Kα2 share every XRD module uses.

One table, so the Cu Kα1 wavelength matforge assumes, renders at and converts to is the same
number in the file readers, the simulator, the augmenter, the peak search, the indexer, the
whole-pattern fit and the classifier.
"""

from __future__ import annotations

__all__ = ["CU_KA1", "CU_KA2", "KA2_RATIO", "KALPHA", "KALPHA2", "WAVELENGTHS"]

# pymatgen's XRD wavelengths in Å (pymatgen.analysis.diffraction.xrd.WAVELENGTHS; importing
# that module drags in matplotlib, so the table is copied and a test keeps it in sync).
WAVELENGTHS = {
    "CuKa": 1.54184,
    "CuKa2": 1.54439,
    "CuKa1": 1.54056,
    "CuKb1": 1.39222,
    "MoKa": 0.71073,
    "MoKa2": 0.71359,
    "MoKa1": 0.70930,
    "MoKb1": 0.63229,
    "CrKa": 2.29100,
    "CrKa2": 2.29361,
    "CrKa1": 2.28970,
    "CrKb1": 2.08487,
    "FeKa": 1.93735,
    "FeKa2": 1.93998,
    "FeKa1": 1.93604,
    "FeKb1": 1.75661,
    "CoKa": 1.79026,
    "CoKa2": 1.79285,
    "CoKa1": 1.78896,
    "CoKb1": 1.63079,
    "AgKa": 0.560885,
    "AgKa2": 0.563813,
    "AgKa1": 0.559421,
    "AgKb1": 0.497082,
}

CU_KA1 = 1.5406
"""Cu Kα1 wavelength in Å: the default when a file states none, and the wavelength patterns
are rendered at for the classifier (ICDD's rounding of pymatgen's 1.54056)."""

CU_KA2 = WAVELENGTHS["CuKa2"]
"""Cu Kα2 wavelength in Å."""

#: (Kα1, Kα2) wavelengths in Å of laboratory anodes (from :data:`WAVELENGTHS`); a pattern
#: whose wavelength is within 0.001 Å of a Kα1 line is taken to come from that anode
KALPHA = {
    anode: (WAVELENGTHS[f"{anode}Ka1"], WAVELENGTHS[f"{anode}Ka2"])
    for anode in ("Cu", "Mo", "Cr", "Fe", "Co", "Ag")
}

#: Kα1 → Kα2 wavelengths (Å) of the usual anodes (:data:`KALPHA`, and matforge's Cu Kα1)
KALPHA2 = {CU_KA1: CU_KA2, **dict(KALPHA.values())}

#: I(Kα2) / I(Kα1) of a laboratory tube without monochromator
KA2_RATIO = 0.5
