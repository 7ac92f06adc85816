"""Crystal structures in the store: read structure files, keep them compactly, query, export.

A material (one composition, :data:`matforge.store.schema.materials`) has zero or more
structures: a refined CIF, a relaxed cell from DFT or an ML potential, a structure matched by
``matforge xrd identify``. Each is one row of the ``structures`` table, owned by a project (it
is visible exactly where the project is, like a measurement), with its provenance (``method``,
``source``, who, when) and what is known of it: space group (spglib via pymatgen's
``SpacegroupAnalyzer``), density (g/cm^3), volume (Å^3), energy (eV/atom) when the file gave
one, and any other numbers in ``properties``.

The structure itself is ``Structure.as_dict()`` as zlib-compressed JSON (``data``): a
10,368-atom cell is 1.8 MB of JSON and 0.1 MB stored. The columns that filters use (elements,
nelements, space group number; project with checksum) are indexed, so a search never
decompresses a structure it does not return.

This module owns the table and its SQL: :func:`ingest_structures` (a folder or an archive of
files, all or nothing or ``skip_invalid``, duplicates found with pymatgen's
``StructureMatcher``), :func:`add_structures` (structures from Python) and
:func:`add_xrd_match`, :func:`select` (the query the CLI and the server share),
:func:`load_structures`, :func:`structures_frame` and :func:`export_structures`.

``structure_optimade`` holds what the OPTIMADE endpoint needs to filter structures and the
store does not (public ids depend on the server's key): filled in lazily by
:mod:`matforge.server.optimade.entries`, as ``optimade_structures`` is for materials.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from matforge import errors
from matforge.errors import IngestError, StoreError
from matforge.store import schema
from matforge.store.database import write_transaction
from matforge.store.schema import BigId, JSONType, metadata

if TYPE_CHECKING:
    import pandas as pd
    from pymatgen.core import Structure

    from matforge.store.store import Store

Timestamp = sa.DateTime(timezone=True)

#: How a structure was obtained.
METHODS = ("experiment", "refinement", "dft", "ml_relaxation", "xrd_match")
#: Most sites a structure may have (``max_sites`` changes it per call).
MAX_SITES = 100_000
#: Largest cell whose space group is computed: spglib's time grows with the square of the
#: sites (0.1 s for 1,000, 1.4 s for 3,072, 18 s for 10,368 on one core); bigger cells are
#: stored without a space group, and deduplicated by their exact content only.
SYMMETRY_MAX_SITES = 5_000
#: spglib's tolerances (Å, degrees): loose enough for refined and relaxed cells alike.
SYMPREC, ANGLE_TOLERANCE = 0.1, 5.0
#: Two atoms of an ordered structure closer than this (Å) are one atom written twice.
MIN_DISTANCE = 0.5
#: ``StructureMatcher`` tolerances for "the same structure": the same cell up to setting,
#: origin and rounding, not a relaxed version of it (``scale=False``: volumes must agree).
MATCHER = {"ltol": 0.05, "stol": 0.1, "angle_tol": 2.0, "scale": False, "primitive_cell": True}
#: Largest file (bytes) read from a folder or an archive.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Export formats and their file suffixes.
FORMATS = {"cif": ".cif", "poscar": ".vasp", "extxyz": ".extxyz"}

_CIF_SUFFIXES = (".cif", ".mcif")
_POSCAR_SUFFIXES = (".vasp", ".poscar")
_XYZ_SUFFIXES = (".xyz", ".extxyz")
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
ACCEPTED = "CIF (.cif), POSCAR/CONTCAR (or .vasp), extended XYZ (.xyz, .extxyz), ASE database (.db), pymatgen JSON (.json)"

structures = sa.Table(
    "structures",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("material_id", BigId, sa.ForeignKey("materials.id"), nullable=False, index=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    # the cell's formula ("Na4Cl4"); its material has the reduced one
    sa.Column("formula", sa.String(500), nullable=False),
    # "-Cl-Na-", as materials.elements
    sa.Column("elements", sa.String(500), nullable=False, index=True),
    sa.Column("nelements", sa.Integer, nullable=False, index=True),
    sa.Column("nsites", sa.Integer, nullable=False),
    sa.Column("spacegroup_number", sa.Integer, nullable=True, index=True),
    sa.Column("spacegroup_symbol", sa.String(32), nullable=True),
    sa.Column("is_ordered", sa.Boolean, nullable=False),
    sa.Column("volume", sa.Float, nullable=False),  # Å^3
    sa.Column("density", sa.Float, nullable=False),  # g/cm^3
    sa.Column("energy_per_atom", sa.Float, nullable=True),  # eV/atom
    sa.Column("properties", JSONType, nullable=True),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("source", sa.Text, nullable=True),
    # sha256 of the structure's canonical JSON: exact duplicates, and big cells
    sa.Column("checksum", sa.String(64), nullable=False),
    # zlib-compressed JSON of Structure.as_dict()
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.CheckConstraint("method IN (" + ", ".join(f"'{m}'" for m in METHODS) + ")", name="method"),
    sa.Index("ix_structures_project_id_checksum", "project_id", "checksum"),
)

structure_optimade = sa.Table(
    "structure_optimade",
    metadata,
    sa.Column("structure_id", BigId, sa.ForeignKey("structures.id"), primary_key=True),
    sa.Column("public_id", sa.String(64), nullable=False, unique=True),
    sa.Column("chemical_formula_reduced", sa.String(500), nullable=False, index=True),
    sa.Column("chemical_formula_anonymous", sa.String(500), nullable=False),
    sa.Column("nperiodic_dimensions", sa.Integer, nullable=True),
    # "-disorder-" style sets (like materials.elements) so HAS is a substring test
    sa.Column("structure_features", sa.String(100), nullable=False, server_default="-"),
    sa.Column("species_names", sa.Text, nullable=True),
)

#: The columns of :func:`select` and :func:`structures_frame` (everything but the structure).
SUMMARY_COLUMNS = [
    "id",
    "project",
    "project_id",
    "material_id",
    "formula",
    "reduced_formula",
    "elements",
    "nelements",
    "nsites",
    "spacegroup_number",
    "spacegroup_symbol",
    "is_ordered",
    "volume",
    "density",
    "energy_per_atom",
    "properties",
    "method",
    "source",
    "created_at",
    "created_by",
]


#: A structure file cannot be read or holds something that is not a valid crystal structure
#: (:class:`matforge.errors.StructureIngestError`: both an ingest error and a
#: :class:`matforge.errors.StructureFileError`), under the name this module has always used.
StructureFileError = errors.StructureIngestError


# --- reading files --------------------------------------------------------------------------


@dataclass
class ParsedStructure:
    """One structure read from a file: ``name`` says where (``a.cif``, ``b.cif#2`` for its
    second data block, ``run.extxyz#frame 3``, ``cells.zip:x/POSCAR``)."""

    name: str
    structure: Structure
    energy_per_atom: float | None = None  # eV/atom
    properties: dict | None = None


@dataclass(frozen=True)
class FileError:
    """Why a file (or an entry in it) was not stored."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def file_format(name: str) -> str | None:
    """``cif``, ``poscar``, ``extxyz``, ``ase-db`` or ``json`` from a file name; None when the
    name says none of them."""
    base = os.path.basename(name)
    lower = base.lower()
    if lower.endswith(_CIF_SUFFIXES):
        return "cif"
    if lower.endswith(_POSCAR_SUFFIXES) or base.upper().startswith(("POSCAR", "CONTCAR")):
        return "poscar"
    if lower.endswith(_XYZ_SUFFIXES):
        return "extxyz"
    if lower.endswith(".db"):
        return "ase-db"
    if lower.endswith(".json"):
        return "json"
    return None


def _first_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_cif(path: Path, name: str) -> list[ParsedStructure]:
    from pymatgen.io.cif import CifParser

    parser = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = CifParser(path, check_cif=False)
            found = parser.parse_structures(primitive=False, on_error="warn")
        except Exception as exc:  # noqa: BLE001 (pymatgen raises many kinds on bad CIFs)
            found, error = [], exc
        else:
            error = None
    problems = [str(w.message) for w in caught]
    if not found:
        # pymatgen says why per data block in its warnings ("No structure parsed for section
        # 1 in CIF.\n<reason>"); the generic "Invalid CIF file" alone helps nobody
        reasons = [
            p.split("\n", 1)[1]
            for p in problems
            if p.startswith("No structure parsed") and "\n" in p
        ]
        detail = "; ".join(dict.fromkeys(_first_line(r) for r in reasons))
        missing = _missing_cell_keys(parser) if parser is not None else []
        if missing:
            detail = "; ".join(missing)
        if not detail and error is not None:
            detail = _first_line(f"{type(error).__name__}: {error}")
        raise StructureFileError(f"{name}: not a readable CIF ({detail or 'no structure in it'})")
    many = len(found) > 1
    return [ParsedStructure(f"{name}#{i + 1}" if many else name, s) for i, s in enumerate(found)]


_CELL_KEYS = tuple(f"_cell_length_{x}" for x in "abc") + tuple(
    f"_cell_angle_{x}" for x in ("alpha", "beta", "gamma")
)


def _missing_cell_keys(parser) -> list[str]:
    """``data block 'x' has no _cell_length_b`` for each CIF data block without a cell."""
    out = []
    for block in getattr(getattr(parser, "_cif", None), "data", {}).values():
        keys = set(getattr(block, "data", {}))
        if not keys & {"_atom_site_fract_x", "_atom_site_cartn_x"}:
            continue  # not a crystal structure block (e.g. a publication block)
        lacking = [k for k in _CELL_KEYS if k not in keys]
        if lacking:
            out.append(f"data block {block.header!r} has no {', '.join(lacking)}")
    return out


def _read_poscar(path: Path, name: str) -> list[ParsedStructure]:
    from pymatgen.io.vasp import Poscar

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Poscar.from_file(path, check_for_potcar=False).structure
    except Exception as exc:  # noqa: BLE001
        raise StructureFileError(
            f"{name}: not a readable POSCAR ({_first_line(f'{type(exc).__name__}: {exc}')})"
        ) from None
    return [ParsedStructure(name, structure)]


def _atoms_energy(atoms) -> float | None:
    energy = None
    if atoms.calc is not None:
        with contextlib.suppress(Exception):
            energy = atoms.get_potential_energy()
    if energy is None:
        energy = atoms.info.get("energy")
    try:
        energy = float(energy)
    except (TypeError, ValueError):
        return None
    return energy / len(atoms) if math.isfinite(energy) and len(atoms) else None


def _from_atoms(atoms, name: str) -> ParsedStructure:
    from pymatgen.io.ase import AseAtomsAdaptor

    if not all(atoms.pbc) or abs(atoms.cell.volume) < 1e-9:
        raise StructureFileError(
            f"{name}: no periodic cell (a molecule, or a frame without Lattice=): not a crystal "
            "structure"
        )
    energy = _atoms_energy(atoms)
    atoms = atoms.copy()
    atoms.calc = None
    structure = AseAtomsAdaptor.get_structure(atoms)
    for key in list(structure.site_properties):  # forces, momenta: not part of a structure
        structure.remove_site_property(key)
    return ParsedStructure(name, structure, energy_per_atom=energy)


def _read_extxyz(path: Path, name: str) -> list[ParsedStructure]:
    from ase.io import read

    try:
        frames = read(path, index=":", format="extxyz")
    except Exception as exc:  # noqa: BLE001
        raise StructureFileError(
            f"{name}: not a readable extended XYZ file ({_first_line(f'{type(exc).__name__}: {exc}')})"
        ) from None
    if not frames:
        raise StructureFileError(f"{name}: no frame in the file")
    many = len(frames) > 1
    return [_from_atoms(a, f"{name}#frame {i + 1}" if many else name) for i, a in enumerate(frames)]


def _read_ase_db(path: Path, name: str) -> list[ParsedStructure]:
    from ase.db import connect

    try:
        with connect(path, type="db") as db:
            rows = [(row.id, row.toatoms(), row.get("energy")) for row in db.select()]
    except Exception as exc:  # noqa: BLE001
        raise StructureFileError(
            f"{name}: not a readable ASE database ({_first_line(f'{type(exc).__name__}: {exc}')})"
        ) from None
    if not rows:
        raise StructureFileError(f"{name}: the ASE database has no rows")
    out = []
    for row_id, atoms, energy in rows:
        if energy is not None:
            atoms.info["energy"] = energy
        out.append(_from_atoms(atoms, f"{name}#id={row_id}"))
    return out


def _read_json(path: Path, name: str) -> list[ParsedStructure]:
    from pymatgen.core import Structure

    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        items = content if isinstance(content, list) else [content]
        found = [Structure.from_dict(d) for d in items]
    except Exception as exc:  # noqa: BLE001
        raise StructureFileError(
            f"{name}: not a pymatgen Structure as JSON ({_first_line(f'{type(exc).__name__}: {exc}')})"
        ) from None
    many = len(found) > 1
    return [ParsedStructure(f"{name}#{i + 1}" if many else name, s) for i, s in enumerate(found)]


_READERS = {
    "cif": _read_cif,
    "poscar": _read_poscar,
    "extxyz": _read_extxyz,
    "ase-db": _read_ase_db,
    "json": _read_json,
}


def read_structure_file(path: str | os.PathLike, name: str | None = None) -> list[ParsedStructure]:
    """The structures of one file, read with pymatgen (CIF, POSCAR, JSON) or ASE (extended
    XYZ, ASE database) as its name says; ``name`` is how errors name the file (default: its
    path). Raises :class:`StructureFileError` for a file that cannot be read."""
    path = Path(path)
    name = name or str(path)
    kind = file_format(path.name)
    if kind is None:
        raise StructureFileError(f"{name}: not a structure file matforge reads ({ACCEPTED})")
    return _READERS[kind](path, name)


def check_structure(parsed: ParsedStructure, max_sites: int = MAX_SITES) -> None:
    """Refuse (:class:`StructureFileError`) what is not a storable crystal structure: no sites
    or more than ``max_sites``, a degenerate cell, coordinates that are not finite, a site
    that is not an element, occupancies over 1, atoms of an ordered structure closer than
    :data:`MIN_DISTANCE`."""
    import numpy as np

    s, name = parsed.structure, parsed.name
    n = len(s)
    if n == 0:
        raise StructureFileError(f"{name}: the structure has no sites")
    if n > max_sites:
        raise StructureFileError(
            f"{name}: {n:,} sites, more than the {max_sites:,} a structure may have"
        )
    volume = s.lattice.volume
    if not math.isfinite(volume) or volume < 1e-3:
        raise StructureFileError(f"{name}: the cell is degenerate (volume {volume:.3g} Å^3)")
    if not np.isfinite(s.frac_coords).all():
        raise StructureFileError(f"{name}: some coordinates are not finite numbers")
    for i, site in enumerate(s):
        for sp in site.species:
            if (
                not hasattr(sp, "Z")
                or getattr(sp, "Z", 0) < 1
                or type(sp).__name__ == "DummySpecies"
            ):
                raise StructureFileError(f"{name}: site {i + 1} holds {sp}, not a chemical element")
        occupancy = sum(site.species.values())
        if occupancy > 1 + 1e-3:
            raise StructureFileError(
                f"{name}: site {i + 1} has a total occupancy of {occupancy:.3f}, more than 1"
            )
    if s.is_ordered and n > 1:
        centers, neighbors, _, distances = s.get_neighbor_list(MIN_DISTANCE)
        if len(distances):
            k = int(np.argmin(distances))
            raise StructureFileError(
                f"{name}: sites {centers[k] + 1} and {neighbors[k] + 1} are "
                f"{distances[k]:.3f} Å apart (less than {MIN_DISTANCE} Å: one atom written twice?)"
            )


@contextlib.contextmanager
def _files(source: Path) -> Iterator[list[tuple[str, Path]]]:
    """``(name, path)`` of every file of a folder (recursively, hidden files skipped) or an
    archive (extracted to a temporary folder; names are ``archive.zip:member``), or of the
    file ``source`` itself."""
    if source.is_dir():
        yield [
            (str(p.relative_to(source.parent)), p)
            for p in sorted(source.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(source).parts)
        ]
        return
    if not source.is_file():
        raise StructureFileError(f"{source}: no such file or folder")
    lower = source.name.lower()
    if not lower.endswith(_ARCHIVE_SUFFIXES):
        yield [(source.name, source)]
        return
    with tempfile.TemporaryDirectory(prefix="matforge-structures-") as tmp:
        yield _extract(source, Path(tmp))


def _extract(archive: Path, into: Path) -> list[tuple[str, Path]]:
    """Extract the regular files of ``archive`` into ``into`` under numbered names (a member
    named ``../x`` cannot escape); ``(archive:member, path)`` per file, in archive order."""
    out: list[tuple[str, Path]] = []

    def keep(member: str, read) -> None:
        base = os.path.basename(member.rstrip("/"))
        if not base or any(p.startswith(".") for p in member.split("/") if p):
            return
        folder = into / str(len(out))
        folder.mkdir()
        path = folder / base
        with open(path, "wb") as f:
            f.write(read())
        out.append((f"{archive.name}:{member}", path))

    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    if info.is_dir():
                        continue
                    if info.file_size > MAX_FILE_BYTES:
                        raise StructureFileError(
                            f"{archive.name}:{info.filename}: {info.file_size:,} bytes, more than "
                            f"{MAX_FILE_BYTES:,}"
                        )
                    keep(info.filename, lambda info=info, z=z: z.read(info))
        else:
            with tarfile.open(archive) as t:
                for member in t.getmembers():
                    if not member.isfile():
                        continue
                    if member.size > MAX_FILE_BYTES:
                        raise StructureFileError(
                            f"{archive.name}:{member.name}: {member.size:,} bytes, more than "
                            f"{MAX_FILE_BYTES:,}"
                        )
                    keep(member.name, lambda m=member, t=t: t.extractfile(m).read())
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise StructureFileError(
            f"{archive}: not a readable archive ({_first_line(f'{type(exc).__name__}: {exc}')})"
        ) from None
    return out


def read_structures(
    source: str | os.PathLike, max_sites: int = MAX_SITES
) -> tuple[list[ParsedStructure], list[FileError], int]:
    """Every structure of a folder, an archive (.zip, .tar, .tar.gz) or one file, checked with
    :func:`check_structure`; returns ``(structures, errors, number of files)``. A file that
    cannot be read is one error; an unreadable entry of a file that holds several (a CIF data
    block, an extended XYZ frame) another."""
    source = Path(source)
    parsed: list[ParsedStructure] = []
    errors: list[FileError] = []
    with _files(source) as files:
        for name, path in files:
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise StructureFileError(
                        f"{name}: {path.stat().st_size:,} bytes, more than {MAX_FILE_BYTES:,}"
                    )
                found = read_structure_file(path, name)
            except StructureFileError as exc:
                errors.append(FileError(name, str(exc).removeprefix(f"{name}: ")))
                continue
            for item in found:
                try:
                    check_structure(item, max_sites)
                except StructureFileError as exc:
                    errors.append(FileError(item.name, str(exc).removeprefix(f"{item.name}: ")))
                    continue
                parsed.append(item)
        n_files = len(files)
    if n_files == 0:
        raise StructureFileError(f"{source}: no files in it")
    return parsed, errors, n_files


# --- the stored form ------------------------------------------------------------------------


def encode(structure: Structure) -> tuple[bytes, str]:
    """``(zlib-compressed JSON, sha256 of the JSON)`` of a structure."""
    text = json.dumps(structure.as_dict(), sort_keys=True, separators=(",", ":"))
    return zlib.compress(text.encode("utf-8"), 6), hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode(data: bytes) -> Structure:
    """The structure of a ``data`` cell."""
    from pymatgen.core import Structure

    return Structure.from_dict(json.loads(zlib.decompress(data)))


def decode_dict(data: bytes) -> dict:
    """The ``Structure.as_dict()`` of a ``data`` cell, without building the Structure."""
    return json.loads(zlib.decompress(data))


def space_group(structure: Structure) -> tuple[int | None, str | None]:
    """(International number, Hermann–Mauguin symbol) from spglib via ``SpacegroupAnalyzer``
    (:data:`SYMPREC` Å, :data:`ANGLE_TOLERANCE` degrees); (None, None) for a cell over
    :data:`SYMMETRY_MAX_SITES` sites or one spglib cannot analyse."""
    if len(structure) > SYMMETRY_MAX_SITES:
        return None, None
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sga = SpacegroupAnalyzer(structure, symprec=SYMPREC, angle_tolerance=ANGLE_TOLERANCE)
            return int(sga.get_space_group_number()), str(sga.get_space_group_symbol())
    except Exception:  # noqa: BLE001 (spglib fails on some disordered or odd cells)
        return None, None


@dataclass
class _Row:
    """A structure ready to be written."""

    name: str
    structure: Structure
    record: object  # MaterialRecord
    values: dict


def _prepare(item: ParsedStructure, method: str, source: str | None) -> _Row:
    from matforge.store.validation import _ONES, material_record

    s = item.structure
    comp = s.composition.element_composition
    data, checksum = encode(s)
    number, symbol = space_group(s)
    symbols = sorted(el.symbol for el in comp.elements)
    values = {
        "formula": _ONES.sub("", comp.formula.replace(" ", "")),
        "elements": "-" + "-".join(symbols) + "-",
        "nelements": len(symbols),
        "nsites": len(s),
        "spacegroup_number": number,
        "spacegroup_symbol": symbol,
        "is_ordered": bool(s.is_ordered),
        "volume": float(s.volume),
        "density": float(s.density),
        "energy_per_atom": item.energy_per_atom,
        "properties": item.properties or None,
        "method": method,
        "source": source if source is not None else item.name,
        "checksum": checksum,
        "data": data,
    }
    return _Row(item.name, s, material_record(comp.reduced_composition), values)


def _matcher():
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**MATCHER)


def _same(a: _Row | dict, b: _Row | dict, matcher, load) -> bool:
    """Whether two structures are one: the same checksum, or (cells small enough to compare)
    the same space group and formula, densities within 1 %, and a StructureMatcher fit."""
    va = a.values if isinstance(a, _Row) else a
    vb = b.values if isinstance(b, _Row) else b
    if va["checksum"] == vb["checksum"]:
        return True
    if (
        va["spacegroup_number"] is None
        or va["spacegroup_number"] != vb["spacegroup_number"]
        or abs(va["density"] - vb["density"]) > 0.01 * max(va["density"], vb["density"])
        or va["nsites"] > SYMMETRY_MAX_SITES
        or vb["nsites"] > SYMMETRY_MAX_SITES
    ):
        return False
    sa_ = a.structure if isinstance(a, _Row) else load(a)
    sb = b.structure if isinstance(b, _Row) else load(b)
    try:
        return bool(matcher.fit(sa_, sb))
    except Exception:  # noqa: BLE001 (the matcher fails on some disordered pairs)
        return False


def _project_id(conn: sa.Connection, name: str) -> int | None:
    p = schema.projects
    return conn.execute(sa.select(p.c.id).where(p.c.name == name)).scalar()


def _stored_candidates(store: Store, project: str, rows: list[_Row]) -> dict[str, list[dict]]:
    """Stored structures of ``project`` that a row may duplicate, by material key."""
    s, mat = structures, schema.materials
    keys = sorted({r.record.key for r in rows})
    out: dict[str, list[dict]] = {}
    if not keys:
        return out
    with store.engine.connect() as conn:
        pid = _project_id(conn, project)
        if pid is None:
            return out
        for start in range(0, len(keys), 5_000):
            chunk = keys[start : start + 5_000]
            found = conn.execute(
                sa.select(
                    s.c.id,
                    mat.c.key,
                    s.c.checksum,
                    s.c.spacegroup_number,
                    s.c.density,
                    s.c.nsites,
                    s.c.source,
                )
                .join_from(s, mat, s.c.material_id == mat.c.id)
                .where(s.c.project_id == pid, mat.c.key.in_(chunk))
            ).all()
            for r in found:
                out.setdefault(r.key, []).append(dict(r._mapping))
    return out


def _load_stored(store: Store):
    cache: dict[int, Structure] = {}

    def load(row: dict) -> Structure:
        if row["id"] not in cache:
            cache[row["id"]] = load_structures(store, [row["id"]])[row["id"]]
        return cache[row["id"]]

    return load


@dataclass
class StructureIngestReport:
    """What :func:`ingest_structures` or :func:`add_structures` did.

    ``ids`` are the store ids of the structures written, in input order; ``duplicates`` pairs
    each structure not written with what it duplicates (an earlier one of the same input, or
    ``stored structure N`` of the project); ``errors`` are the files or entries refused."""

    source: str
    project: str
    n_files: int = 0
    n_read: int = 0
    ids: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    duplicate_ids: list[int] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)

    @property
    def n_written(self) -> int:
        return len(self.ids)

    def __str__(self) -> str:
        origin = f"{self.n_files:,} file(s) of {self.source}" if self.n_files else self.source
        text = (
            f"{self.n_written:,} of {self.n_read:,} structures from {origin} written to project "
            f"'{self.project}'"
        )
        if self.duplicates:
            text += f"; {len(self.duplicates):,} duplicate(s) not stored again"
        if self.errors:
            text += f"; {len(self.errors):,} file(s) or entries refused"
        return text


def _refusal(errors: list[FileError], where: str, n: int) -> StructureFileError:
    lines = [
        f"{len(errors)} of the {n} file(s) or entries of {where} are invalid; nothing was written:"
    ]
    lines += [f"  {e}" for e in errors[:50]]
    if len(errors) > 50:
        lines.append(f"  ... and {len(errors) - 50} more (all in StructureFileError.rows)")
    lines.append("Pass skip_invalid=True (CLI: --skip-invalid) to store the valid ones.")
    return StructureFileError("\n".join(lines), rows=[(e.name, e.reason) for e in errors])


def _check_request(project: str, method: str) -> None:
    if not project or not isinstance(project, str):
        raise IngestError(f"project must be a non-empty string, got {project!r}")
    if method not in METHODS:
        raise IngestError(f"method must be one of {', '.join(METHODS)}; got {method!r}")


def _write(
    store: Store,
    items: list[ParsedStructure],
    report: StructureIngestReport,
    *,
    method: str,
    source: str | None,
    created_by: str | None,
    dedupe: bool,
) -> StructureIngestReport:
    from matforge.store.store import _user

    rows = [_prepare(item, method, source) for item in items]
    keep: list[_Row] = []
    if dedupe:
        matcher = _matcher()
        stored = _stored_candidates(store, report.project, rows)
        load = _load_stored(store)
        for row in rows:
            twin = next((k for k in keep if k.record.key == row.record.key
                         and _same(row, k, matcher, load)), None)  # fmt: skip
            if twin is not None:
                report.duplicates.append((row.name, twin.name))
                continue
            old = next(
                (o for o in stored.get(row.record.key, []) if _same(row, o, matcher, load)), None
            )
            if old is not None:
                report.duplicates.append((row.name, f"stored structure {old['id']}"))
                report.duplicate_ids.append(int(old["id"]))
                continue
            keep.append(row)
    else:
        keep = rows
    if not keep:
        return report
    now = datetime.now(UTC)
    who = created_by or _user()
    with write_transaction(store.engine) as conn:
        project_id = store._project_id(conn, report.project)
        material_ids = store._material_ids(conn, [r.record for r in keep])
        for row, material_id in zip(keep, material_ids, strict=True):
            new_id = conn.execute(
                sa.insert(structures).values(
                    material_id=material_id,
                    project_id=project_id,
                    created_at=now,
                    created_by=who,
                    **row.values,
                )
            ).inserted_primary_key[0]
            report.ids.append(int(new_id))
            report.names.append(row.name)
    return report


def ingest_structures(
    store: Store,
    source: str | os.PathLike,
    project: str,
    *,
    method: str = "experiment",
    skip_invalid: bool = False,
    dedupe: bool = True,
    created_by: str | None = None,
    max_sites: int = MAX_SITES,
) -> StructureIngestReport:
    """Store the structures of a folder, an archive (.zip, .tar, .tar.gz) or one file in
    ``project``.

    Files are read by their names (:data:`ACCEPTED`): CIFs with pymatgen's ``CifParser``
    (every data block), POSCAR/CONTCAR with ``Poscar``, extended XYZ (every frame; an
    ``energy`` is kept as eV/atom) and ASE databases with ASE. Every structure is checked
    (:func:`check_structure`) and gets its space group, density and volume. Each keeps its
    file as ``source`` (``cells.zip:x/POSCAR``, ``a.cif#2`` for a second data block).

    All or nothing: if any file or entry is bad, :class:`StructureFileError` names each (file
    and reason) and nothing is written; with ``skip_invalid=True`` the good ones are written
    and the bad ones listed in the report's ``errors``. A structure the same as another of
    the input, or as one the project already holds (``StructureMatcher`` with
    :data:`MATCHER`), is not stored again (``dedupe=False`` stores it all the same) and is
    listed in ``duplicates``. The write is one transaction.
    """
    _check_request(project, method)
    source = Path(source)
    items, errors, n_files = read_structures(source, max_sites)
    report = StructureIngestReport(str(source), project, n_files, len(items) + len(errors))
    report.errors = errors
    if errors and not skip_invalid:
        raise _refusal(errors, str(source), report.n_read)
    return _write(
        store, items, report, method=method, source=None, created_by=created_by, dedupe=dedupe
    )


def add_structures(
    store: Store,
    items: Iterable[Structure],
    project: str,
    *,
    method: str,
    source: str | None = None,
    properties: Sequence[dict | None] | None = None,
    energies_per_atom: Sequence[float | None] | None = None,
    dedupe: bool = True,
    created_by: str | None = None,
    max_sites: int = MAX_SITES,
) -> StructureIngestReport:
    """Store pymatgen structures in ``project`` (one transaction; checked as
    :func:`ingest_structures` checks files, and refused whole if any is invalid), each with
    ``source``, its ``properties`` (a dict of numbers and text) and energy (eV/atom)."""
    _check_request(project, method)
    items = list(items)
    props = list(properties) if properties is not None else [None] * len(items)
    energies = list(energies_per_atom) if energies_per_atom is not None else [None] * len(items)
    if not (len(props) == len(energies) == len(items)):
        raise IngestError("properties and energies_per_atom need one entry per structure")
    where = source or "the structures"
    parsed = []
    for i, (s, p, e) in enumerate(zip(items, props, energies, strict=True)):
        if not hasattr(s, "lattice") or not hasattr(s, "sites"):
            raise IngestError(f"item {i} of {where} is a {type(s).__name__}, not a Structure")
        if p is not None:
            try:
                json.dumps(p, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise IngestError(f"properties of item {i} of {where}: {exc}") from None
        parsed.append(ParsedStructure(f"{where} #{i}" if len(items) > 1 else where, s, e, p))
    errors = []
    for item in parsed:
        try:
            check_structure(item, max_sites)
        except StructureFileError as exc:
            errors.append(FileError(item.name, str(exc).removeprefix(f"{item.name}: ")))
    if errors:
        raise _refusal(errors, where, len(parsed))
    report = StructureIngestReport(where, project, 0, len(parsed))
    return _write(
        store, parsed, report, method=method, source=source, created_by=created_by, dedupe=dedupe
    )


def add_xrd_match(
    store: Store,
    structure: Structure,
    project: str,
    *,
    pattern: str,
    label: str,
    score: float,
    scale: float = 1.0,
    created_by: str | None = None,
) -> int:
    """Store the structure ``matforge xrd identify`` matched to a pattern; returns its id (the
    stored one's when the project holds the same structure already).

    ``structure`` is the matched prototype's (``matforge.xrd.identify.prototype_structure``);
    ``scale`` the fitted factor on its lattice lengths (``PrototypeMatch.scale``), applied
    here; ``pattern`` names the measured pattern (its file), kept as the source; ``label``
    (AFLOW prototype) and ``score`` (cosine similarity, 0–1) are kept in ``properties``.
    Method ``xrd_match``.
    """
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise IngestError(f"scale must be a positive number, got {scale!r}")
    refined = structure.copy()
    if scale != 1.0:
        refined.scale_lattice(refined.volume * scale**3)
    report = add_structures(
        store,
        [refined],
        project,
        method="xrd_match",
        source=pattern,
        properties=[{"aflow_label": label, "xrd_score": float(score), "lattice_scale": scale}],
        created_by=created_by,
    )
    return report.ids[0] if report.ids else report.duplicate_ids[0]


# --- reading the store ----------------------------------------------------------------------


def select(
    *,
    project_ids: Sequence[int] | None = None,
    projects: Sequence[str] | None = None,
    elements: Sequence[str] | None = None,
    exact_elements: bool = False,
    nelements: int | None = None,
    spacegroup: int | None = None,
    method: str | None = None,
    material_ids: Sequence[int] | None = None,
    ids: Sequence[int] | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> sa.Select:
    """Structures (the :data:`SUMMARY_COLUMNS`, no structure data) matching every argument
    given, by id: in the projects ``project_ids`` (the server: those the caller may read) or
    named ``projects``; containing all ``elements`` (or exactly them); with ``nelements``
    elements, space group number ``spacegroup``, ``method``; of ``material_ids``; ``ids``;
    after id ``after``; at most ``limit``."""
    s, p, mat = structures, schema.projects, schema.materials
    stmt = (
        sa.select(
            s.c.id,
            p.c.name.label("project"),
            s.c.project_id,
            s.c.material_id,
            s.c.formula,
            mat.c.reduced_formula,
            s.c.elements,
            s.c.nelements,
            s.c.nsites,
            s.c.spacegroup_number,
            s.c.spacegroup_symbol,
            s.c.is_ordered,
            s.c.volume,
            s.c.density,
            s.c.energy_per_atom,
            s.c.properties,
            s.c.method,
            s.c.source,
            s.c.created_at,
            s.c.created_by,
        )
        .join_from(s, p, s.c.project_id == p.c.id)
        .join(mat, s.c.material_id == mat.c.id)
        .order_by(s.c.id)
    )
    if project_ids is not None:
        stmt = stmt.where(s.c.project_id.in_(list(project_ids)))
    if projects is not None:
        stmt = stmt.where(p.c.name.in_(list(projects)))
    if elements:
        from matforge.store.repositories.measurements import element_conditions

        stmt = stmt.where(*element_conditions(elements, exact_elements, column=s.c.elements))
    for column, value in (
        (s.c.nelements, nelements),
        (s.c.spacegroup_number, spacegroup),
        (s.c.method, method),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if material_ids is not None:
        stmt = stmt.where(s.c.material_id.in_(list(material_ids)))
    if ids is not None:
        stmt = stmt.where(s.c.id.in_(list(ids)))
    if after is not None:
        stmt = stmt.where(s.c.id > after)
    return stmt if limit is None else stmt.limit(limit)


def material_readable(conn: sa.Connection, material_id: int, project_ids: Sequence[int]) -> bool:
    """Whether material ``material_id`` has a measurement or a structure in ``project_ids``
    (a material is readable where either is)."""
    from matforge.store.repositories.visibility import visible_material

    mat = schema.materials
    found = sa.select(mat.c.id).where(
        mat.c.id == material_id,
        sa.or_(
            visible_material(project_ids),
            sa.exists().where(
                structures.c.material_id == mat.c.id,
                structures.c.project_id.in_(list(project_ids)),
            ),
        ),
    )
    return conn.execute(found).first() is not None


def _engine(store_or_engine) -> sa.Engine:
    return store_or_engine if isinstance(store_or_engine, sa.Engine) else store_or_engine.engine


def load_structures(store: Store | sa.Engine, ids: Iterable[int]) -> dict[int, Structure]:
    """``{id: Structure}`` of the stored structures ``ids`` (unknown ids are absent)."""
    ids = sorted({int(i) for i in ids})
    out: dict[int, Structure] = {}
    with _engine(store).connect() as conn:
        for start in range(0, len(ids), 1_000):
            chunk = ids[start : start + 1_000]
            for row in conn.execute(
                sa.select(structures.c.id, structures.c.data).where(structures.c.id.in_(chunk))
            ):
                out[int(row.id)] = decode(row.data)
    return out


def get_structure(store: Store, structure_id: int) -> Structure:
    """The stored structure ``structure_id``; :class:`StoreError` when there is none."""
    found = load_structures(store, [structure_id])
    if structure_id not in found:
        raise StoreError(f"no structure with id {structure_id} in {store!r}")
    return found[structure_id]


def structures_frame(
    store: Store,
    *,
    project: str | Iterable[str] | None = None,
    elements: str | Iterable[str] | None = None,
    exact_elements: bool = False,
    nelements: int | None = None,
    spacegroup: int | None = None,
    method: str | None = None,
) -> pd.DataFrame:
    """The stored structures matching the arguments as a DataFrame of
    :data:`SUMMARY_COLUMNS` (``elements`` as ``"Cl-Na"``, ``created_at`` in UTC), by id."""
    import pandas as pd

    from matforge.store.store import _as_list, element_list

    symbols = element_list(elements) if elements is not None else None
    stmt = select(
        projects=_as_list(project),
        elements=symbols,
        exact_elements=exact_elements,
        nelements=nelements,
        spacegroup=spacegroup,
        method=method,
    )
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    df = pd.DataFrame.from_records(rows, columns=SUMMARY_COLUMNS)
    df["elements"] = df["elements"].str.slice(1, -1)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    return df


# --- writing files --------------------------------------------------------------------------


def to_text(
    structure: Structure, fmt: str, *, name: str = "structure", info: dict | None = None
) -> str:
    """``structure`` as the text of a ``cif``, ``poscar`` or ``extxyz`` file (``info``: extra
    key/values of the extended XYZ comment line). A POSCAR or an extended XYZ file cannot
    hold partial occupancies: :class:`StoreError` for a disordered structure."""
    if fmt not in FORMATS:
        raise StoreError(f"unknown structure format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "cif":
        from pymatgen.io.cif import CifWriter

        return str(CifWriter(structure))
    if not structure.is_ordered:
        raise StoreError(
            f"{name} has partially occupied sites, which a {fmt.upper()} file cannot hold; "
            "export it as CIF"
        )
    if fmt == "poscar":
        from pymatgen.io.vasp import Poscar

        return Poscar(structure, comment=name).get_str(significant_figures=10)
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.info = dict(info or {})
    out = io.StringIO()
    write(out, atoms, format="extxyz")
    return out.getvalue()


@dataclass
class ExportReport:
    """What :func:`export_structures` wrote into ``folder``."""

    folder: Path
    n_structures: int
    n_measurements: int | None = None

    def __str__(self) -> str:
        text = f"exported {self.n_structures:,} structures to {self.folder}"
        if self.n_measurements is not None:
            text += f" with {self.n_measurements:,} measurements of their materials"
        return text


def _file_name(row, suffix: str) -> str:
    sg = f"_sg{row.spacegroup_number}" if row.spacegroup_number else ""
    safe = re.sub(r"[^A-Za-z0-9.]+", "", row.formula)[:80]
    return f"{row.id}_{safe}{sg}{suffix}"


def export_structures(
    store: Store,
    folder: str | os.PathLike,
    fmt: str = "cif",
    *,
    project: str | Iterable[str] | None = None,
    elements: str | Iterable[str] | None = None,
    exact_elements: bool = False,
    nelements: int | None = None,
    spacegroup: int | None = None,
    method: str | None = None,
    with_measurements: bool = False,
) -> ExportReport:
    """Write the matching structures into a new ``folder``: one ``cif``/``poscar``/``extxyz``
    file each (``<id>_<formula>_sg<number>.<suffix>``), an index ``structures.csv`` (id, file
    and :data:`SUMMARY_COLUMNS`) and, with ``with_measurements``, ``measurements.csv``: every
    measurement of their materials (:meth:`Store.measurements` columns, in the same projects
    when ``project`` is given).

    The folder is written next to its place and renamed into it, so a reader never sees half
    an export; an existing ``folder`` must be empty. Disordered structures cannot be written
    as POSCAR or extended XYZ: the export is refused, naming them, before anything is written.
    """
    from matforge.store.spreadsheet import safe_frame

    if fmt not in FORMATS:
        raise StoreError(f"unknown structure format {fmt!r}; choose one of {', '.join(FORMATS)}")
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise StoreError(f"{folder} exists and is not an empty folder; name a new one")
    df = structures_frame(
        store,
        project=project,
        elements=elements,
        exact_elements=exact_elements,
        nelements=nelements,
        spacegroup=spacegroup,
        method=method,
    )
    if fmt != "cif":
        disordered = df.loc[~df["is_ordered"].astype(bool), "id"].tolist()
        if disordered:
            shown = ", ".join(map(str, disordered[:10])) + (" ..." if len(disordered) > 10 else "")
            raise StoreError(
                f"structures {shown} have partially occupied sites, which a {fmt.upper()} file "
                "cannot hold; export them as CIF (or leave them out with --spacegroup/--elements)"
            )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        names = []
        ids = df["id"].astype(int).tolist()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            loaded = load_structures(store, chunk)
            for row in df.iloc[start : start + 500].itertuples():
                name = _file_name(row, FORMATS[fmt])
                info = {"matforge_id": int(row.id), "source": str(row.source or "")}
                if row.spacegroup_number:
                    info["spacegroup"] = int(row.spacegroup_number)
                text = to_text(loaded[int(row.id)], fmt, name=f"structure {row.id}", info=info)
                (tmp / name).write_text(text, encoding="utf-8")
                names.append(name)
        index = df.assign(file=names)[["id", "file", *[c for c in SUMMARY_COLUMNS if c != "id"]]]
        index = index.assign(properties=index["properties"].map(
            lambda p: json.dumps(p, sort_keys=True) if p else ""))  # fmt: skip
        safe_frame(index).to_csv(tmp / "structures.csv", index=False, lineterminator="\r\n")
        n_measurements = None
        if with_measurements:
            m = store.measurements(project=project)
            m = m[m["material_id"].isin(set(df["material_id"].astype(int)))]
            safe_frame(m).to_csv(tmp / "measurements.csv", index=False, lineterminator="\r\n")
            n_measurements = len(m)
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportReport(folder, len(df), n_measurements)


def write_rejects(path: str | os.PathLike, errors: Sequence[FileError]) -> None:
    """A CSV of refused files: ``file``, ``reason``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "reason"])
        for e in errors:
            writer.writerow([e.name, e.reason])
    os.replace(tmp, path)
