"""Write set E of the XRD benchmark (issue #17 §5 E): real, well-known crystal structures whose
space groups are verified against their published crystallographic data.

Source: the CIF files shipped inside the ``crystals`` package (``crystals==1.7.0``,
``crystals/cifs/*.cif``), each a Crystallography Open Database entry (COD ID, authors,
journal, year, volume and page in the file; most from R. W. G. Wyckoff, *Crystal Structures*,
2nd ed., 1963, through the American Mineralogist Crystal Structure Database), plus the three
minerals of docs/examples/xrd written from their published cells and positions
(scripts/xrd_examples.py). COD data may be used with attribution to the journal article each
entry cites (the notice in every file); each row keeps that citation. The wheel is fetched
once with ``pip download`` into ``.cache/sources`` (nothing is read from the network at run
time: the result is committed).

A structure is kept when it parses with pymatgen without partial occupancy, has at most 64
sites in its conventional cell, and spglib (symprec 0.01, then 0.1) finds the space group
number the CIF states; anything else is reported and left out.

    python scripts/xrd_real_structures.py   # -> src/matforge/xrd/data/real_structures.json
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # build_datasets (fetch) and xrd_examples (minerals)
OUT = ROOT / "src" / "matforge" / "xrd" / "data" / "real_structures.json"
MAX_SITES = 64


def _field(text: str, key: str) -> str | None:
    m = re.search(rf"^{re.escape(key)}\s+(.+)$", text, flags=re.M)
    return m.group(1).strip().strip("'\"") if m else None


def _authors(text: str) -> list[str]:
    m = re.search(r"_publ_author_name\s*\n((?:\s*'[^']*'\s*\n|\s*\"[^\"]*\"\s*\n)+)", text)
    return [a.strip().strip("'\"") for a in m.group(1).splitlines() if a.strip()] if m else []


def citation(text: str) -> dict:
    """COD ID and the journal article of a COD CIF."""
    return {
        "cod_id": _field(text, "_cod_database_code"),
        "authors": _authors(text),
        "journal": _field(text, "_journal_name_full"),
        "year": _field(text, "_journal_year"),
        "volume": _field(text, "_journal_volume"),
        "page": _field(text, "_journal_page_first"),
    }


def stated_spacegroup(text: str) -> int | None:
    for key in ("_space_group_IT_number", "_symmetry_Int_Tables_number"):
        v = _field(text, key)
        if v and v.isdigit():
            return int(v)
    return None


def row_of(name: str, structure, sg: int, cite: dict, source: str) -> dict:
    from matforge.xrd.augment import CRYSTAL_SYSTEMS, crystal_system_index

    s = structure
    return {
        "name": name,
        "formula": s.composition.reduced_formula,
        "spacegroup": sg,
        "crystal_system": CRYSTAL_SYSTEMS[int(crystal_system_index([sg])[0])],
        "lattice": np.round(s.lattice.matrix, 8).tolist(),
        "species": [sp.symbol for sp in s.species],
        "frac_coords": np.round(s.frac_coords, 8).tolist(),
        "source": source,
        "citation": cite,
    }


def from_cif(name: str, text: str, source: str) -> tuple[dict | None, str]:
    from pymatgen.io.cif import CifParser
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    want = stated_spacegroup(text)
    if want is None:
        return None, "no space group number"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            s = CifParser.from_str(text).parse_structures(primitive=False)[0]
        except Exception as exc:  # noqa: BLE001 - a CIF pymatgen cannot read is reported
            return None, f"pymatgen cannot read it ({type(exc).__name__})"
        if not s.is_ordered:
            return None, "partial occupancy"
        for symprec in (0.01, 0.1):
            sga = SpacegroupAnalyzer(s, symprec=symprec)
            if sga.get_space_group_number() == want:
                conv = sga.get_conventional_standard_structure()
                if len(conv) > MAX_SITES:
                    return None, f"{len(conv)} sites"
                return row_of(name, conv, want, citation(text), source), ""
    return None, f"spglib finds no {want} (the CIF's number)"


def example_minerals() -> list[dict]:
    """Cassiterite, rutile and anatase as scripts/xrd_examples.py writes them."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    from xrd_examples import minerals

    cites = {
        "cassiterite": {"authors": ["Bolzan, A. A.", "Fong, C.", "Kennedy, B. J.", "Howard, C. J."],
                        "journal": "Acta Crystallographica B", "year": "1997", "volume": "53",
                        "page": "373"},
        "rutile": {"authors": ["Howard, C. J.", "Sabine, T. M.", "Dickson, F."],
                   "journal": "Acta Crystallographica B", "year": "1991", "volume": "47",
                   "page": "462"},
    }  # fmt: skip
    cites["anatase"] = cites["rutile"]
    rows = []
    for name, s in minerals().items():
        sga = SpacegroupAnalyzer(s, symprec=0.01)
        rows.append(row_of(name, sga.get_conventional_standard_structure(),
                           sga.get_space_group_number(), {"cod_id": None, **cites[name]},
                           "scripts/xrd_examples.py"))  # fmt: skip
    return rows


def add_prototypes(rows: list[dict]) -> None:
    """Each row's bundled AFLOW prototype, where one is the same structure up to the elements
    (pymatgen's StructureMatcher, anonymous fit; same space group): the prototype head's truth."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Lattice, Structure

    from matforge.xrd.phases import prototype_cells

    matcher = StructureMatcher()
    for r in rows:
        s = Structure(Lattice(r["lattice"]), r["species"], r["frac_coords"])
        hits = [p["label"] for p in prototype_cells() if p["spacegroup"] == r["spacegroup"]
                and len(p["structure"].composition) == len(s.composition)
                and matcher.fit_anonymous(p["structure"], s)]  # fmt: skip
        r["prototype"] = hits[0] if hits else None


def main() -> None:
    from build_datasets import fetch  # the pinned wheel, downloaded once into .cache/sources

    archive = fetch("crystals")
    rows, left_out = [], {}
    for member in sorted(n for n in archive.members() if re.fullmatch(r"crystals/cifs/.+\.cif", n)):
        name = Path(member).stem
        row, why = from_cif(name, archive.read(member).decode("utf-8", "replace"),
                            f"{archive.requirement}: {member}")  # fmt: skip
        seen = {r["citation"]["cod_id"]: r["name"] for r in rows}
        if row is not None and row["citation"]["cod_id"] in seen:
            row, why = None, f"the same COD entry as {seen[row['citation']['cod_id']]}"
        if row is None:
            left_out[name] = why
        else:
            rows.append(row)
    rows += example_minerals()
    add_prototypes(rows)
    doc = {
        "description": "Set E of `matforge benchmark xrd` (issue #17): real crystal structures "
        "(conventional standard cells) whose space group spglib confirms from the published data.",
        "source": f"{archive.requirement} crystals/cifs (Crystallography Open Database entries) "
        "and scripts/xrd_examples.py; written by scripts/xrd_real_structures.py",
        "licence": "COD entries: free to use with attribution to the journal article each cites "
        "(kept per row, with its COD ID)",
        "left_out": left_out,
        "structures": rows,
    }
    OUT.write_text(json.dumps(doc, indent=0, ensure_ascii=False) + "\n")
    systems: dict = {}
    for r in rows:
        systems[r["crystal_system"]] = systems.get(r["crystal_system"], 0) + 1
    print(f"wrote {len(rows)} structures to {OUT.relative_to(ROOT)} ({systems}); "
          f"left out {len(left_out)}: {left_out}")  # fmt: skip


if __name__ == "__main__":
    main()
