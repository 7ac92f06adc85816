"""Bundled datasets: catalog completeness, file integrity, Matbench folds, quality flags."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess
import sys
import warnings
from functools import cache

import numpy as np
import pytest

import matforge.datasets as mds
from matforge.datasets import (
    dataset_info,
    list_datasets,
    load_dataset,
    load_structures,
    matbench_folds,
)
from matforge.errors import DatasetError, MatforgeError

MATBENCH_TASKS = [
    "matbench_dielectric",
    "matbench_expt_gap",
    "matbench_expt_is_metal",
    "matbench_glass",
    "matbench_jdft2d",
    "matbench_log_gvrh",
    "matbench_log_kvrh",
    "matbench_mp_e_form",
    "matbench_mp_gap",
    "matbench_mp_is_metal",
    "matbench_perovskites",
    "matbench_phonons",
    "matbench_steels",
]
ALL = [i.name for i in list_datasets()]


@cache
def data(name):
    return load_dataset(name)


def has_code(df, code):
    flags = df["flag"].to_numpy()
    out = np.zeros(len(flags), dtype=bool)
    idx = np.flatnonzero(flags != "")
    out[idx] = [code in f.split(";") for f in flags[idx]]
    return out


def test_catalog_entries_complete():
    infos = list_datasets()
    assert len(infos) >= 25
    assert len({i.name for i in infos}) == len(infos)
    for i in infos:
        assert i.rows > 0, i.name
        assert i.unit and i.source and i.licence and i.split and i.property, i.name
        assert re.search(r"@\w+\{", i.citation), f"{i.name}: citation is not BibTeX"
        assert i.task in {"regression", "classification", "unlabelled"}, i.name
        assert i.input in {"composition", "structure", "formulation", "process", "surface"}, i.name
        assert (i.target is None) == (i.task == "unlabelled"), i.name
        assert i.source_files and all(len(f["sha256"]) == 64 for f in i.source_files), i.name


def test_requested_datasets_present_with_expected_sizes():
    sizes = {
        "elasticity": 12_277,
        "elasticity_pool": 128_495,
        "mp_transport": 47_737,
        "exp_formation_enthalpy": 2_135,
        "aflow_prototypes": 288,
        "octane_blends": 722,
        "photo_pce10": 1_040,
        "photo_wf3": 1_040,
        "colors_bob": 241,
        "oqmd_formation_enthalpy": 341_700,
        "matbench_mp_e_form": 132_752,
        "matbench_steels": 312,
        "liang2021_agnp": 3_295,
        "liang2021_autoam": 100,
        "liang2021_crossed_barrel": 1_800,
        "liang2021_p3ht": 233,
        "liang2021_perovskite": 139,
    }
    for name, n in sizes.items():
        assert dataset_info(name).rows == n, name
    assert set(MATBENCH_TASKS) <= set(ALL)
    benchmark = [
        n
        for n in ALL
        if n.split("_")[0] in {"aflow", "mp", "oqmd", "critexam"} and n != "aflow_prototypes"
    ]
    assert len(benchmark) >= 17
    octane = data("octane_blends")
    components = [c for c in octane.columns if c not in ("Label", "MON", "flag")]
    assert len(components) == 423
    np.testing.assert_allclose(octane[components].sum(axis=1), 100, atol=1)


@pytest.mark.parametrize("name", ALL)
def test_file_matches_catalog(name):
    info = dataset_info(name)
    path = mds._data_dir() / info.file
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info.sha256, "catalog is stale: rebuild"
    df = data(name)
    assert len(df) == info.rows
    assert "flag" in df.columns
    documented = set(info.columns) - {"<SMILES>"}
    assert documented <= set(df.columns)
    if info.target is not None:
        assert info.target in df.columns
        assert df[info.target].notna().all()
    if info.input == "composition":
        assert df["formula"].map(type).eq(str).all()
    # the catalog's flag counts are the counts in the file
    for code, v in info.flags.items():
        assert has_code(df, code).sum() == v["rows"], code


def test_formula_strings_are_the_source_strings():
    # CrabNet writes "Zr1", "Ag(AuS)2", ... and the formula "NA" would be NaN under pandas' defaults
    assert data("aflow_bulk_modulus")["formula"].iloc[0] == "Zr1"
    assert data("matbench_expt_gap")["formula"].iloc[0] == "Ag(AuS)2"
    assert data("elasticity")["formula"].iloc[0] == "BaTe"


@pytest.mark.parametrize("name", MATBENCH_TASKS)
def test_matbench_folds_are_the_official_ones(name):
    from sklearn.model_selection import KFold, StratifiedKFold

    info = dataset_info(name)
    df = data(name)
    n = len(df)
    # each row in exactly one test fold, sizes n/5 (+-1)
    assert set(np.unique(df["fold"])) == {0, 1, 2, 3, 4}
    sizes = np.bincount(df["fold"], minlength=5)
    assert sizes.sum() == n and sizes.max() - sizes.min() <= 1
    # ids are 1-based and follow the row order
    prefix = name.replace("matbench", "mb").replace("_", "-")
    nums = df["mb_id"].str.rsplit("-", n=1).str[1].astype(int).to_numpy()
    np.testing.assert_array_equal(nums, np.arange(1, n + 1))
    assert df["mb_id"].str.replace("_", "-").str.startswith(prefix + "-").all()
    # independent of the id file: Matbench generated the folds with these exact settings
    cls = StratifiedKFold if info.task == "classification" else KFold
    y = df[info.target].to_numpy()
    for k, (_, test) in enumerate(
        cls(5, shuffle=True, random_state=18012019).split(np.zeros(n), y)
    ):
        np.testing.assert_array_equal(np.flatnonzero(df["fold"].to_numpy() == k), test)
    # the checks the build script ran against matbench_v0.1_validation.json
    mb = info.matbench
    assert mb["n_ids_equals_rows"] and mb["every_row_in_exactly_one_test_fold"]
    assert mb["identical_if_ids_are_1_based"] and not mb["identical_if_ids_are_0_based"]
    for spot in mb["spot_checks"]:
        row = df.iloc[spot["row"]]
        assert (row["mb_id"], row["formula"], row["fold"]) == (
            spot["mb_id"],
            spot["formula"],
            spot["fold"],
        )


def test_matbench_folds_api():
    folds = matbench_folds("matbench_steels")
    assert len(folds) == 5
    n = dataset_info("matbench_steels").rows
    tests = np.concatenate([t for _, t in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(n))
    for train, test in folds:
        assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == n
    with pytest.raises(DatasetError, match="not a Matbench task"):
        matbench_folds("oqmd_band_gap")


@pytest.mark.parametrize(
    ("name", "column", "code", "bad"),
    [
        (
            "oqmd_formation_enthalpy",
            "formation_enthalpy",
            "formation_energy_out_of_range",
            lambda x: (x < -5) | (x > 5),
        ),
        (
            "oqmd_energy_per_atom",
            "energy_per_atom",
            "total_energy_out_of_range",
            lambda x: (x < -20) | (x > 0),
        ),
        (
            "oqmd_volume_per_atom",
            "volume_per_atom",
            "volume_out_of_range",
            lambda x: (x <= 0) | (x > 150),
        ),
        ("mp_elastic_anisotropy", "elastic_anisotropy", "negative_anisotropy", lambda x: x < 0),
        ("mp_bulk_modulus", "bulk_modulus", "bulk_modulus_above_diamond", lambda x: x > 500),
        ("mp_shear_modulus", "shear_modulus", "non_positive_modulus", lambda x: x <= 0),
        ("elasticity", "bulk_modulus", "bulk_modulus_above_diamond", lambda x: x > 500),
        ("matbench_log_kvrh", "log10_k_vrh", "bulk_modulus_above_diamond", lambda x: 10**x > 500),
        (
            "aflow_energy_per_atom",
            "energy_per_atom",
            "total_energy_out_of_range",
            lambda x: (x < -20) | (x > 0),
        ),
    ],
)
def test_physically_impossible_values_are_flagged(name, column, code, bad):
    df = data(name)
    expected = bad(df[column].to_numpy())
    assert expected.any(), f"{name}: the known bad values are gone from the source?"
    np.testing.assert_array_equal(has_code(df, code), expected)


def test_known_bad_values_flagged_and_rows_kept():
    fe = data("oqmd_formation_enthalpy")
    worst = fe.loc[fe["formation_enthalpy"].idxmin()]
    assert worst["formula"] == "Mg2Tc1" and worst["formation_enthalpy"] < -198
    assert "formation_energy_out_of_range" in worst["flag"]
    an = data("mp_elastic_anisotropy")
    assert an["elastic_anisotropy"].min() < -1700
    assert "negative_anisotropy" in an.loc[an["elastic_anisotropy"].idxmin(), "flag"]
    k = data("mp_bulk_modulus")
    assert "bulk_modulus_above_diamond" in k.loc[k["bulk_modulus"].idxmax(), "flag"]
    # a plain, sane value is not flagged
    assert data("aflow_bulk_modulus").iloc[0]["flag"] == ""


def test_duplicate_formula_flag_means_same_reduced_formula():
    from pymatgen.core import Composition

    for name in ("matbench_jdft2d", "exp_formation_enthalpy", "matbench_phonons"):
        df = data(name)
        reduced = df["formula"].map(lambda f: Composition(f).reduced_formula)
        np.testing.assert_array_equal(
            has_code(df, "duplicate_formula"), reduced.duplicated(keep=False).to_numpy()
        )
    assert dataset_info("matbench_jdft2d").flags["duplicate_formula"]["rows"] > 0


def test_formulation_duplicates_and_fractions():
    df = data("photo_pce10")
    inputs = ["mat_1", "mat_2", "mat_3", "mat_4"]
    np.testing.assert_allclose(df[inputs].sum(axis=1), 1, atol=0.01)
    np.testing.assert_array_equal(
        has_code(df, "duplicate_inputs"), df.duplicated(inputs, keep=False).to_numpy()
    )
    assert list(data("colors_bob").columns) == [
        "red",
        "orange",
        "yellow",
        "blue",
        "green",
        "difference_to_green",
        "flag",
    ]


def test_elasticity_split_into_labelled_and_pool():
    lab, pool = data("elasticity"), data("elasticity_pool")
    assert (lab["bulk_modulus"] > 0).mean() > 0.99
    assert dataset_info("elasticity").unit == "GPa"
    assert dataset_info("elasticity_pool").task == "unlabelled"
    assert pool["in_labelled_set"].any() and not pool["in_labelled_set"].all()


def test_unknown_name_error_suggests_close_matches():
    with pytest.raises(DatasetError) as err:
        load_dataset("matbench_expt_gaps")
    msg = str(err.value)
    assert "'matbench_expt_gaps'" in msg and "'matbench_expt_gap'" in msg
    assert isinstance(err.value, MatforgeError) and isinstance(err.value, KeyError)
    with pytest.raises(DatasetError, match="unknown dataset 'zzz'"):
        dataset_info("zzz")


def test_damaged_file_is_reported(monkeypatch):
    info = dataset_info("matbench_steels")
    catalog = dict(mds._catalog())
    catalog["matbench_steels"] = dataclasses.replace(info, rows=info.rows + 1)
    monkeypatch.setattr(mds, "_catalog", lambda: catalog)
    with pytest.raises(DatasetError, match="313"):
        load_dataset("matbench_steels")


def test_prototype_structures():
    from pymatgen.core import Structure

    structures = load_structures("aflow_prototypes")
    assert len(structures) == 288
    assert all(isinstance(s, Structure) for s in structures)
    df = data("aflow_prototypes")
    assert [s.composition.reduced_formula for s in structures] == df["formula"].tolist()
    assert (df["spacegroup_number"] == df["aflow_label"].str.split("_").str[2].astype(int)).all()
    assert df["spacegroup_number"].between(1, 230).all()
    assert df.loc[df["spacegroup_number"] >= 195, "crystal_system"].eq("cubic").all()
    with warnings.catch_warnings():  # CifParser notes that it snapped 1/3-like coordinates
        warnings.simplefilter("ignore")
        from_cif = Structure.from_str(df["cif"].iloc[0], fmt="cif")
    assert from_cif.composition.reduced_formula == df["formula"].iloc[0]
    with pytest.raises(DatasetError, match="holds no structures"):
        load_structures("matbench_steels")


def test_import_is_light():
    code = (
        "import sys, matforge.datasets; print('pymatgen' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
