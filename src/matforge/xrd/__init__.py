"""X-ray powder diffraction: pattern files (:mod:`matforge.xrd.io`) and pattern simulation
(:mod:`matforge.xrd.simulate`).

Importing this package is light; numpy and pymatgen load with the sub-modules.
"""

__all__ = ["io", "simulate"]
