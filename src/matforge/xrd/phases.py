"""Candidate phases for search-match: what could be in a sample of known elements.

:func:`candidate_phases` builds them from two sources:

* the bundled AFLOW prototypes (:func:`prototype_cells`, conventional standard cells), each
  with its elements replaced by the given ones wherever the replacement is chemically
  sensible (:func:`sensible_mapping`), the lattice scaled to the new atoms' covalent volume
  (:func:`matforge.xrd.training_data.substitute`);
* reference structures the user gives (:func:`read_references`: CIF files, read with pymatgen),
  kept when their elements are among the given ones.

A :class:`Phase` carries the structure and what a person reads of it (formula, prototype,
space group, where it came from).
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from matforge.errors import InvalidFormula, StructureFileError

#: most elements a search-match system may have (mappings grow as n!/(n-k)!)
MAX_ELEMENTS = 6
#: a prototype element may become one whose covalent radius differs by up to this fraction
#: when the two share no oxidation state or group, provided the result is charge balanced
MAX_RADIUS_CHANGE = 0.3
#: elements whose element alone is no solid at room temperature (no unary candidate phase)
GASES = frozenset({"H", "He", "N", "O", "F", "Ne", "Cl", "Ar", "Kr", "Xe", "Rn"})
#: bundled conventional cells of the AFLOW prototypes (:func:`write_prototype_cells`)
PROTOTYPE_CELLS = Path(__file__).parent / "data" / "prototype_cells.json"


@dataclass(eq=False)
class Phase:
    """A crystalline phase that may be in a sample.

    Attributes:
        name: what a person reads, e.g. ``"TiO2 rutile-type (A2B_tP6_136_f_a)"`` or a file name.
        formula: reduced formula.
        structure: pymatgen Structure, conventional cell; for a substituted prototype the
            lattice is an estimate (covalent volume), to be refined against the pattern.
        spacegroup: space-group number (spglib, symprec 0.1) of the source structure.
        crystal_system: one of :data:`~matforge.xrd.augment.CRYSTAL_SYSTEMS`.
        prototype: AFLOW label of the prototype, or None for a reference structure.
        source: ``"prototype"`` or the path of the reference file.
        substitution: prototype element -> element of this phase (empty for a reference).
    """

    name: str
    formula: str
    structure: object
    spacegroup: int
    crystal_system: str
    prototype: str | None = None
    source: str = "prototype"
    substitution: dict = field(default_factory=dict)

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(sorted({el.symbol for el in self.structure.composition.elements}))

    def __repr__(self) -> str:
        return f"Phase({self.name!r}, {self.formula}, sg {self.spacegroup})"


# ---------------------------------------------------------------------------------------
# the bundled prototypes in conventional cells
# ---------------------------------------------------------------------------------------


def write_prototype_cells(path=PROTOTYPE_CELLS) -> Path:
    """Write the conventional standard cells of the bundled AFLOW prototypes (spglib through
    :func:`~matforge.xrd.training_data.symmetry_labels`, symprec 0.1) to ``path``: one entry
    per dataset row with its label, formula, mineral, space group, lattice, species and
    fractional coordinates. Spglib takes ~5 s for all 288, which a search must not pay."""
    from matforge.datasets import load_dataset, load_structures
    from matforge.xrd.training_data import symmetry_labels

    df = load_dataset("aflow_prototypes")
    rows = []
    for (_, r), s in zip(df.iterrows(), load_structures("aflow_prototypes"), strict=True):
        conv, sg, _ = symmetry_labels(s)
        rows.append(
            {
                "label": r["aflow_label"],
                "formula": r["formula"],
                "mineral": r["mineral"] or None,
                "spacegroup": sg,
                "lattice": np.round(conv.lattice.matrix, 8).tolist(),
                "species": [sp.symbol for sp in conv.species],
                "frac_coords": np.round(conv.frac_coords, 8).tolist(),
            }
        )
    path = Path(path)
    path.write_text(json.dumps({"source": "aflow_prototypes, spglib symprec 0.1", "cells": rows}))
    return path


@cache
def prototype_cells() -> tuple[dict, ...]:
    """The bundled prototypes: per dataset row ``label``, ``formula``, ``mineral``,
    ``spacegroup`` and ``structure`` (conventional standard cell, a pymatgen Structure)."""
    from pymatgen.core import Lattice, Structure

    rows = json.loads(PROTOTYPE_CELLS.read_text())["cells"]
    out = []
    for r in rows:
        s = Structure(Lattice(r["lattice"]), r["species"], r["frac_coords"])
        out.append({**{k: r[k] for k in ("label", "formula", "mineral", "spacegroup")},
                    "structure": s})  # fmt: skip
    return tuple(out)


# ---------------------------------------------------------------------------------------
# chemically sensible substitutions
# ---------------------------------------------------------------------------------------


@cache
def _element_facts():
    """Per element: oxidation states (ICSD, else common), covalent radius (Å), group, Pauling
    electronegativity, metal or not."""
    from matforge.chem import element_table

    t = element_table()
    facts = {}
    for s in t.index:
        icsd = t.loc[s, "icsd_oxidation_states"] or []
        states = frozenset(icsd or t.loc[s, "common_oxidation_states"] or [])
        facts[s] = (
            states,
            float(t.loc[s, "covalent_radius"]),
            t.loc[s, "Column"],
            float(t.loc[s, "pauling_en"]),
            bool(t.loc[s, "smact_metal"]),
        )
    return facts


@cache
def _covalent_radii() -> dict[str, float]:
    """Covalent radius (Å) of every element (Cordero et al. 2008; NaN where there is none)."""
    return {e: f[1] for e, f in _element_facts().items()}


@cache
def _metallic_radii() -> dict[str, float]:
    """Atomic radii (Å) of the elements in metals: Magpie's ``MiracleRadius`` (after Miracle et
    al.) from the bundled element table, the covalent radius where there is none."""
    from matforge.chem import element_table

    t = element_table()
    covalent = _covalent_radii()
    out = {}
    for e in t.index:
        r = float(t.loc[e, "MiracleRadius"]) / 100.0
        out[e] = r if np.isfinite(r) and r > 0 else covalent[e]
    return out


@cache
def _substitutes() -> dict[str, frozenset[str]]:
    from matforge.xrd.training_data import substitution_table

    return {e: frozenset(xs) for e, xs in substitution_table().items()}


def sensible_mapping(mapping: dict[str, str], counts: dict[str, float]) -> bool:
    """Whether replacing each prototype element ``e`` by ``mapping[e]`` is chemically sensible.

    Every replacement must be one of these:

    * the element itself;
    * a substitute of :func:`~matforge.xrd.training_data.substitution_table` (shares an
      oxidation state or a group with ``e``, covalent radius within 20 %);
    * an element whose covalent radius is within :data:`MAX_RADIUS_CHANGE` of ``e``'s, where
      the whole new composition (``counts``: prototype element -> amount) can be charge
      balanced with every cation less electronegative than every anion
      (:func:`matforge.chem.electronegativity_balanced`), or consists of metals only.

    Where a replacement is of the last kind, electronegativity must also keep its order where
    the prototype's elements differ by more than 0.5 (Pauling): the cation stays the cation.
    Substitutes of the table are kept whatever the order: they are what the classifier's
    training structures (:func:`~matforge.xrd.training_data.substituted_variants`) are made
    of. A one-element prototype takes any element with a covalent radius (:func:`_substituted`
    scales its cell): there is no size or charge relation between species to keep, and the
    elements' structure types (fcc, bcc, hcp, ...) are not limited to elements of similar size.
    """
    from matforge.chem.oxidation import electronegativity_balanced

    facts = _element_facts()
    if len(mapping) == 1:  # one element: no size or charge relation to keep
        return all(np.isfinite(facts[e][1]) for e in (*mapping, *mapping.values()))
    subs = _substitutes()
    loose = []
    for e, x in mapping.items():
        if x == e or x in subs.get(e, ()):
            continue
        re_, rx = facts[e][1], facts[x][1]
        if not (np.isfinite(re_) and np.isfinite(rx)) or abs(rx - re_) > MAX_RADIUS_CHANGE * re_:
            return False
        loose.append(e)
    if not loose:
        return True
    items = list(mapping.items())
    for (e1, x1), (e2, x2) in itertools.combinations(items, 2):
        en1, en2 = facts[e1][3], facts[e2][3]
        if np.isfinite(en1) and np.isfinite(en2) and abs(en1 - en2) > 0.5:
            n1, n2 = facts[x1][3], facts[x2][3]
            if np.isfinite(n1) and np.isfinite(n2) and (en1 < en2) != (n1 < n2):
                return False
    new = {mapping[e]: a for e, a in counts.items()}
    if all(facts[x][4] for x in new):
        return True
    try:
        return electronegativity_balanced(new, oxidation_states="icsd")
    except InvalidFormula:
        return False


def parse_elements(spec) -> tuple[str, ...]:
    """Element symbols of ``"Ti,O"`` (or an iterable of symbols), in Z order; an unknown
    symbol raises :class:`~matforge.errors.InvalidFormula` naming it."""
    from matforge.chem import element_set
    from matforge.xrd.simulate import _scattering_table

    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    for s in items:
        if s and s[:1].islower():
            raise InvalidFormula(f"unknown element {s!r} in {spec!r}: element symbols start "
                                 "with a capital letter (Ti, O)")  # fmt: skip
    elements = element_set([s for s in items if s])
    if not elements:
        raise InvalidFormula(f"no elements in {spec!r}: give symbols such as Ti,O")
    table = _scattering_table()
    missing = [e for e in elements if e not in table]
    if missing:
        raise InvalidFormula(f"no X-ray scattering factors for {', '.join(missing)}")
    if len(elements) > MAX_ELEMENTS:
        raise InvalidFormula(
            f"{len(elements)} elements ({', '.join(elements)}): search-match takes at most "
            f"{MAX_ELEMENTS}; leave out elements that cannot form a crystalline phase"
        )
    return elements


def prototype_candidates(elements: Sequence[str], max_elements: int | None = None) -> list[Phase]:
    """Every bundled prototype with its elements mapped injectively onto a subset of
    ``elements`` by a :func:`sensible_mapping`; one :class:`Phase` per (prototype, mapping),
    lattice scaled to the new covalent volume.

    Args:
        elements: element symbols of the sample.
        max_elements: largest number of distinct elements of a phase (default all).
    """
    from matforge.xrd.augment import CRYSTAL_SYSTEMS, crystal_system_index

    elements = list(elements)
    limit = len(elements) if max_elements is None else min(max_elements, len(elements))
    out: list[Phase] = []
    seen: set = set()
    for row in prototype_cells():
        s = row["structure"]
        comp = s.composition
        proto_el = sorted(el.symbol for el in comp.elements)
        if len(proto_el) > limit:
            continue
        counts = {e: float(comp[e]) for e in proto_el}
        for target in itertools.permutations(elements, len(proto_el)):
            if len(target) == 1 and target[0] in GASES:
                continue
            mapping = dict(zip(proto_el, target, strict=True))
            if not sensible_mapping(mapping, counts):
                continue
            key = (row["label"], tuple(sorted(mapping.items())))
            if key in seen:  # the dataset holds a few labels twice
                continue
            seen.add(key)
            new = _substituted(s, mapping)
            formula = new.composition.reduced_formula
            mineral = f" {row['mineral']}-type" if row["mineral"] else ""
            out.append(
                Phase(
                    name=f"{formula}{mineral} ({row['label']})",
                    formula=formula,
                    structure=new,
                    spacegroup=int(row["spacegroup"]),
                    crystal_system=CRYSTAL_SYSTEMS[int(crystal_system_index(row["spacegroup"]))],
                    prototype=row["label"],
                    source="prototype",
                    substitution=mapping,
                )
            )
    return out


def _substituted(structure, mapping: dict[str, str]):
    """``structure`` with its elements replaced by ``mapping`` and its volume scaled by the
    ratio of the summed cubed covalent radii of the new and old atoms: what
    :func:`matforge.xrd.training_data.substitute` does, without pymatgen's per-site edits
    (a search builds hundreds). One metal replacing another in a one-element structure is
    scaled by their radii in metals instead (:func:`_metallic_radii`)."""
    from pymatgen.core import Lattice, Structure

    facts = _element_facts()
    radius = _covalent_radii()
    old = [sp.symbol for sp in structure.species]
    new = [mapping.get(e, e) for e in old]
    if len(mapping) == 1 and all(facts[e][4] for e in (*mapping, *mapping.values())):
        # a metal in a metal's structure type: atomic radii in metals (Miracle), not covalent
        # ones, which put bcc potassium 27 % too small from tungsten
        radius = _metallic_radii()
    ratio = sum(radius[e] ** 3 for e in new) / sum(radius[e] ** 3 for e in old)
    lattice = Lattice(structure.lattice.matrix * ratio ** (1 / 3))
    return Structure(lattice, new, structure.frac_coords)


# ---------------------------------------------------------------------------------------
# reference structures from files
# ---------------------------------------------------------------------------------------

REFERENCE_SUFFIXES = (".cif",)


def read_reference(path) -> Phase:
    """A reference phase from a CIF file (pymatgen's parser; the conventional standard cell).

    Raises:
        StructureFileError: the file cannot be read or parsed, holds no structure, or has an
            element without X-ray scattering factors; the message names the file.
    """
    from pymatgen.core import Structure

    from matforge.xrd.augment import CRYSTAL_SYSTEMS, crystal_system_index
    from matforge.xrd.simulate import _scattering_table
    from matforge.xrd.training_data import symmetry_labels

    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise StructureFileError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if "_cell_length_a" not in text:
        raise StructureFileError(f"{path}: not a CIF file (no _cell_length_a)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            structure = Structure.from_str(text, fmt="cif")
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many kinds on a bad CIF
            notes = "; ".join(str(w.message).splitlines()[-1] for w in caught[:2])
            reason = str(exc) or type(exc).__name__
            raise StructureFileError(
                f"{path}: not a readable CIF ({reason}{'; ' + notes if notes else ''})"
            ) from exc
    if not len(structure):
        raise StructureFileError(f"{path}: the CIF holds no atoms")
    table = _scattering_table()
    missing = sorted({el.symbol for el in structure.composition.elements} - set(table))
    if missing:
        raise StructureFileError(f"{path}: no X-ray scattering factors for {', '.join(missing)}")
    try:
        conv, sg, _ = symmetry_labels(structure)
    except Exception as exc:  # noqa: BLE001 - spglib gives up on degenerate cells
        raise StructureFileError(f"{path}: no symmetry found for the structure ({exc})") from exc
    if conv.composition.reduced_formula != structure.composition.reduced_formula:
        conv = structure  # spglib merged sites: keep the file's cell
    cs = CRYSTAL_SYSTEMS[int(crystal_system_index(sg))]
    formula = conv.composition.reduced_formula
    return Phase(name=f"{formula} ({path.name})", formula=formula, structure=conv,
                 spacegroup=int(sg), crystal_system=cs, prototype=None, source=str(path))  # fmt: skip


def reference_files(refs) -> list[Path]:
    """The CIF files of ``refs``: a folder (its ``*.cif``, sorted), a file, or a list of them."""
    items = [refs] if isinstance(refs, str | Path) else list(refs)
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in REFERENCE_SUFFIXES)
            if not found:
                raise StructureFileError(f"{item}: no reference structures (*.cif) in the folder")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise StructureFileError(f"{item}: no such file or folder of reference structures")
    return files


def read_references(refs) -> list[Phase]:
    """Every CIF of ``refs`` (see :func:`reference_files`) as a :class:`Phase`."""
    return [read_reference(f) for f in reference_files(refs)]


def candidate_phases(
    elements: Iterable[str] | str | None = None,
    refs=None,
    *,
    prototypes: bool = True,
) -> list[Phase]:
    """Phases that may be in a sample of ``elements``.

    Args:
        elements: the sample's elements (``"Ti,O"`` or symbols); None takes every reference
            and no prototype.
        refs: CIF files or folders of them (the user's own phase library); a reference is
            kept when its elements are among ``elements`` (all are kept without elements).
        prototypes: include the substituted bundled prototypes.

    Returns:
        References first (in file order), then prototypes.
    """
    out: list[Phase] = []
    chosen = None if elements is None else parse_elements(elements)
    if refs is not None:
        for phase in read_references(refs):
            if chosen is None or set(phase.elements) <= set(chosen):
                out.append(phase)
    if chosen is not None and prototypes:
        out += prototype_candidates(chosen)
    return out
