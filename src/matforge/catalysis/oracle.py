"""Atomistic oracle: ASE slabs and adsorption sites, relaxed with a machine-learned potential.

* :func:`build_slab` — an fcc(100) or fcc(111) slab of a :class:`~matforge.catalysis.Surface`
  built with ASE's own builders (``ase.build.fcc100`` / ``fcc111``) at the host's lattice
  constant (pseudomorphic: the top layer takes the host's spacing), then decorated: overlayer
  (every layer but the top is the guest), subsurface alloy (layer 2 is the guest),
  intermetallic T3B (the L1\\ :sub:`2` stacking under a T monolayer: mixed TB layers alternate
  with pure T layers, B on a checkerboard), single atom (one top-layer atom is the guest).
  Lattice constants: Magpie's fcc estimates (``GSestFCClatcnt``), Vegard's law for T3B.
* :func:`adsorption_sites` — the high-symmetry sites ASE itself defines for the facet
  (``ontop``, ``bridge``, ``hollow`` on (100); ``ontop``, ``bridge``, ``fcc``, ``hcp`` on (111)).
* :func:`adsorption_energy` — relaxes the clean slab and the slab with CO, H, O or OH on each
  site (BFGS, bottom two layers fixed), keeps the lowest, and references the gas phase:
  ``E(CO*) − E(*) − E(CO)``, ``E(H*) − E(*) − ½E(H2)``, ``E(O*) − E(*) − [E(H2O) − E(H2)]``,
  ``E(OH*) − E(*) − [E(H2O) − ½E(H2)]`` (eV).
* :func:`get_calculator` — ``"chgnet"`` (CHGNet, weights inside the ``chgnet`` package) or
  ``"sevenn"`` (SevenNet-0 inside ``sevenn``). Both were trained on bulk Materials Project
  data, never on adsorbates: their adsorption energies need the calibration of
  :mod:`matforge.catalysis.calibration`-style per-metal offsets before use, and are reported
  with their errors. EMT is refused: it is not an adsorption oracle.

ASE is imported inside the functions (``pip install ase``); a missing package raises
:class:`~matforge.errors.CatalysisError` naming what to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matforge.catalysis.surfaces import Surface, parse_surface
from matforge.errors import CatalysisError

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms

__all__ = [
    "ADSORBATE_GEOMETRY",
    "ORACLES",
    "adsorption_energy",
    "adsorption_sites",
    "build_slab",
    "gas_reference",
    "run_oracle_jobs",
    "get_calculator",
    "host_lattice_constant",
    "place_adsorbate",
]

ORACLES = ("chgnet", "sevenn")

#: adsorbate -> (atoms bottom-up, offsets along z of each atom from the binding atom, Å;
#: starting height of the binding atom above the surface plane, Å). Starting points only.
ADSORBATE_GEOMETRY: dict[str, tuple[str, tuple[float, ...], float]] = {
    "CO": ("CO", (0.0, 1.15), 1.85),
    "H": ("H", (0.0,), 1.2),
    "O": ("O", (0.0,), 1.3),
    "OH": ("OH", (0.0, 0.97), 1.5),
}


def _ase():
    try:
        import ase  # noqa: F401
        import ase.build
    except ImportError as exc:
        raise CatalysisError(
            "the atomistic oracle needs ASE: pip install 'ase>=3.23' (or pip install "
            "'matforge[catalysis]')"
        ) from exc
    return ase


def host_lattice_constant(surface: Surface) -> float:
    """fcc lattice constant (Å) the slab is built at: the host's (Vegard for T3B)."""
    from matforge.chem.elements import element_table

    a = element_table()["GSestFCClatcnt"]
    if surface.surface_type == "overlayer":
        return float(a[surface.guest])
    if surface.surface_type == "intermetallic":
        return float(0.75 * a[surface.top] + 0.25 * a[surface.guest])
    return float(a[surface.top])


def build_slab(surface: Surface | str, *, facet: str | None = None, size=(2, 2), layers: int = 4,
               vacuum: float = 10.0, a: float | None = None) -> Atoms:
    """The slab of ``surface`` (see the module docstring); ``atoms.get_tags()`` numbers the
    layers from the top (1 = top layer), as ASE does. Bottom two layers fixed."""
    _ase()
    from ase.build import fcc100, fcc111
    from ase.constraints import FixAtoms

    s = parse_surface(surface) if isinstance(surface, str) else surface
    facet = facet or s.facet
    if facet not in ("100", "111"):
        raise CatalysisError(f"facet must be '100' or '111', got {facet!r}")
    if layers < 3:
        raise CatalysisError(f"a slab needs at least 3 layers, got {layers}")
    a = a or host_lattice_constant(s)
    builder = fcc100 if facet == "100" else fcc111
    slab = builder(s.top, size=(size[0], size[1], layers), a=a, vacuum=vacuum, orthogonal=True)
    tags = slab.get_tags()
    symbols = np.array(slab.get_chemical_symbols(), dtype=object)
    if s.surface_type == "overlayer":
        symbols[tags > 1] = s.guest
    elif s.surface_type == "subsurface":
        symbols[tags == 2] = s.guest
    elif s.surface_type == "intermetallic":
        for layer in range(2, layers + 1, 2):  # mixed TB layers under the top: 2, 4, ...
            idx = np.flatnonzero(tags == layer)
            xy = slab.positions[idx, :2]
            cell = np.linalg.norm(slab.cell[:2, :2], axis=1) / np.array(size)
            ij = np.floor((xy - xy.min(axis=0)) / cell + 0.25).astype(int)
            idx = idx[ij.sum(axis=1) % 2 == 0]  # checkerboard, B above B (L1_2)
            symbols[idx] = s.guest
    elif s.surface_type == "single_atom":
        top = np.flatnonzero(tags == 1)
        symbols[top[0]] = s.guest
    slab.set_chemical_symbols(list(symbols))
    slab.set_constraint(FixAtoms(mask=tags >= layers - 1))
    slab.info["surface"] = s.notation
    slab.info["facet"] = facet
    return slab


def adsorption_sites(slab: Atoms) -> dict[str, np.ndarray]:
    """ASE's high-symmetry sites of the slab's facet: name -> (x, y) in Å."""
    info = slab.info.get("adsorbate_info")
    if not info:
        raise CatalysisError("the slab has no ASE site information (build it with build_slab)")
    cell = info["cell"]
    return {name: np.asarray(xy, dtype=float) @ cell for name, xy in info["sites"].items()}


def place_adsorbate(slab: Atoms, adsorbate: str, site: str) -> Atoms:
    """A copy of ``slab`` with ``adsorbate`` (binding atom first) at ``site`` (ASE's
    ``add_adsorbate`` for the binding atom, the rest stacked along z)."""
    _ase()
    from ase import Atoms
    from ase.build import add_adsorbate

    if adsorbate not in ADSORBATE_GEOMETRY:
        raise CatalysisError(f"unknown adsorbate {adsorbate!r}; known: {sorted(ADSORBATE_GEOMETRY)}")
    sites = adsorption_sites(slab)
    if site not in sites:
        raise CatalysisError(f"no site {site!r} on this facet; sites: {sorted(sites)}")
    formula, dz, height = ADSORBATE_GEOMETRY[adsorbate]
    symbols = [formula[0]] if formula in ("H", "O") else (["C", "O"] if formula == "CO" else ["O", "H"])
    mol = Atoms(symbols, positions=[(0.0, 0.0, z) for z in dz])
    out = slab.copy()
    add_adsorbate(out, mol, height, position=site, mol_index=0)
    return out


def get_calculator(name: str) -> Any:
    """An ASE calculator of a universal machine-learned potential shipped in a package.

    ``"chgnet"`` (CHGNet 0.3 weights in the ``chgnet`` package) or ``"sevenn"`` (SevenNet-0 in
    ``sevenn``). :class:`CatalysisError` for EMT (never an adsorption oracle), unknown names
    and packages that are not installed.
    """
    key = str(name).lower()
    if key == "emt":
        raise CatalysisError(
            "EMT is not an adsorption oracle (a fitted embedded-atom model for a few fcc metals, "
            f"with no adsorbate chemistry); use one of {ORACLES}"
        )
    if key not in ORACLES:
        raise CatalysisError(f"unknown oracle {name!r}; use one of {ORACLES}")
    _ase()
    try:
        if key == "chgnet":
            from chgnet.model.dynamics import CHGNetCalculator

            return CHGNetCalculator(use_device="cpu")
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator("7net-0", device="cpu")
    except ImportError as exc:
        raise CatalysisError(
            f"the {key!r} oracle needs the {key} package, which is not installed: "
            f"pip install -c constraints.txt {key} (keep torch==2.13.0 pinned)"
        ) from exc


def _relax(atoms: Atoms, calc, fmax: float, steps: int) -> float:
    from ase.optimize import BFGS

    atoms.calc = calc
    BFGS(atoms, logfile=None).run(fmax=fmax, steps=steps)
    return float(atoms.get_potential_energy())


def _gas(symbols: str, calc, fmax: float, steps: int) -> float:
    from ase.build import molecule

    mol = molecule(symbols)
    mol.center(vacuum=8.0)
    mol.pbc = True
    return _relax(mol, calc, fmax, steps)


def gas_reference(adsorbate: str, calc, fmax: float = 0.05, steps: int = 200) -> float:
    """Gas-phase reference energy (eV) of ``adsorbate`` with ``calc`` (see module docstring)."""
    if adsorbate == "CO":
        return _gas("CO", calc, fmax, steps)
    if adsorbate == "H":
        return 0.5 * _gas("H2", calc, fmax, steps)
    if adsorbate in ("O", "OH"):
        h2o, h2 = _gas("H2O", calc, fmax, steps), _gas("H2", calc, fmax, steps)
        return h2o - h2 if adsorbate == "O" else h2o - 0.5 * h2
    raise CatalysisError(f"unknown adsorbate {adsorbate!r}; known: {sorted(ADSORBATE_GEOMETRY)}")


def adsorption_energy(surface: Surface | str, adsorbate: str = "CO", *, calculator="chgnet",
                      facet: str | None = None, sites=None, fmax: float = 0.05,
                      steps: int = 200, size=(2, 2), layers: int = 4,
                      reference: float | None = None) -> dict:
    """Relaxed adsorption energy (eV) of ``adsorbate`` on ``surface``, lowest over ``sites``
    (default: every ASE site of the facet). ``calculator``: a name of :data:`ORACLES` or an
    ASE calculator object; ``reference`` the gas-phase reference (:func:`gas_reference`;
    computed when None). Returns ``{"energy", "site", "per_site", "structure"}`` (the
    relaxed structure of the best site as an ASE ``Atoms``)."""
    _ase()
    calc = get_calculator(calculator) if isinstance(calculator, str) else calculator
    slab = build_slab(surface, facet=facet, size=size, layers=layers)
    clean = slab.copy()
    if adsorbate not in ADSORBATE_GEOMETRY:
        raise CatalysisError(f"unknown adsorbate {adsorbate!r}; known: {sorted(ADSORBATE_GEOMETRY)}")
    e_slab = _relax(clean, calc, fmax, steps)
    ref = gas_reference(adsorbate, calc, fmax, steps) if reference is None else reference
    per_site, best, best_atoms = {}, None, None
    for site in sites or sorted(adsorption_sites(slab)):
        atoms = place_adsorbate(slab, adsorbate, site)
        e = _relax(atoms, calc, fmax, steps) - e_slab - ref
        per_site[site] = e
        if best is None or e < per_site[best]:
            best, best_atoms = site, atoms
    return {"energy": per_site[best], "site": best, "per_site": per_site,
            "structure": best_atoms}


def _job(args) -> dict:
    surface, adsorbate, calculator, kwargs, reference, structures = args
    import io
    import time

    from ase.io import write

    t0 = time.perf_counter()
    calc = _worker_calculator(calculator)
    ref = reference if reference is not None else gas_reference(adsorbate, calc)
    res = adsorption_energy(surface, adsorbate, calculator=calc, reference=ref, **kwargs)
    buf = io.StringIO()
    write(buf, res["structure"], format="extxyz")
    if structures:
        Path(structures).mkdir(parents=True, exist_ok=True)
        (Path(structures) / f"{surface}_{adsorbate}.extxyz").write_text(buf.getvalue())
    return {"surface": surface, "adsorbate": adsorbate, "oracle": calculator,
            "energy": res["energy"], "site": res["site"], "per_site": res["per_site"],
            "seconds": round(time.perf_counter() - t0, 1)}


_CALCS: dict = {}


def _worker_calculator(name: str):
    if name not in _CALCS:  # one model per worker process, loaded once
        _CALCS[name] = get_calculator(name)
    return _CALCS[name]


def run_oracle_jobs(surfaces, adsorbate: str = "CO", *, calculator: str = "chgnet",
                    results: str | Path = "oracle.jsonl", structures: str | Path | None = None,
                    workers: int = 1, progress=None, **kwargs) -> list[dict]:
    """Compute ``adsorbate`` on every surface as independent jobs, resumably.

    Each finished job appends one JSON line to ``results`` (surface, energy in eV, best site,
    per-site energies, seconds); surfaces already there are skipped, so an interrupted run
    continues where it stopped. Relaxed structures go to ``structures/<surface>_<ads>.extxyz``.
    ``workers > 1`` runs jobs in a local process pool (one calculator per process).
    ``progress(done, total, record)`` is called after each job. Returns every record.
    """
    import json
    from concurrent.futures import ProcessPoolExecutor

    get_calculator(calculator) if workers <= 1 else _check_oracle_installed(calculator)
    results = Path(results)
    done: dict[str, dict] = {}
    if results.exists():
        for line in results.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                if rec.get("adsorbate") == adsorbate and rec.get("oracle") == calculator:
                    done[rec["surface"]] = rec
    names = [s if isinstance(s, str) else s.notation for s in surfaces]
    todo = [n for n in dict.fromkeys(names) if n not in done]
    results.parent.mkdir(parents=True, exist_ok=True)
    ref = None
    if workers <= 1:
        ref = gas_reference(adsorbate, _worker_calculator(calculator))
    jobs = [(n, adsorbate, calculator, kwargs, ref, structures) for n in todo]
    total, count = len(names), len(names) - len(todo)

    def record(rec):
        nonlocal count
        with results.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        done[rec["surface"]] = rec
        count += 1
        if progress:
            progress(count, total, rec)

    if workers <= 1:
        for job in jobs:
            record(_job(job))
    else:
        with ProcessPoolExecutor(workers) as pool:
            for rec in pool.map(_job, jobs):
                record(rec)
    return [done[n] for n in dict.fromkeys(names)]


def _check_oracle_installed(name: str) -> None:
    import importlib.util

    get_calculator("emt") if str(name).lower() == "emt" else None
    if str(name).lower() not in ORACLES:
        raise CatalysisError(f"unknown oracle {name!r}; use one of {ORACLES}")
    if importlib.util.find_spec(str(name).lower()) is None:
        raise CatalysisError(
            f"the {name!r} oracle needs the {name} package, which is not installed: "
            f"pip install -c constraints.txt {name} (keep torch==2.13.0 pinned)"
        )
