"""Laboratory X-ray radiation: the wavelengths (Å) and Kα2 share every XRD module uses.

One table, so the Cu Kα1 wavelength matforge assumes, renders at and converts to is the same
number in the file readers, the simulator, the augmenter, the peak search, the indexer, the
whole-pattern fit and the classifier.
"""

from __future__ import annotations

__all__ = ["CU_KA1", "CU_KA2", "KA2_RATIO", "KALPHA", "KALPHA2"]

CU_KA1 = 1.5406
"""Cu Kα1 wavelength in Å: the default when a file states none, and the wavelength patterns
are rendered at for the classifier (ICDD's rounding of pymatgen's 1.54056)."""

CU_KA2 = 1.54439
"""Cu Kα2 wavelength in Å."""

#: (Kα1, Kα2) wavelengths in Å of laboratory anodes (pymatgen's table,
#: :data:`matforge.xrd.simulate.WAVELENGTHS`); a pattern whose wavelength is within 0.001 Å of
#: a Kα1 line is taken to come from that anode
KALPHA = {
    "Cu": (1.54056, CU_KA2),
    "Mo": (0.70930, 0.71359),
    "Cr": (2.28970, 2.29361),
    "Fe": (1.93604, 1.93998),
    "Co": (1.78896, 1.79285),
    "Ag": (0.559421, 0.563813),
}

#: Kα1 → Kα2 wavelengths (Å) of the usual anodes (:data:`KALPHA`, and matforge's Cu Kα1)
KALPHA2 = {CU_KA1: CU_KA2, **dict(KALPHA.values())}

#: I(Kα2) / I(Kα1) of a laboratory tube without monochromator
KA2_RATIO = 0.5
