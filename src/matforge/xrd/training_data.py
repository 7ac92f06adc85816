"""Training structures and augmented patterns for the XRD structure classifier.

Structures (:func:`build_structures`) come from two sources:

* the 288 AFLOW prototypes (``matforge.datasets``) and variants of each with chemically
  sensible element substitutions (:func:`substitution_table`: an element is swapped for one
  that shares an oxidation state with it or sits in the same group, with a covalent radius
  within 20 %) and the lattice scaled to the new covalent volume;
* random symmetric crystals for each of the 230 space groups (:func:`random_crystal`: atoms
  on Wyckoff positions from ``pyxtal``'s tables, random lattices and elements), so every
  space group and crystal system is represented.

Every structure is stored in its conventional standard cell with its chemical system (sorted
elements joined by "-"), space group (spglib through pymatgen's ``SpacegroupAnalyzer``,
symprec 0.1), crystal system, AFLOW prototype label (None for pyxtal crystals) and symmetry
orbits (for vacancies on sublattices).

Splits are by group, never by pattern: :func:`split_by_chemsys` keeps every chemical system
on one side; :func:`split_by_prototype` keeps every prototype on one side.

:func:`generate_shards` streams augmented patterns to ``.npz`` shards, reproducibly from a
seed, with a Rich progress bar; :func:`load_shards` reads them back.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from matforge.xrd.augment import CRYSTAL_SYSTEMS, AugmentConfig, augment, crystal_system_index

NOBLE_GASES = frozenset({"He", "Ne", "Ar", "Kr", "Xe", "Rn"})
# short-lived or rarely handled elements: never introduced by substitution or random crystals
RARE = frozenset(
    {"Tc", "Pm", "Po", "At", "Fr", "Ra", "Ac", "Pa", "Np", "Pu", "Am", "Cm", "Bk", "Cf"}
)
SYMPREC = 0.1
MAX_SITES = 96  # conventional-cell atoms of the random crystals (bounds simulation cost)


# ---------------------------------------------------------------------------------------
# structures
# ---------------------------------------------------------------------------------------


@dataclass
class StructureSet:
    """Structures with their labels, row-aligned.

    Attributes:
        structures: pymatgen Structures (conventional standard cells).
        chemsys: chemical system of each, e.g. ``"Cl-Na"``.
        spacegroup: space-group numbers 1–230 (spglib, symprec 0.1).
        crystal_system: indices into :data:`~matforge.xrd.augment.CRYSTAL_SYSTEMS`.
        prototype: AFLOW label of the prototype a structure derives from, or None.
        source: ``"aflow"`` (a bundled prototype), ``"substituted"`` or ``"pyxtal"`` (a
            random crystal).
        orbits: per structure, the symmetry-orbit id of each site.
    """

    structures: list
    chemsys: list[str]
    spacegroup: np.ndarray
    crystal_system: np.ndarray
    prototype: list[str | None]
    source: list[str]
    orbits: list[np.ndarray]
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.structures)

    def subset(self, idx) -> StructureSet:
        """The structures at integer positions ``idx``."""
        idx = np.asarray(idx, dtype=int)
        return StructureSet(
            structures=[self.structures[i] for i in idx],
            chemsys=[self.chemsys[i] for i in idx],
            spacegroup=self.spacegroup[idx],
            crystal_system=self.crystal_system[idx],
            prototype=[self.prototype[i] for i in idx],
            source=[self.source[i] for i in idx],
            orbits=[self.orbits[i] for i in idx],
            meta=dict(self.meta),
        )

    def concat(self, other: StructureSet, meta: dict | None = None) -> StructureSet:
        """The structures of ``self`` followed by those of ``other``."""
        return StructureSet(
            structures=self.structures + other.structures,
            chemsys=self.chemsys + other.chemsys,
            spacegroup=np.concatenate([self.spacegroup, other.spacegroup]),
            crystal_system=np.concatenate([self.crystal_system, other.crystal_system]),
            prototype=self.prototype + other.prototype,
            source=self.source + other.source,
            orbits=self.orbits + other.orbits,
            meta=dict(meta if meta is not None else self.meta),
        )

    def to_frame(self):
        """Labels as a pandas DataFrame (one row per structure, no structures)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "formula": [s.composition.reduced_formula for s in self.structures],
                "chemsys": self.chemsys,
                "spacegroup": self.spacegroup,
                "crystal_system": [CRYSTAL_SYSTEMS[i] for i in self.crystal_system],
                "prototype": self.prototype,
                "source": self.source,
                "nsites": [len(s) for s in self.structures],
            }
        )

    def save(self, path) -> Path:
        """Write to a Parquet file (structures as pymatgen JSON)."""
        import pandas as pd

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        df = pd.DataFrame(
            {
                "structure": [json.dumps(s.as_dict()) for s in self.structures],
                "chemsys": self.chemsys,
                "spacegroup": self.spacegroup.astype(np.int16),
                "crystal_system": self.crystal_system.astype(np.int8),
                "prototype": self.prototype,
                "source": self.source,
                "orbits": [o.astype(np.int32).tolist() for o in self.orbits],
            }
        )
        tmp = path.with_suffix(".tmp")
        df.to_parquet(tmp, index=False)
        tmp.replace(path)
        path.with_suffix(".json").write_text(json.dumps(self.meta, indent=2))
        return path

    @classmethod
    def load(cls, path) -> StructureSet:
        """Read a file written by :meth:`save`."""
        import pandas as pd
        from pymatgen.core import Structure

        path = Path(path)
        df = pd.read_parquet(path)
        meta_path = path.with_suffix(".json")
        return cls(
            structures=[Structure.from_dict(json.loads(s)) for s in df["structure"]],
            chemsys=df["chemsys"].tolist(),
            spacegroup=df["spacegroup"].to_numpy(dtype=np.int64),
            crystal_system=df["crystal_system"].to_numpy(dtype=np.int64),
            prototype=[None if p is None or p != p else p for p in df["prototype"]],
            source=df["source"].tolist(),
            orbits=[np.asarray(o, dtype=np.int64) for o in df["orbits"]],
            meta=json.loads(meta_path.read_text()) if meta_path.exists() else {},
        )


def chemical_system(structure) -> str:
    """Sorted element symbols joined by "-", e.g. ``"Cl-Na"``."""
    return "-".join(sorted({el.symbol for el in structure.composition.elements}))


def symmetry_labels(structure, symprec: float = SYMPREC):
    """(conventional standard structure, space-group number, orbit id per site of it).

    Space group by spglib through pymatgen's ``SpacegroupAnalyzer``; the conventional cell
    is symmetrised; orbits are spglib's ``equivalent_atoms`` of that cell.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sga = SpacegroupAnalyzer(structure, symprec=symprec)
    number = sga.get_space_group_number()
    conv = sga.get_conventional_standard_structure()
    dataset = SpacegroupAnalyzer(conv, symprec=symprec).get_symmetry_dataset()
    orbits = np.asarray(dataset.equivalent_atoms, dtype=np.int64)
    return conv, int(number), orbits


def _substitution_pool() -> list[str]:
    from matforge.chem import SYMBOLS, element_table
    from matforge.xrd.simulate import _scattering_table

    table = element_table()
    scatter = _scattering_table()
    return [
        s
        for s in SYMBOLS[:94]
        if s in scatter
        and s not in NOBLE_GASES
        and s not in RARE
        and np.isfinite(table.loc[s, "covalent_radius"])
    ]


def substitution_table(max_radius_change: float = 0.2) -> dict[str, tuple[str, ...]]:
    """Chemically sensible substitutes of each element.

    X may replace E when they share an oxidation state (pymatgen's ICSD oxidation states,
    else its common ones) or a group of the periodic table, and their covalent radii
    (Cordero 2008) differ by at most ``max_radius_change`` (relative to E's).
    """
    from matforge.chem import SYMBOLS, element_table

    table = element_table()
    pool = _substitution_pool()
    every = [s for s in SYMBOLS[:98] if np.isfinite(table.loc[s, "covalent_radius"])]

    def states(s):
        icsd = table.loc[s, "icsd_oxidation_states"] or []
        return set(icsd or table.loc[s, "common_oxidation_states"] or [])

    ox = {s: states(s) for s in every}
    radius = {s: float(table.loc[s, "covalent_radius"]) for s in every}
    column = {s: table.loc[s, "Column"] for s in every}
    out = {}
    for e in every:
        out[e] = tuple(
            x
            for x in pool
            if x != e
            and (ox[e] & ox[x] or column[e] == column[x])
            and abs(radius[x] - radius[e]) <= max_radius_change * radius[e]
        )
    return out


def substitute(structure, mapping: dict[str, str]):
    """``structure`` with elements replaced by ``mapping`` and its volume scaled by the
    ratio of the summed cubed covalent radii of the new and old atoms."""
    from matforge.chem import element_table

    radius = element_table()["covalent_radius"]
    new = structure.copy()
    new.replace_species(dict(mapping.items()))
    old_vol = sum(radius[sp.symbol] ** 3 for sp in structure.species)
    new_vol = sum(radius[sp.symbol] ** 3 for sp in new.species)
    new.scale_lattice(structure.volume * new_vol / old_vol)
    return new


def substituted_variants(structure, n: int, rng, table: dict[str, tuple[str, ...]]) -> list:
    """Up to ``n`` variants of ``structure`` with distinct chemical systems, each from an
    injective element mapping that changes at least one element."""
    elements = sorted({el.symbol for el in structure.composition.elements})
    seen = {"-".join(elements)}
    out = []
    for _ in range(20 * n):
        if len(out) >= n:
            break
        mapping = {}
        for e in elements:
            cands = table.get(e, ())
            if cands and rng.random() < 0.75:
                mapping[e] = cands[rng.integers(len(cands))]
            else:
                mapping[e] = e
        targets = list(mapping.values())
        if len(set(targets)) < len(targets) or all(k == v for k, v in mapping.items()):
            continue
        key = "-".join(sorted(targets))
        if key in seen:
            continue
        seen.add(key)
        out.append(substitute(structure, {k: v for k, v in mapping.items() if k != v}))
    return out


def random_crystal(spacegroup: int, rng, max_tries: int = 40):
    """A random crystal with the symmetry of ``spacegroup``, built on pyxtal's Wyckoff tables.

    1–3 elements, each on one or two Wyckoff positions of the group (positions with free
    parameters preferred, so that the symmetry is not higher than asked), random free
    coordinates, a random lattice of the group's crystal system (axis ratios up to e^±0.7,
    monoclinic β 90–125°, triclinic angles 70–110°) whose volume gives a packing fraction of
    covalent spheres of 0.25–0.55, at most 96 atoms in the conventional cell and no two atoms
    closer than 0.7 × the sum of their covalent radii. (pyxtal's own ``from_random`` does the
    same with stricter distance checks at ~50× the cost.)

    Attempts continue until spglib (symprec 0.1) finds the very group asked (small orbits
    can have more symmetry than their group).

    Returns (conventional standard structure, space group found by spglib, orbits) — after
    ``max_tries`` attempts without a match, the last acceptable crystal (a supergroup) — or
    None when no attempt gives an acceptable crystal.
    """
    from pymatgen.core import Lattice, Structure

    wps = _wyckoff_positions(spacegroup)
    ltype = _lattice_type(spacegroup)
    pool = _random_crystal_pool()
    radius = _covalent_radii()
    fallback = None
    for _ in range(max_tries):
        n_el = int(rng.choice([1, 2, 3], p=[0.2, 0.45, 0.35]))
        elements = [str(s) for s in rng.choice(pool, size=n_el, replace=False)]
        species, coords, used = [], [], set()
        for el in elements:
            for _ in range(1 if rng.random() < 0.6 else 2):
                fits = [
                    i for i, (_, m, dof) in enumerate(wps)
                    if m + len(coords) <= MAX_SITES and (dof > 0 or i not in used)
                ]  # fmt: skip
                if not fits:
                    break
                weights = np.array([1.0 + 3.0 * (wps[i][2] > 0) for i in fits])
                i = fits[int(rng.choice(len(fits), p=weights / weights.sum()))]
                used.add(i)
                orbit = _orbit(wps[i][0], rng.random(3))
                species += [el] * len(orbit)
                coords += orbit.tolist()
        if not coords:
            continue
        volume = sum(4 / 3 * math.pi * radius[s] ** 3 for s in species) / rng.uniform(0.25, 0.55)
        lattice = Lattice.from_parameters(*_random_cell(ltype, volume, rng))
        structure = Structure(lattice, species, coords)
        if len(structure) > 1:
            dist = structure.distance_matrix
            r = np.array([radius[s] for s in species])
            np.fill_diagonal(dist, np.inf)
            if (dist < 0.7 * (r[:, None] + r[None, :])).any():
                continue
        try:
            labels = symmetry_labels(structure)
        except Exception:  # noqa: BLE001 - spglib gives up on a few degenerate cells
            continue
        if labels[1] == spacegroup:
            return labels
        fallback = labels
    return fallback


@cache
def _wyckoff_positions(spacegroup: int) -> list[tuple]:
    """(pyxtal Wyckoff position, multiplicity, degrees of freedom) of a space group."""
    from pyxtal.symmetry import Group

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        group = Group(spacegroup)
    return [(w, int(w.multiplicity), int(w.get_dof())) for w in group.Wyckoff_positions]


def _lattice_type(spacegroup: int) -> str:
    return CRYSTAL_SYSTEMS[int(crystal_system_index(spacegroup))]


def _orbit(wp, xyz) -> np.ndarray:
    """The distinct fractional positions of Wyckoff position ``wp`` generated from ``xyz``."""
    pos = np.mod(np.asarray(wp.apply_ops(xyz), dtype=float), 1.0)
    key = np.round(pos * 1e4).astype(np.int64) % 10_000
    _, first = np.unique(key, axis=0, return_index=True)
    return pos[np.sort(first)]


def _random_cell(ltype: str, volume: float, rng) -> tuple[float, ...]:
    """Lattice parameters (a, b, c, α, β, γ) of a random cell of a crystal system with the
    given volume, in the standard setting of the International Tables (monoclinic: unique
    axis b; trigonal: hexagonal axes)."""
    ratio = lambda: math.exp(rng.uniform(-0.7, 0.7))  # noqa: E731
    alpha = beta = gamma = 90.0
    if ltype == "cubic":
        r = (1.0, 1.0, 1.0)
    elif ltype == "tetragonal":
        r = (1.0, 1.0, ratio())
    elif ltype in ("hexagonal", "trigonal"):
        r, gamma = (1.0, 1.0, ratio()), 120.0
    elif ltype == "orthorhombic":
        r = (1.0, ratio(), ratio())
    elif ltype == "monoclinic":
        r, beta = (1.0, ratio(), ratio()), rng.uniform(90.0, 125.0)
    else:
        r = (1.0, ratio(), ratio())
        while True:
            alpha, beta, gamma = rng.uniform(70.0, 110.0, 3)
            if _cell_volume_factor(alpha, beta, gamma) > 0.5:
                break
    factor = _cell_volume_factor(alpha, beta, gamma)
    a = (volume / (r[0] * r[1] * r[2] * factor)) ** (1 / 3)
    return (a * r[0], a * r[1], a * r[2], alpha, beta, gamma)


def _cell_volume_factor(alpha: float, beta: float, gamma: float) -> float:
    ca, cb, cg = (math.cos(math.radians(x)) for x in (alpha, beta, gamma))
    return math.sqrt(max(0.0, 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg))


@cache
def _covalent_radii() -> dict[str, float]:
    from matforge.chem import element_table

    return element_table()["covalent_radius"].dropna().to_dict()


def _random_crystal_pool() -> list[str]:
    # elements of real inorganic compounds; H is too weak a scatterer to matter
    return [s for s in _substitution_pool() if s != "H"]


def prototype_structures(
    n_variants: int = 19,
    seed: int = 0,
    prototypes: Sequence[int] | None = None,
    progress: bool = True,
) -> StructureSet:
    """The AFLOW prototypes and ``n_variants`` substituted variants of each.

    A variant keeps its parent's geometry (an injective element map, an isotropic volume
    scaling), so it keeps the parent's symmetry orbits; its space group is still determined
    by spglib on the variant itself. Duplicates of (chemical system, space group, label) are
    dropped (the dataset holds 15 labels twice, with different example compounds).

    Args:
        n_variants: substituted variants per prototype (besides the prototype).
        seed: the variants are a function of it.
        prototypes: row positions in the ``aflow_prototypes`` dataset (default all 288).
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from matforge.datasets import load_dataset, load_structures

    df = load_dataset("aflow_prototypes")
    protos = load_structures("aflow_prototypes")
    rows = range(len(protos)) if prototypes is None else list(prototypes)
    table = substitution_table()
    records, seen = [], set()

    def add(structure, sg, orbits, label, source):
        key = (chemical_system(structure), sg, label)
        if key not in seen:
            seen.add(key)
            records.append((structure, sg, orbits, label, source))

    with _progress(progress) as bar:
        task = bar.add_task("prototypes + substitutions", total=len(rows))
        for i in rows:
            rng = np.random.default_rng([seed, 1, i])
            label = df["aflow_label"].iloc[i]
            conv, sg, orbits = symmetry_labels(protos[i])
            add(conv, sg, orbits, label, "aflow")
            for v in substituted_variants(conv, n_variants, rng, table):
                vsg = SpacegroupAnalyzer(v, symprec=SYMPREC).get_space_group_number()
                if vsg == sg:
                    add(v, sg, orbits, label, "substituted")
                else:  # the scaled cell came within symprec of a higher symmetry
                    add(*symmetry_labels(v), label, "substituted")
            bar.advance(task)
    return _structure_set(records, {"n_variants": n_variants, "seed": seed})


def random_structures(
    n_random: int = 40,
    seed: int = 0,
    spacegroups: Sequence[int] | None = None,
    progress: bool = True,
) -> StructureSet:
    """``n_random`` random crystals per space group (:func:`random_crystal`)."""
    groups = range(1, 231) if spacegroups is None else list(spacegroups)
    records = []
    with _progress(progress) as bar:
        task = bar.add_task("random crystals (pyxtal)", total=len(groups) * n_random)
        for g in groups:
            for j in range(n_random):
                made = random_crystal(g, np.random.default_rng([seed, 2, g, j]))
                if made is not None:
                    records.append((*made, None, "pyxtal"))
                bar.advance(task)
    return _structure_set(records, {"n_random": n_random, "seed": seed})


def build_structures(
    n_variants: int = 19,
    n_random: int = 40,
    seed: int = 0,
    progress: bool = True,
    spacegroups: Sequence[int] | None = None,
    prototypes: Sequence[int] | None = None,
) -> StructureSet:
    """The training structures: prototypes and their substituted variants
    (:func:`prototype_structures`), then random crystals (:func:`random_structures`)."""
    a = prototype_structures(n_variants, seed, prototypes, progress)
    b = random_structures(n_random, seed, spacegroups, progress)
    return a.concat(b, meta={"n_variants": n_variants, "n_random": n_random, "seed": seed,
                             "symprec": SYMPREC})  # fmt: skip


def _structure_set(records, meta) -> StructureSet:
    sg = np.array([r[1] for r in records], dtype=np.int64)
    return StructureSet(
        structures=[r[0] for r in records],
        chemsys=[chemical_system(r[0]) for r in records],
        spacegroup=sg,
        crystal_system=crystal_system_index(sg) if len(sg) else sg,
        prototype=[r[3] for r in records],
        source=[r[4] for r in records],
        orbits=[r[2] for r in records],
        meta={**meta, "symprec": SYMPREC},
    )


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled, transient=False,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------------------


def _split_groups(keys: Sequence, fractions: dict[str, float], seed: int) -> np.ndarray:
    """Assign whole groups (equal keys) to named parts of about the given fractions of rows."""
    keys = np.asarray([str(k) for k in keys])
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(uniq))
    cum = np.cumsum(counts[order]) / len(keys)
    names = list(fractions)
    bounds = np.cumsum([fractions[k] for k in names])
    part_of_group = np.empty(len(uniq), dtype=object)
    # a group goes to the part its cumulative midpoint falls in
    mid = cum - counts[order] / len(keys) / 2
    part_of_group[order] = [
        names[min(int(np.searchsorted(bounds, m)), len(names) - 1)] for m in mid
    ]
    return part_of_group[inverse].astype(str)


def split_by_chemsys(
    sset: StructureSet, test: float = 0.15, val: float = 0.1, seed: int = 0
) -> np.ndarray:
    """``"train"``/``"val"``/``"test"`` per structure; a chemical system is never on two sides."""
    return _split_groups(sset.chemsys, {"test": test, "val": val, "train": 1 - test - val}, seed)


def split_by_prototype(
    sset: StructureSet, test: float = 0.15, val: float = 0.1, seed: int = 0
) -> np.ndarray:
    """``"train"``/``"val"``/``"test"`` per structure, whole prototypes to one side.

    Test holds prototype-derived structures only (about ``test`` of them); pyxtal crystals,
    which have no prototype, are split by chemical system between train and val.
    """
    is_proto = np.array([p is not None for p in sset.prototype])
    out = np.empty(len(sset), dtype=object)
    protos = [p for p in sset.prototype if p is not None]
    out[is_proto] = _split_groups(protos, {"test": test, "val": val, "train": 1 - test - val}, seed)
    rand = np.flatnonzero(~is_proto)
    if len(rand):
        out[rand] = _split_groups(
            [sset.chemsys[i] for i in rand], {"val": val, "train": 1 - val}, seed + 1
        )
    return out.astype(str)


# ---------------------------------------------------------------------------------------
# patterns on disk
# ---------------------------------------------------------------------------------------


def make_grid(lo: float = 10.0, hi: float = 80.0, step: float = 0.04) -> np.ndarray:
    """The classifier's 2θ grid in degrees (Cu Kα1)."""
    n = int(round((hi - lo) / step)) + 1
    return np.round(lo + step * np.arange(n), 6)


def generate_shards(
    sset: StructureSet,
    out_dir,
    *,
    grid,
    n_per_structure: int | Sequence[int] = 10,
    config: AugmentConfig | None = None,
    seed: int = 0,
    groups: Sequence | None = None,
    rows: Sequence[int] | None = None,
    params: dict | None = None,
    shard_size: int = 8192,
    batch_size: int = 256,
    progress: bool = True,
    description: str = "patterns",
) -> Path:
    """Stream augmented patterns of every structure to ``out_dir/shard_#####.npz``.

    Each structure gives ``n_per_structure`` patterns (one number, or one per structure of
    ``sset``). Work is cut into batches of
    structures that share a ``groups`` value (so an impurity phase is always drawn from the
    same side of every split); batch ``b`` uses ``numpy.random.default_rng([seed, b])``, so
    the output depends on the seed only. A shard holds ``x`` (float16, n × G), ``structure``
    (row in ``sset``), ``spacegroup``, ``crystal_system``, ``realised`` augmentation
    parameters. ``manifest.json`` records grid, config, seed and counts; a directory with a
    complete manifest for the same settings is reused as is.

    Args:
        groups: per structure of ``sset``, a batching key (default: one group).
        rows: structures of ``sset`` to make patterns of (default all); ``structure`` in the
            shards is still the row in ``sset``.
        params: fixed augmentation parameters (see :func:`~matforge.xrd.augment.augment`).
    """
    out_dir = Path(out_dir)
    chosen = np.arange(len(sset)) if rows is None else np.asarray(rows, dtype=np.int64)
    n_per = np.broadcast_to(np.asarray(n_per_structure, dtype=np.int64), (len(sset),))
    config = config or AugmentConfig()
    grid = np.asarray(grid, dtype=float)
    settings = _shard_settings(sset, grid=grid, n_per_structure=n_per_structure, config=config,
                               seed=seed, rows=rows, params=params)  # fmt: skip
    manifest = out_dir / "manifest.json"
    if _shards_complete(out_dir, settings):
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("shard_*.npz"):
        old.unlink()

    keys = np.asarray([str(g) for g in (groups if groups is not None else [""] * len(sset))])
    batches = []
    per_batch = max(1, batch_size // max(1, int(n_per[chosen].max(initial=1))))
    for key in np.unique(keys[chosen]):
        members = chosen[keys[chosen] == key]
        batches.extend(members[i : i + per_batch] for i in range(0, len(members), per_batch))

    buffer: dict[str, list] = {}
    n_written, shard_id = 0, 0

    def flush():
        nonlocal shard_id, buffer
        if not buffer:
            return
        arrays = {k: np.concatenate(v) for k, v in buffer.items()}
        np.savez(out_dir / f"shard_{shard_id:05d}.npz", **arrays)
        shard_id += 1
        buffer = {}

    total = int(n_per[chosen].sum())
    with _progress(progress) as bar:
        task = bar.add_task(description, total=total)
        for b, rows in enumerate(batches):
            rng = np.random.default_rng([seed, b])
            idx = np.repeat(rows, n_per[rows])
            pool = [sset.structures[i] for i in rows]
            x, p = augment(
                [sset.structures[i] for i in idx], grid, rng, config,
                crystal_systems=[CRYSTAL_SYSTEMS[sset.crystal_system[i]] for i in idx],
                orbits=[sset.orbits[i] for i in idx], params=params, impurity_pool=pool,
            )  # fmt: skip
            part = {
                "x": x.astype(np.float16),
                "structure": idx.astype(np.int32),
                "spacegroup": sset.spacegroup[idx].astype(np.int16),
                "crystal_system": sset.crystal_system[idx].astype(np.int8),
                **{
                    f"aug_{k}": np.asarray(v, dtype=np.float32)
                    for k, v in p.items()
                    if np.ndim(v) == 1
                },
            }
            for k, v in part.items():
                buffer.setdefault(k, []).append(v)
            n_written += len(idx)
            if sum(len(v) for v in buffer["structure"]) >= shard_size:
                flush()
            bar.advance(task, len(idx))
        flush()
    manifest.write_text(
        json.dumps(
            {"settings": settings, "complete": True, "n_patterns": n_written, "n_shards": shard_id},
            indent=2,
        )  # fmt: skip
    )
    return out_dir


def _shard_settings(
    sset, *, grid, n_per_structure=10, config=None, seed=0, rows=None, params=None, **_
) -> dict:
    """What :func:`generate_shards` records in its manifest, and reuses a folder for (its other
    arguments, batching and progress, do not change the patterns' settings)."""
    chosen = np.arange(len(sset)) if rows is None else np.asarray(rows, dtype=np.int64)
    n_per = np.broadcast_to(np.asarray(n_per_structure, dtype=np.int64), (len(sset),))
    grid = np.asarray(grid, dtype=float)
    return {
        "n_structures": len(sset),
        "rows_sha256": hashlib.sha256(chosen.tobytes()).hexdigest(),
        "n_per_structure": hashlib.sha256(n_per[chosen].tobytes()).hexdigest(),
        "config": (config or AugmentConfig()).as_dict(),
        "seed": seed,
        "grid": [float(grid[0]), float(grid[-1]), len(grid)],
        "params": {k: np.asarray(v).tolist() for k, v in (params or {}).items()},
        "structure_meta": sset.meta,
    }


def _shards_complete(out_dir, settings: dict) -> bool:
    """Whether ``out_dir`` holds a complete set of shards made with ``settings``."""
    manifest = Path(out_dir) / "manifest.json"
    if not manifest.exists():
        return False
    done = json.loads(manifest.read_text())
    return done.get("settings") == json.loads(json.dumps(settings)) and bool(done.get("complete"))


def load_shards(path, rows: Callable[[dict], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Concatenate the shards in ``path``; ``rows(shard) -> bool mask`` keeps a subset."""
    files = sorted(Path(path).glob("shard_*.npz"))
    if not files:
        raise FileNotFoundError(f"no shard_*.npz files in {path}")
    parts: dict[str, list] = {}
    for f in files:
        with np.load(f) as z:
            shard = {k: z[k] for k in z.files}
        if rows is not None:
            keep = rows(shard)
            shard = {k: v[keep] for k, v in shard.items()}
        for k, v in shard.items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def prototype_labels() -> list[str]:
    """The AFLOW labels of the bundled prototypes, unique, in dataset order: the classes of
    the classifier's prototype head."""
    from matforge.datasets import load_dataset

    return list(dict.fromkeys(load_dataset("aflow_prototypes")["aflow_label"]))


# ---------------------------------------------------------------------------------------
# the whole data pipeline
# ---------------------------------------------------------------------------------------


def spacegroup_names() -> list[str]:
    """Class names of the space-group head: ``"Fm-3m (225)"`` for 1–230 (spglib's short
    Hermann–Mauguin symbols)."""
    import spglib

    names: dict[int, str] = {}
    for hall in range(1, 531):
        t = spglib.get_spacegroup_type(hall)
        names.setdefault(t.number, t.international_short)
    return [f"{names[n]} ({n})" for n in range(1, 231)]


def labels_for(sset: StructureSet, rows) -> dict[str, np.ndarray]:
    """Class indices of the classifier's heads for structures ``rows`` of ``sset``:
    crystal system (0–6), space group (0–229), prototype (index into
    :func:`prototype_labels`, −1 for none)."""
    rows = np.asarray(rows, dtype=np.int64)
    proto_index = {p: i for i, p in enumerate(prototype_labels())}
    proto = np.array([proto_index.get(p, -1) if p else -1 for p in sset.prototype], dtype=np.int64)
    return {
        "crystal_system": sset.crystal_system[rows],
        "spacegroup": sset.spacegroup[rows] - 1,
        "prototype": proto[rows],
    }


@dataclass
class PreparedData:
    """Structures, both splits and their augmented patterns.

    Training patterns (``train_dir``, :meth:`AugmentConfig.training`: realistic effects plus
    lattice and chemistry diversity) exist for structures on the training side of either
    split; evaluation patterns (``eval_dir``, the realistic :class:`AugmentConfig`) for
    structures on the validation or test side of either split.
    """

    structures: StructureSet
    chem_split: np.ndarray  # "train"/"val"/"test" per structure
    proto_split: np.ndarray
    train_dir: Path
    eval_dir: Path
    data_dir: Path
    grid: np.ndarray
    seed: int
    train_dirs: list[Path] = field(default_factory=list)  # one per round; [0] is train_dir

    @property
    def rounds(self) -> int:
        """Independently augmented draws of the training patterns."""
        return max(1, len(self.train_dirs))

    def patterns(self, split: str, part: str, max_per_structure: int | None = None, round: int = 0):
        """(x, labels, structure rows, raw shard arrays) of one side of a split.

        Args:
            split: ``"chemsys"`` or ``"prototype"``.
            part: ``"train"`` (training patterns), ``"val"`` or ``"test"`` (evaluation
                patterns).
            max_per_structure: keep only the first k patterns of each structure.
            round: which draw of the training patterns (``part="train"``); every round has
                the same structures in the same order, augmented afresh.
        """
        if split not in ("chemsys", "prototype") or part not in ("train", "val", "test"):
            raise ValueError(f"unknown split/part {split!r}/{part!r}")
        if not 0 <= round < self.rounds:
            raise ValueError(f"round {round} not made: the data has {self.rounds} round(s)")
        if round and (split, part) != ("chemsys", "train"):
            raise ValueError("rounds after the first hold the chemsys training side only")
        side = self.chem_split if split == "chemsys" else self.proto_split
        chosen = side == part
        folder = (self.train_dirs or [self.train_dir])[round] if part == "train" else self.eval_dir
        data = load_shards(folder, rows=lambda s: chosen[s["structure"]])
        rows = data["structure"].astype(np.int64)
        if max_per_structure is not None:
            order = np.argsort(rows, kind="stable")
            rank = np.empty(len(rows), dtype=np.int64)
            sorted_rows = rows[order]
            starts = np.searchsorted(sorted_rows, sorted_rows, side="left")
            rank[order] = np.arange(len(rows)) - starts
            keep = rank < max_per_structure
            data = {k: v[keep] for k, v in data.items()}
            rows = rows[keep]
        return data["x"], labels_for(self.structures, rows), rows, data


def prepare_data(
    data_dir,
    *,
    seed: int = 0,
    n_variants: int = 19,
    n_random: int = 40,
    train_patterns: int = 12,
    random_train_patterns: int = 6,
    eval_patterns: int = 4,
    train_rounds: int = 1,
    jobs: int = 1,
    grid=None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    training: bool = True,
) -> PreparedData:
    """Build (or reuse from ``data_dir``) structures, splits and augmented patterns.

    Everything is a function of the arguments: files in ``data_dir`` are reused only when
    they were made with the same settings. Patterns of one structure share a batch with
    structures on the same side of both splits (impurity phases never cross a split).

    Args:
        train_patterns: training patterns per prototype-derived structure on a training side.
        random_train_patterns: the same for random crystals (they are many and diverse).
        eval_patterns: evaluation patterns per structure on a validation or test side.
        train_rounds: independent augmentations of the training patterns (round 0 with
            ``seed``, round r with a seed derived from (``seed``, r)): training takes a fresh
            round every epoch. Rounds after the first cover the chemical-system split's
            training side only.
        jobs: processes that generate the rounds (each round is one process's work).
        training: False makes the structures and evaluation patterns only (what the
            benchmarks read), not the training rounds.
    """
    if train_rounds < 1:
        raise ValueError(f"train_rounds must be at least 1, got {train_rounds}")
    data_dir = Path(data_dir)
    grid = make_grid() if grid is None else np.asarray(grid, dtype=float)
    parts = []
    for name, make in (
        (
            f"prototypes_v{n_variants}_s{seed}",
            lambda: prototype_structures(n_variants, seed, progress=progress),
        ),
        (
            f"random2_r{n_random}_s{seed}",
            lambda: random_structures(n_random, seed, progress=progress),
        ),
    ):
        path = data_dir / f"{name}.parquet"
        if path.exists():
            parts.append(StructureSet.load(path))
            if log:
                log(f"reusing {len(parts[-1])} structures from {path}")
        else:
            parts.append(make())
            parts[-1].save(path)
            if log:
                log(f"built {len(parts[-1])} structures -> {path}")
    meta = {"n_variants": n_variants, "n_random": n_random, "seed": seed, "symprec": SYMPREC}
    sset = parts[0].concat(parts[1], meta=meta)
    chem = split_by_chemsys(sset, seed=seed)
    proto = split_by_prototype(sset, seed=seed)
    groups = np.char.add(np.char.add(chem.astype(str), "|"), proto.astype(str))
    stem = f"v{n_variants}_r{n_random}_s{seed}"
    train_rows = np.flatnonzero((chem == "train") | (proto == "train"))
    eval_rows = np.flatnonzero((chem != "train") | (proto != "train"))
    train_dir = data_dir / f"train_patterns_{stem}_n{train_patterns}_{random_train_patterns}"
    n_train = np.where(np.array(sset.source) == "pyxtal", random_train_patterns, train_patterns)
    eval_dir = data_dir / f"eval_patterns_{stem}_n{eval_patterns}"
    train_dirs = [train_dir] + [
        train_dir.with_name(f"{train_dir.name}_round{r}") for r in range(1, train_rounds)
    ]
    # round 0 serves both splits; later rounds only what `matforge xrd train` trains on, the
    # chemical-system split's training side (same order: a group never straddles a side)
    round_rows = [train_rows] + [np.flatnonzero(chem == "train")] * (train_rounds - 1)
    work = [
        dict(out_dir=d, grid=grid, n_per_structure=n_train, seed=round_seed(seed, r),
             config=AugmentConfig.training(), groups=groups, rows=round_rows[r],
             description=f"training patterns{f' (round {r})' if r else ''}")
        for r, d in enumerate(train_dirs)
    ]  # fmt: skip
    if training:
        _generate_rounds(sset, work, jobs=jobs, progress=progress, log=log)
    generate_shards(
        sset, eval_dir, grid=grid, n_per_structure=eval_patterns, seed=seed + 1,
        config=AugmentConfig(), groups=groups, rows=eval_rows, progress=progress,
        description="evaluation patterns",
    )  # fmt: skip
    if log:
        log(f"evaluation patterns in {eval_dir}")
    return PreparedData(sset, chem, proto, train_dir, eval_dir, data_dir, grid, seed, train_dirs)


def round_seed(seed: int, r: int) -> int:
    """The augmentation seed of training round ``r`` (round 0: ``seed`` itself, so a
    one-round data set is the one made before rounds existed)."""
    if r == 0:
        return seed
    return int(np.random.SeedSequence([seed, r]).generate_state(1)[0])


_ROUND_STRUCTURES: StructureSet | None = None  # a worker's copy of the structures


def _init_round_worker(sset: StructureSet) -> None:
    from threadpoolctl import threadpool_limits

    global _ROUND_STRUCTURES
    _ROUND_STRUCTURES = sset
    threadpool_limits(1)  # one core per round: the rounds are the parallelism


def _generate_round(kwargs: dict) -> str:
    return str(generate_shards(_ROUND_STRUCTURES, progress=False, **kwargs))


def _generate_rounds(sset: StructureSet, work: list[dict], *, jobs: int, progress: bool, log):
    """Run :func:`generate_shards` for every round in ``work``: in this process with a
    progress bar, or (``jobs`` > 1, more than one round) in ``jobs`` worker processes, each
    sent the structures once (spawned, not forked: the caller may hold torch's threads)."""
    todo = []
    for kwargs in work:  # finished rounds are reused here: no worker, no copy of the structures
        if _shards_complete(kwargs["out_dir"], _shard_settings(sset, **kwargs)):
            if log:
                log(f"{kwargs['description']} in {kwargs['out_dir']}")
        else:
            todo.append(kwargs)
    work = todo
    jobs = max(1, min(int(jobs), len(work)))
    if jobs == 1:
        for kwargs in work:
            generate_shards(sset, progress=progress, **kwargs)
            if log:
                log(f"{kwargs['description']} in {kwargs['out_dir']}")
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_init_round_worker, initargs=(sset,)
        ) as pool,
        _progress(progress) as bar,
    ):
        task = bar.add_task("training pattern rounds", total=len(work))
        futures = {pool.submit(_generate_round, kwargs): kwargs for kwargs in work}
        for done in as_completed(futures):
            path = done.result()
            bar.advance(task)
            if log:
                log(f"{futures[done]['description']} in {path}")


def grid_spec(grid) -> list[float]:
    """``[first, last, step]`` of a 2θ grid (degrees), as a classifier's metadata stores it."""
    step = round(float(grid[1] - grid[0]), 6)
    return [float(grid[0]), float(grid[-1]), step]


def classifier_classes() -> dict[str, list[str]]:
    """The label names of each head of the classifier (crystal system, space group, prototype)."""
    return {
        "crystal_system": list(CRYSTAL_SYSTEMS),
        "spacegroup": spacegroup_names(),
        "prototype": prototype_labels(),
    }


def prototype_info() -> dict[str, dict]:
    """Formula, mineral, Strukturbericht symbol and space group of each AFLOW prototype label
    (what `matforge xrd train` records in the classifier's metadata)."""
    from matforge.datasets import load_dataset

    df = load_dataset("aflow_prototypes")
    info: dict[str, dict] = {}
    for _, r in df.iterrows():
        info.setdefault(r["aflow_label"], {
            "formula": r["formula"], "mineral": r["mineral"] or None,
            "strukturbericht": r["strukturbericht"] or None,
            "spacegroup": int(r["spacegroup_number"]),
        })  # fmt: skip
    return info
