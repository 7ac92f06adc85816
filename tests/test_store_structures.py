"""Crystal structures in the store (issue #22 §1): ingest of folders and archives of real CIFs
and the other formats, space groups, deduplication, all or nothing, bad input, queries,
export, and the XRD-match hook; on SQLite and PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

pytest.importorskip("pymatgen")

from pymatgen.analysis.structure_matcher import StructureMatcher  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

from matforge.errors import IngestError, StoreError  # noqa: E402
from matforge.store import structures as st  # noqa: E402

#: rows of the bundled AFLOW prototype library: HgS (P3_221), GaAs (Imm2), ZnS zincblende
#: (F-43m), MgAl2O4 spinel (Fd-3m), ThMn12 (I4/mmm)
ROWS = [0, 3, 18, 28, 40]
CIF_HEAD = """data_x
_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
"""
#: a rock-salt-like cell whose cation site is shared by Fe and Ni (a solid solution)
PARTIAL_CIF = CIF_HEAD + "Fe1 Fe 0 0 0 0.7\nNi1 Ni 0 0 0 0.3\nO1 O 0.5 0.5 0.5 1\n"
#: the same site filled 1.7 times over: not a structure
OVERFULL_CIF = CIF_HEAD + "Fe1 Fe 0 0 0 0.9\nNi1 Ni 0 0 0 0.8\nO1 O 0.5 0.5 0.5 1\n"


@pytest.fixture(scope="module")
def prototypes():
    from matforge.datasets import load_dataset

    df = load_dataset("aflow_prototypes")
    return df.iloc[ROWS].reset_index(drop=True)


@pytest.fixture
def cifs(tmp_path, prototypes) -> Path:
    folder = tmp_path / "cifs"
    folder.mkdir()
    for row in prototypes.itertuples():
        (folder / f"{row.formula}.cif").write_text(row.cif)
    return folder


def _same(a: Structure, b: Structure) -> bool:
    return StructureMatcher(scale=False).fit(a, b)


def _count(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(st.structures)).scalar()


def test_a_folder_of_real_cifs_is_stored_with_space_groups_and_read_back_equal(
    store, cifs, prototypes
):
    report = st.ingest_structures(store, cifs, "lab", method="refinement", created_by="ana")
    assert report.n_files == report.n_read == report.n_written == len(ROWS)
    df = st.structures_frame(store, project="lab").set_index("formula")
    # the space group spglib finds is the one the AFLOW library gives each prototype
    by_formula = dict(zip(prototypes["formula"], prototypes["spacegroup_number"], strict=True))
    found = {r.reduced_formula: r.spacegroup_number for r in df.itertuples()}
    assert found == {"HgS": 154, "GaAs": 44, "ZnS": 216, "MgAl2O4": 227, "ThMn12": 139}
    assert {f: by_formula[f] for f in found} == found
    assert set(df["method"]) == {"refinement"} and set(df["created_by"]) == {"ana"}
    assert df.loc["ZnS", "source"] == "cifs/ZnS.cif"
    assert df.loc["ZnS", "density"] == pytest.approx(4.09, abs=0.01)  # sphalerite, g/cm^3
    assert df.loc["Mg2Al4O8", "elements"] == "Al-Mg-O" and df.loc["Mg2Al4O8", "nsites"] == 14
    stored = st.load_structures(store, df["id"])
    for row in prototypes.itertuples():
        original = Structure.from_dict(json.loads(row.structure_json))
        sid = int(
            df.loc[df["reduced_formula"] == original.composition.reduced_formula, "id"].iloc[0]
        )
        assert _same(stored[sid], original)
        assert np.allclose(stored[sid].lattice.parameters, original.lattice.parameters, atol=1e-6)


def test_structures_are_stored_compressed(store):
    cell = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ) * (2, 2, 2)
    st.add_structures(store, [cell], "lab", method="dft")
    with store.engine.connect() as conn:
        data = conn.execute(sa.select(st.structures.c.data)).scalar()
    assert len(data) * 5 < len(json.dumps(cell.as_dict()))
    assert st.decode(data).as_dict() == cell.as_dict()


def test_a_structure_joins_the_material_of_its_composition(store, cifs):
    import pandas as pd

    store.add_measurements(pd.DataFrame({"formula": ["ZnS"], "value": [3.6]}), project="lab",
                           property="band_gap", unit="eV")  # fmt: skip
    st.ingest_structures(store, cifs, "lab")
    measured = store.measurements(project="lab")["material_id"].iloc[0]
    zns = st.structures_frame(store, elements="Zn-S")
    assert zns["material_id"].tolist() == [measured]


def test_duplicates_are_found_by_structure_matcher_not_by_bytes(store, cifs, prototypes):
    zns = Structure.from_dict(json.loads(prototypes["structure_json"][2]))
    # the same crystal as a conventional 8-atom cell, and written a second time
    (cifs / "ZnS-conventional.cif").write_text(
        str(
            __import__("pymatgen.io.cif", fromlist=["CifWriter"]).CifWriter(zns.to_conventional())
        )  # fmt: skip
    )
    (cifs / "copy.cif").write_text((cifs / "ZnS.cif").read_text())
    report = st.ingest_structures(store, cifs, "lab")
    assert report.n_written == len(ROWS)
    assert sorted(report.duplicates) == [
        ("cifs/ZnS.cif", "cifs/ZnS-conventional.cif"),
        ("cifs/copy.cif", "cifs/ZnS-conventional.cif"),
    ]
    # again: every one is already in the project; another project stores them anew
    again = st.ingest_structures(store, cifs, "lab")
    assert again.n_written == 0 and len(again.duplicates) == len(ROWS) + 2
    assert st.ingest_structures(store, cifs, "other").n_written == len(ROWS)
    # a cell 5 % larger is another structure (a relaxed one, say), not a duplicate
    bigger = zns.copy()
    bigger.scale_lattice(zns.volume * 1.05**3)
    assert st.add_structures(store, [bigger], "lab", method="dft").n_written == 1
    assert st.add_structures(store, [zns], "lab", method="dft", dedupe=False).n_written == 1


def test_a_broken_cif_names_the_file_and_nothing_is_written(store, cifs):
    (cifs / "broken.cif").write_text(PARTIAL_CIF.replace("_cell_length_b 4.0\n", ""))
    with pytest.raises(st.StructureFileError) as err:
        st.ingest_structures(store, cifs, "lab")
    text = str(err.value)
    assert "cifs/broken.cif: not a readable CIF" in text and "nothing was written" in text
    assert "data block 'x' has no _cell_length_b" in text  # not only "Invalid CIF file"
    assert _count(store) == 0
    report = st.ingest_structures(store, cifs, "lab", skip_invalid=True)
    assert report.n_written == len(ROWS)
    assert [e.name for e in report.errors] == ["cifs/broken.cif"]


def test_partial_occupancy_is_a_disordered_structure_and_overfull_sites_are_refused(
    store, tmp_path
):
    (tmp_path / "ss.cif").write_text(PARTIAL_CIF)
    report = st.ingest_structures(store, tmp_path / "ss.cif", "lab")
    row = st.structures_frame(store).iloc[0]
    assert report.n_written == 1 and not row["is_ordered"] and row["spacegroup_number"] == 221
    species = st.get_structure(store, int(row["id"]))[0].species.as_dict()
    assert species == {"Fe": 0.7, "Ni": 0.3}
    (tmp_path / "over.cif").write_text(OVERFULL_CIF)
    with pytest.raises(st.StructureFileError, match=r"over\.cif: not a readable CIF.*1\.7"):
        st.ingest_structures(store, tmp_path / "over.cif", "lab")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("notes.txt", b"measured on Tuesday", "not a structure file matforge reads"),
        ("photo.cif", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a readable CIF"),
        ("empty.cif", b"", "not a readable CIF"),
        ("POSCAR", b"a POSCAR\n1.0\nnot numbers\n", "not a readable POSCAR"),
        ("molecule.xyz", b"2\nwater-ish\nO 0 0 0\nH 0 0 0.96\n", "no periodic cell"),
        ("structure.json", b'{"lattice": 3}', "not a pymatgen Structure"),
        ("cells.db", b"SQLite format 3\x00garbage", "not a readable ASE database"),
        ("cells.zip", b"PK\x03\x04 not really", "not a readable archive"),
    ],
)
def test_a_file_that_is_not_a_structure_is_refused_by_name(store, tmp_path, name, content, reason):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / name).write_bytes(content)
    with pytest.raises(st.StructureFileError) as err:
        st.ingest_structures(store, folder / name if name.endswith(".zip") else folder, "lab")
    assert name in str(err.value) and reason in str(err.value)
    assert _count(store) == 0


def test_atoms_on_top_of_each_other_and_too_many_sites_are_refused(store):
    doubled = Structure(Lattice.cubic(4), ["Fe", "Fe"], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(st.StructureFileError, match="sites 1 and 2 are 0.040 Å apart"):
        st.add_structures(store, [doubled], "lab", method="dft", source="relax.out")
    cell = Structure(Lattice.cubic(3), ["Fe"], [[0, 0, 0]]) * (3, 3, 3)
    with pytest.raises(st.StructureFileError, match="27 sites, more than the 20"):
        st.add_structures(store, [cell], "lab", method="dft", max_sites=20)
    with pytest.raises(IngestError, match="method must be one of"):
        st.add_structures(store, [cell], "lab", method="guess")
    assert _count(store) == 0


def test_a_10_000_atom_cell_is_stored_without_a_space_group_search(store, monkeypatch):
    """A 10,368-atom supercell (an MD snapshot's size): spglib would take ~20 s on it, so cells
    over SYMMETRY_MAX_SITES are stored without a space group: spglib is never called (the
    store's time on it: benchmarks/wallclock_bounds.py)."""
    import spglib

    cell = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ) * (12, 12, 9)
    assert len(cell) == 10_368
    calls = []
    for name in ("get_symmetry_dataset", "get_symmetry", "standardize_cell", "get_spacegroup"):
        original = getattr(spglib, name)
        monkeypatch.setattr(
            spglib, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k)
        )
    report = st.add_structures(store, [cell], "md", method="ml_relaxation")
    row = st.structures_frame(store).iloc[0]
    assert report.n_written == 1 and row["nsites"] == 10_368
    assert row["spacegroup_number"] is None or np.isnan(row["spacegroup_number"])
    again = st.add_structures(store, [cell], "md", method="ml_relaxation")
    assert again.duplicate_ids == [int(row["id"])]  # exact duplicates still found
    assert st.get_structure(store, int(row["id"])).as_dict() == cell.as_dict()
    assert calls == []


def test_poscar_extxyz_ase_db_json_and_archives_are_read(store, tmp_path, prototypes):
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.db import connect
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    structures = [Structure.from_dict(json.loads(s)) for s in prototypes["structure_json"]]
    folder = tmp_path / "mixed"
    (folder / "run1").mkdir(parents=True)
    structures[0].to(filename=str(folder / "run1" / "CONTCAR"), fmt="poscar")
    frames = [AseAtomsAdaptor.get_atoms(s) for s in structures[1:3]]
    for atoms, energy in zip(frames, (-7.5, -9.25), strict=True):
        atoms.info["energy"] = energy
    write(folder / "relax.extxyz", frames, format="extxyz")
    with connect(folder / "cells.db") as db:
        atoms = AseAtomsAdaptor.get_atoms(structures[3])
        atoms.calc = SinglePointCalculator(atoms, energy=-28.0)
        db.write(atoms)
    (folder / "cell.json").write_text(json.dumps(structures[4].as_dict()))
    (folder / ".hidden.cif").write_text("ignored: hidden")
    report = st.ingest_structures(store, folder, "lab", method="dft")
    assert report.n_files == 4 and report.n_written == 5, report
    df = st.structures_frame(store).set_index("source")
    assert df.loc["mixed/relax.extxyz#frame 2", "energy_per_atom"] == pytest.approx(
        -9.25 / len(structures[2])
    )
    assert df.loc["mixed/cells.db#id=1", "energy_per_atom"] == pytest.approx(
        -28.0 / len(structures[3])
    )
    assert "mixed/run1/CONTCAR" in df.index and "mixed/cell.json" in df.index
    # the same files in a zip and a tar.gz archive are the same structures
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder).as_posix())
    (tmp_path / "mixed.zip").write_bytes(buffer.getvalue())
    zipped = st.ingest_structures(store, tmp_path / "mixed.zip", "zipped", method="dft")
    assert zipped.n_written == 5 and "mixed.zip:run1/CONTCAR" in zipped.names
    with tarfile.open(tmp_path / "mixed.tar.gz", "w:gz") as t:
        t.add(folder, arcname="mixed")
    again = st.ingest_structures(store, tmp_path / "mixed.tar.gz", "zipped", method="dft")
    assert again.n_written == 0 and len(again.duplicates) == 5


def test_filters_use_elements_nelements_and_space_group(store, cifs):
    st.ingest_structures(store, cifs, "lab")
    df = st.structures_frame

    assert sorted(df(store, elements="S")["reduced_formula"]) == ["HgS", "ZnS"]
    assert df(store, elements=["Zn", "S"], exact_elements=True)["reduced_formula"].tolist() == [
        "ZnS"
    ]
    assert df(store, nelements=3)["reduced_formula"].tolist() == ["MgAl2O4"]
    assert df(store, spacegroup=227)["reduced_formula"].tolist() == ["MgAl2O4"]
    assert df(store, project="nobody").empty and len(df(store, method="experiment")) == len(ROWS)


def test_the_filter_columns_are_indexed(store):
    indexed = {tuple(i["column_names"]) for i in sa.inspect(store.engine).get_indexes("structures")}
    assert {("elements",), ("nelements",), ("spacegroup_number",), ("material_id",),
            ("project_id", "checksum")} <= indexed  # fmt: skip


@pytest.mark.parametrize("fmt", ["cif", "poscar", "extxyz"])
def test_export_writes_files_that_read_back_as_the_stored_structures(store, cifs, tmp_path, fmt):
    import pandas as pd

    st.ingest_structures(store, cifs, "lab")
    store.add_measurements(pd.DataFrame({"formula": ["ZnS", "GaAs"], "value": [3.6, 1.42]}),
                           project="lab", property="band_gap", unit="eV")  # fmt: skip
    out = tmp_path / "export"
    report = st.export_structures(store, out, fmt, project="lab", with_measurements=True)
    assert report.n_structures == len(ROWS) and report.n_measurements == 2
    index = pd.read_csv(out / "structures.csv")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*index["file"], "structures.csv", "measurements.csv"]
    )
    stored = st.load_structures(store, index["id"])
    for row in index.itertuples():
        back = st.read_structure_file(out / row.file)[0].structure
        assert _same(back, stored[row.id]), row.file
    assert sorted(pd.read_csv(out / "measurements.csv")["formula"]) == ["GaAs", "ZnS"]
    with pytest.raises(StoreError, match="not an empty folder"):
        st.export_structures(store, out, fmt)


def test_a_disordered_structure_is_exported_as_cif_only_and_nothing_half_written(store, tmp_path):
    (tmp_path / "ss.cif").write_text(PARTIAL_CIF)
    st.ingest_structures(store, tmp_path / "ss.cif", "lab")
    with pytest.raises(StoreError, match="partially occupied sites.*export them as CIF"):
        st.export_structures(store, tmp_path / "out", "poscar")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    assert st.export_structures(store, tmp_path / "out", "cif").n_structures == 1


def test_an_xrd_match_is_stored_with_its_scale_and_score(store):
    from matforge.xrd.identify import prototype_structure

    proto, _ = prototype_structure("AB_cF8_216_c_a")
    sid = st.add_xrd_match(store, proto, "lab", pattern="zns_scan.xy", label="AB_cF8_216_c_a",
                           score=0.93, scale=1.02)  # fmt: skip
    row = st.structures_frame(store).iloc[0]
    assert row["method"] == "xrd_match" and row["source"] == "zns_scan.xy"
    assert row["properties"] == {"aflow_label": "AB_cF8_216_c_a", "xrd_score": 0.93,
                                 "lattice_scale": 1.02}  # fmt: skip
    assert st.get_structure(store, sid).volume == pytest.approx(proto.volume * 1.02**3)
    assert row["spacegroup_number"] == 216
    again = st.add_xrd_match(store, proto, "lab", pattern="again.xy", label="AB_cF8_216_c_a",
                             score=0.9, scale=1.02)  # fmt: skip
    assert again == sid and _count(store) == 1
    with pytest.raises(IngestError, match="scale must be a positive number"):
        st.add_xrd_match(store, proto, "lab", pattern="x", label="y", score=1, scale=0)


def test_cli_ingests_and_exports_structures(tmp_path, cifs):
    from typer.testing import CliRunner

    from matforge.cli.main import app

    db = str(tmp_path / "lab.db")
    runner = CliRunner()
    (cifs / "broken.cif").write_text("data_x\n_cell_length_a 3\n")
    r = runner.invoke(app, ["ingest-structures", str(cifs), "-p", "lab", "--db", db])
    assert r.exit_code != 0 and "broken.cif" in str(r.exception)
    rejects = tmp_path / "rejects.csv"
    r = runner.invoke(app, ["ingest-structures", str(cifs), "-p", "lab", "--db", db,
                            "--skip-invalid", "--rejects", str(rejects), "--method", "refinement"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert f"5 of 6 structures from 6 file(s) of {cifs} written to project 'lab'" in r.output
    assert "refused: cifs/broken.cif: not a readable CIF" in r.output
    assert rejects.read_text().splitlines()[1].startswith("cifs/broken.cif,")
    r = runner.invoke(app, ["export-structures", str(tmp_path / "out"), "-f", "poscar",
                            "--spacegroup", "216", "--db", db])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "exported 1 structures" in r.output
    assert len(list((tmp_path / "out").glob("*_ZnS_sg216.vasp"))) == 1
