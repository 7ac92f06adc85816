"""Catalyst screening: bimetallic surfaces, adsorption-energy models, volcanoes, closed loops.

>>> from matforge.catalysis import parse_surface, load_ma2015, AdsorptionModel
>>> parse_surface("Ni@Cu").top                     # a Cu monolayer on Ni
'Cu'
>>> df = load_ma2015()                             # 295 CO binding energies (eV), parsed
>>> model = AdsorptionModel(descriptors="dft_free").fit(df)
>>> mean, std = model.predict(["Pd1Cu", "Cu-Ti@Cu"], return_std=True)

See ``docs/catalysis.md``. Names load lazily: ``import matforge.catalysis`` imports numpy at
most.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SURFACE_TYPES": "matforge.catalysis.surfaces",
    "Surface": "matforge.catalysis.surfaces",
    "check_metal": "matforge.catalysis.surfaces",
    "enumerate_surfaces": "matforge.catalysis.surfaces",
    "parse_surface": "matforge.catalysis.surfaces",
    "parse_surfaces": "matforge.catalysis.surfaces",
    "MA_DESCRIPTORS": "matforge.catalysis.descriptors",
    "dft_free_descriptors": "matforge.catalysis.descriptors",
    "tight_binding_dband": "matforge.catalysis.descriptors",
    "load_ma2015": "matforge.catalysis.data",
    "read_adsorption_csv": "matforge.catalysis.data",
    "store_adsorption": "matforge.catalysis.data",
    "load_adsorption": "matforge.catalysis.data",
    "AdsorptionModel": "matforge.catalysis.model",
    "cross_validate": "matforge.catalysis.model",
    "co2r_window_probability": "matforge.catalysis.volcano",
    "Volcano": "matforge.catalysis.volcano",
    "VOLCANOES": "matforge.catalysis.volcano",
    "screen_surfaces": "matforge.catalysis.screening",
    "closed_loop_benchmark": "matforge.catalysis.loop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'matforge.catalysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
