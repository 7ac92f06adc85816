"""Physical ranges of known properties: values no material can have.

:data:`RANGES` is the one table of them. The store refuses a value outside its property's range
(``Store.add_measurements``, ``ingest_csv``, ``matforge ingest``, the server's uploads) unless
told ``allow_unphysical``, and then stores it with the rule's code in the measurement's ``flag``
column. ``scripts/build_datasets.py`` takes the same rules from here for the bundled datasets'
``flag`` column, so a code means the same thing in a dataset and in a store.

A property is known by its name (``bulk_modulus``, ``band_gap``, ...); a property the table
does not name (a lab's own) has no range. Values are compared in the rule's unit, converted
with pint from the property's canonical unit in the store; a property registered in a unit of
another dimension (``band_gap`` in nm) is not the one the table knows, and is not checked.

Left out on purpose, although the bundled datasets flag them: DFT total energies (their zero
depends on the code's reference energies), thermal conductivity above 3000 W/(m K) (pure
crystals exceed it at low temperature) and refractive indices below 1 (metals in the visible,
X-rays): those are dataset-specific checks, not physical bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matforge.errors import UnitError


@dataclass(frozen=True)
class PhysicalRange:
    """One rule: values of ``properties``, in ``unit``, lie between ``low`` and ``high``.

    ``low_open`` makes ``low`` itself impossible too (a modulus of 0 GPa); None is no bound.
    ``text`` says why, with the reference values it rests on (the DATASETS.md wording).
    """

    code: str
    properties: tuple[str, ...]
    unit: str
    low: float | None
    high: float | None
    text: str
    low_open: bool = False

    def outside(self, values) -> np.ndarray:
        """True where a value (in :attr:`unit`) breaks the rule; NaN breaks nothing."""
        x = np.asarray(values, dtype=float)
        bad = np.zeros(x.shape, dtype=bool)
        if self.low is not None:
            bad |= (x <= self.low) if self.low_open else (x < self.low)
        if self.high is not None:
            bad |= x > self.high
        return bad

    def requirement(self) -> str:
        """The allowed range in words: ``"> 0 GPa"``, ``"in [-5, 5] eV/atom"``."""
        unit = f" {self.unit}" if self.unit else ""
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}{unit}"
        if self.low is None:
            return f"<= {self.high:g}{unit}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}]{unit}"


_MODULI = ("bulk_modulus", "shear_modulus")
_FORMATION = (
    "formation_energy",
    "formation_energy_per_atom",
    "formation_enthalpy",
    "formation_enthalpy_per_atom",
)

#: The rules, by code (the codes of the bundled datasets' ``flag`` column where they agree).
RANGES: dict[str, PhysicalRange] = {
    r.code: r
    for r in (
        PhysicalRange(
            "non_positive_modulus", _MODULI, "GPa", 0.0, None, low_open=True,
            text="elastic modulus <= 0 GPa (mechanically unstable crystal or failed fit)",
        ),
        PhysicalRange(
            "bulk_modulus_above_diamond", ("bulk_modulus",), "GPa", None, 500.0,
            text="bulk modulus K > 500 GPa; diamond, the least compressible known material, "
            "has K ~ 443 GPa",
        ),
        PhysicalRange(
            "shear_modulus_above_diamond", ("shear_modulus",), "GPa", None, 550.0,
            text="shear modulus G > 550 GPa; diamond, the stiffest known material, has G ~ 535 GPa",
        ),
        PhysicalRange(
            "formation_energy_out_of_range", _FORMATION, "eV/atom", -5.0, 5.0,
            text="formation energy/enthalpy < -5 or > +5 eV/atom; the most negative known "
            "(rare-earth trifluorides) are ~ -4.5 eV/atom, values beyond +5 eV/atom are failed "
            "calculations",
        ),
        PhysicalRange(
            "volume_out_of_range", ("volume_per_atom",), "Å^3/atom", 0.0, 150.0,
            low_open=True,
            text="volume <= 0 or > 150 A^3/atom; the largest elemental solid volume (Cs) is "
            "~ 117 A^3/atom",
        ),
        PhysicalRange(
            "negative_band_gap", ("band_gap",), "eV", 0.0, None, text="band gap < 0 eV"
        ),
        PhysicalRange(
            "negative_e_above_hull", ("e_above_hull",), "eV/atom", 0.0, None,
            text="energy above the convex hull < 0 eV/atom (a distance above the hull cannot be "
            "negative)",
        ),
        PhysicalRange(
            "negative_anisotropy", ("elastic_anisotropy",), "", 0.0, None,
            text="universal elastic anisotropy A^U < 0; A^U = 5 G_V/G_R + K_V/K_R - 6 >= 0 for "
            "every crystal because Voigt bounds are never below Reuss bounds",
        ),
        PhysicalRange(
            "debye_temperature_out_of_range", ("debye_temperature",), "K", 0.0, 2500.0,
            low_open=True,
            text="Debye temperature <= 0 K or > 2500 K; diamond has the highest, ~ 2230 K",
        ),
        PhysicalRange(
            "non_positive_thermal_conductivity", ("thermal_conductivity",), "W/(m K)", 0.0, None,
            low_open=True,
            text="thermal conductivity <= 0 W/(m K); heat flows from hot to cold",
        ),
        PhysicalRange(
            "negative_exfoliation_energy", ("exfoliation_energy",), "meV/atom", 0.0, None,
            text="exfoliation energy < 0 meV/atom",
        ),
        PhysicalRange(
            "non_positive_frequency", ("last_phdos_peak",), "cm^-1", 0.0, None, low_open=True,
            text="highest phonon-DOS peak <= 0 cm^-1",
        ),
        PhysicalRange(
            "non_positive_strength", ("yield_strength",), "MPa", 0.0, None, low_open=True,
            text="yield strength <= 0 MPa",
        ),
    )
}  # fmt: skip


def rules_for(property: str) -> list[PhysicalRange]:
    """The rules on ``property`` (none for a property the table does not name)."""
    return [r for r in RANGES.values() if property in r.properties]


def breaches(
    property: str, values, unit: str
) -> list[tuple[PhysicalRange, np.ndarray, np.ndarray]]:
    """``(rule, mask, values in the rule's unit)`` for each rule on ``property`` that some of
    ``values`` (in ``unit``) break; a unit of another dimension than the rule's means another
    quantity: unchecked."""
    from matforge.store import units

    out = []
    for rule in rules_for(property):
        try:
            units.check_unit(unit, rule.unit, property=property)
        except UnitError:
            continue
        converted = units.to_canonical(values, unit, rule.unit)
        mask = rule.outside(converted)
        if mask.any():
            out.append((rule, mask, converted))
    return out


def markdown_table() -> str:
    """The table as Markdown, one row per rule (docs/store.md shows it)."""
    lines = ["| properties | allowed | code | why |", "| --- | --- | --- | --- |"]
    for r in RANGES.values():
        names = ", ".join(f"`{p}`" for p in r.properties)
        lines.append(f"| {names} | {r.requirement()} | `{r.code}` | {r.text} |")
    return "\n".join(lines) + "\n"
