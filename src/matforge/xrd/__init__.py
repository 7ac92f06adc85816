"""X-ray powder diffraction: pattern files (:mod:`matforge.xrd.io`) and pattern simulation
(:mod:`matforge.xrd.simulate`).

Importing this package is light; numpy and pymatgen load with the sub-modules, which load on
first use (``matforge.xrd.identify`` needs no import of its own).
"""

__all__ = ["io", "simulate"]


def __getattr__(name: str):
    from matforge import _import_submodule

    return _import_submodule(__name__, name)  # matforge.xrd.x: no import of its own


def __dir__() -> list[str]:
    from matforge import _submodule_names

    return sorted({*globals(), *_submodule_names(__path__)})
