"""The properties every store starts with: the shared vocabulary (name, canonical unit,
description) that the first migration writes and the server always lists.

Migration ``0001_initial`` keeps its own copy, as a migration must keep creating what it created
on the day it was written; ``tests/test_store_properties.py`` checks the two agree.
"""

from __future__ import annotations

#: (name, canonical unit (pint), description) of the built-in properties
BUILTIN_PROPERTIES: tuple[tuple[str, str, str], ...] = (
    ("band_gap", "eV", "electronic band gap"),
    ("bulk_modulus", "GPa", "bulk modulus"),
    ("shear_modulus", "GPa", "shear modulus"),
    ("youngs_modulus", "GPa", "Young's modulus"),
    ("vickers_hardness", "GPa", "Vickers hardness"),
    ("yield_strength", "MPa", "yield strength"),
    ("tensile_strength", "MPa", "ultimate tensile strength"),
    ("formation_energy_per_atom", "eV/atom", "formation energy per atom"),
    ("formation_enthalpy", "eV/atom", "formation enthalpy per atom"),
    ("energy_above_hull", "eV/atom", "energy above the convex hull"),
    ("density", "g/cm^3", "mass density"),
    ("melting_point", "K", "melting temperature"),
    ("glass_transition_temperature", "K", "glass transition temperature"),
    ("critical_temperature", "K", "superconducting critical temperature"),
    ("debye_temperature", "K", "Debye temperature"),
    ("thermal_conductivity", "W/(m*K)", "thermal conductivity"),
    ("electrical_conductivity", "S/cm", "electrical conductivity"),
    ("ionic_conductivity", "S/cm", "ionic conductivity"),
    ("seebeck_coefficient", "uV/K", "Seebeck coefficient"),
    ("dielectric_constant", "dimensionless", "relative permittivity"),
    ("refractive_index", "dimensionless", "refractive index"),
    ("specific_capacity", "mA*h/g", "gravimetric specific capacity"),
    ("adsorption_energy", "eV", "adsorption energy"),
)


def builtin_property_names() -> tuple[str, ...]:
    """Names of the built-in properties, in the order above."""
    return tuple(name for name, _, _ in BUILTIN_PROPERTIES)
