"""Build ``src/matforge/chem/data/elements.json``: the element table for Z = 1..103.

Run once (``.venv/bin/python scripts/build_elements.py``) when a source library is upgraded; the
output file is committed. Sources, read from the installed libraries' own data files:

* matminer's Magpie ``*.table`` files, parsed exactly as ``matminer.utils.data.MagpieData`` does
  (one line per Z, ``float(line)`` or NaN; ``OxidationStates`` as a list of floats), together with
  the value MagpieData substitutes for NaN when ``impute_nan=True`` (mean over Z = 1..118).
* pymatgen's ``periodic_table.json.gz`` through ``pymatgen.core.Element`` (oxidation states,
  Pauling electronegativity ``X``, Shannon ionic radii) and the Cordero covalent radii table in
  ``pymatgen.analysis.molecule_structure_comparator.CovalentRadius``.
* smact 4: the oxidation states ``smact.screening.smact_validity`` uses by default (ICSD24 list,
  consensus 3, no zero state, commonality "low"), its Pauling electronegativities
  (``smact.Element.pauling_eneg``) and its list of metals (``smact.metals``, the alloy rule).

JSON has no NaN: missing numbers are written as ``null``.
"""

from __future__ import annotations

import json
import math
import warnings
from glob import glob
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "matforge" / "chem" / "data" / "elements.json"
N_ELEMENTS = 103


def _rel(path: str | Path) -> str:
    """Path relative to site-packages, so the provenance block is machine-independent."""
    parts = Path(path).parts
    return (
        "/".join(parts[parts.index("site-packages") + 1 :])
        if "site-packages" in parts
        else str(path)
    )


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def magpie_tables() -> tuple[dict, dict, str]:
    """Magpie properties as MagpieData serves them: raw values and NaN substitutes."""
    import matminer.utils.data as mdata
    from pymatgen.core import Element

    data_dir = Path(mdata.module_dir) / "data_files" / "magpie_elementdata"
    raw: dict[str, list] = {}
    impute: dict[str, object] = {}
    for path in sorted(glob(str(data_dir / "*.table"))):
        name = Path(path).name.replace(".table", "")
        with open(path) as f:
            lines = f.readlines()
        values = []
        for z in range(1, 118 + 1):  # same loop, same exceptions as MagpieData.__init__
            try:
                if name == "OxidationStates":
                    value = [float(i) for i in lines[z - 1].split()]
                else:
                    value = float(lines[z - 1])
            except (ValueError, IndexError):
                value = float("nan")
            values.append(value)
        assert Element.from_Z(1).symbol == "H"
        if name == "OxidationStates":
            flat = []
            for v in values:
                flat.extend(v if isinstance(v, list) else [v])
            impute[name] = [float(np.round(np.nanmean(flat)))]
            raw[name] = [v if isinstance(v, list) else None for v in values[:N_ELEMENTS]]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN tables
                impute[name] = _num(np.nanmean(values))
            raw[name] = [_num(v) for v in values[:N_ELEMENTS]]
    return raw, impute, _rel(data_dir)


def ionization_energies(data_dir_rel: str) -> list[list[float]]:
    """All ionisation energies (eV) per element from Magpie's IonizationEnergies.table.

    MagpieData cannot parse this multi-column file (it serves NaN for every element but H), so
    it is read here properly, as a list per element.
    """
    import matminer.utils.data as mdata

    path = Path(mdata.module_dir) / "data_files" / "magpie_elementdata" / "IonizationEnergies.table"
    with open(path) as f:
        lines = f.readlines()
    return [
        [float(t) for t in lines[z - 1].split()] if z - 1 < len(lines) else []
        for z in range(1, N_ELEMENTS + 1)
    ]


def pymatgen_columns() -> tuple[dict, dict]:
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
    from pymatgen.core import Element

    cols: dict[str, list] = {
        "symbol": [],
        "pauling_en": [],
        "oxidation_states": [],
        "common_oxidation_states": [],
        "icsd_oxidation_states": [],
        "ionic_radii": [],
        "covalent_radius": [],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No Pauling electronegativity for He. Setting to NaN"
        for z in range(1, N_ELEMENTS + 1):
            el = Element.from_Z(z)
            cols["symbol"].append(el.symbol)
            cols["pauling_en"].append(_num(el.X))
            cols["oxidation_states"].append([int(o) for o in el.oxidation_states])
            cols["common_oxidation_states"].append([int(o) for o in el.common_oxidation_states])
            cols["icsd_oxidation_states"].append([int(o) for o in el.icsd_oxidation_states])
            # [[oxidation state, radius / Å], ...]; keys may be non-integer in principle
            cols["ionic_radii"].append(
                [[float(k), float(r)] for k, r in sorted(el.ionic_radii.items())]
            )
            cols["covalent_radius"].append(_num(CovalentRadius.radius.get(el.symbol, float("nan"))))
        # matminer.utils.data.PymatgenData(impute_nan=True) substitutes this for a missing X
        all_x = [e.X for e in Element]
    impute = {"pauling_en": _num(np.nanmean([x if x else float("nan") for x in all_x]))}
    return cols, impute


def smact_columns(symbols: list[str]) -> dict:
    import smact
    from smact.screening import ICSD24FilterConfig, _get_icsd24_oxidation_dict

    cfg = ICSD24FilterConfig()  # the default smact_validity uses
    ox = _get_icsd24_oxidation_dict(cfg.include_zero, cfg.consensus, cfg.commonality)
    en = []
    for s in symbols:
        value = smact.Element(s).pauling_eneg
        assert value is None or not math.isnan(value), (s, value)  # smact's test relies on None
        en.append(None if value is None else float(value))
    metals = set(smact.metals)
    return {
        # None (null): smact has no ICSD24 states for the element -> smact_validity is False
        "smact_oxidation_states": [
            sorted(int(o) for o in ox[s]) if s in ox else None for s in symbols
        ],
        "smact_pauling_en": en,
        "smact_metal": [s in metals for s in symbols],
    }, {
        "icsd_filter": {
            "include_zero": cfg.include_zero,
            "consensus": cfg.consensus,
            "commonality": cfg.commonality,
        },
        "oxidation_states_file": _rel(
            Path(smact.data_directory) / "oxidation_states_icsd24_counts.json"
        ),
        "element_data_file": _rel(Path(smact.data_directory) / "element_data.txt"),
    }


UNITS = {
    "AtomicWeight": "g/mol",
    "MeltingT": "K",
    "CovalentRadius": "pm",
    "GSvolume_pa": "Å^3/atom",
    "GSbandgap": "eV",
    "GSmagmom": "μB/atom",
    "pauling_en": "Pauling units",
    "smact_pauling_en": "Pauling units",
    "covalent_radius": "Å",
    "ionic_radii": "[[oxidation state, Å], ...]",
    "ionization_energies": "eV",
}


def _dump(doc: dict) -> str:
    """JSON with one column per line: small, and reviewable as a diff."""

    def enc(x) -> str:
        return json.dumps(x, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    lines = ["{"]
    for i, (key, value) in enumerate(doc.items()):
        sep = "," if i < len(doc) - 1 else ""
        if key == "columns":
            lines.append(f'"{key}":{{')
            for j, (name, col) in enumerate(value.items()):
                lines.append(f"{enc(name)}:{enc(col)}" + ("," if j < len(value) - 1 else ""))
            lines.append("}" + sep)
        else:
            lines.append(f"{enc(key)}:{enc(value)}{sep}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    import matminer.utils.data as mdata
    import pymatgen.core
    import smact

    pmg, pmg_impute = pymatgen_columns()
    magpie, magpie_impute, magpie_dir = magpie_tables()
    smact_cols, smact_meta = smact_columns(pmg["symbol"])
    columns = {
        **pmg,
        **magpie,
        "ionization_energies": ionization_energies(magpie_dir),
        **smact_cols,
    }
    for name, col in columns.items():
        assert len(col) == N_ELEMENTS, name
    assert magpie["Number"] == [float(z) for z in range(1, N_ELEMENTS + 1)]
    doc = {
        "provenance": {
            "script": "scripts/build_elements.py",
            "libraries": {
                "matminer": version("matminer"),
                "pymatgen-core": version("pymatgen-core"),
                "smact": version("smact"),
            },
            "files": {
                "magpie": magpie_dir,
                "pymatgen": _rel(Path(pymatgen.core.__file__).parent / "periodic_table.json.gz"),
                "covalent_radius": "pymatgen.analysis.molecule_structure_comparator.CovalentRadius"
                " (Cordero et al. 2008)",
                **{f"smact_{k}": v for k, v in smact_meta.items() if k.endswith("_file")},
            },
            "smact_icsd_filter": smact_meta["icsd_filter"],
            "notes": "Magpie columns are parsed as matminer.utils.data.MagpieData parses them "
            "(matminer module " + _rel(mdata.__file__) + "); null = NaN. 'magpie_impute' is the "
            "value MagpieData(impute_nan=True) substitutes for NaN (mean over Z=1..118).",
        },
        "magpie_columns": sorted(magpie),
        "magpie_impute": magpie_impute,
        "impute": pmg_impute,
        "units": UNITS,
        "smact_version": smact.__version__,
        "columns": columns,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(_dump(doc))
    print(
        f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1024:.0f} KiB, {len(columns)} columns)"
    )


if __name__ == "__main__":
    main()
