"""The store's physical ranges (matforge.store.ranges) are the bundled datasets' flag rules:
same codes, same text in catalog.json and DATASETS.md, same rows flagged; docs/store.md shows
the table as the code has it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from matforge.datasets import load_dataset
from matforge.store import units
from matforge.store.ranges import RANGES, PhysicalRange, breaches, markdown_table, rules_for

ROOT = Path(__file__).resolve().parents[1]
CATALOG = json.loads((ROOT / "src/matforge/datasets/data/catalog.json").read_text())
# the catalog writes angstrom as "A", which pint reads as ampere
CATALOG_UNITS = {"A^3/atom": "Å^3/atom"}


@pytest.fixture(scope="module")
def build_script():
    spec = importlib.util.spec_from_file_location(
        "build_datasets", ROOT / "scripts" / "build_datasets.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_the_build_script_takes_the_rule_texts_from_the_table_and_keeps_the_catalog(build_script):
    rule_text = build_script.RULE_TEXT
    # a rebuild writes the same flag_rules, in the same order
    assert list(rule_text.items()) == list(CATALOG["flag_rules"].items())
    shared = [code for code in RANGES if code in rule_text]
    assert len(shared) == len(RANGES) - 1  # all but non_positive_thermal_conductivity
    for code in shared:
        assert rule_text[code] == RANGES[code].text
        assert f"| `{code}` | {RANGES[code].text} |" in (ROOT / "DATASETS.md").read_text()


def _flagged(df, code: str) -> np.ndarray:
    return df["flag"].str.split(";").map(lambda codes: code in codes).to_numpy()


DATASETS = [
    e["name"]
    for e in CATALOG["datasets"]
    if e.get("target") and any(r.code in e["flags"] for r in rules_for(e["target"]))
]


@pytest.mark.parametrize("name", DATASETS)
def test_the_store_refuses_exactly_the_values_a_bundled_dataset_flags(name):
    entry = next(e for e in CATALOG["datasets"] if e["name"] == name)
    target, unit = entry["target"], CATALOG_UNITS.get(entry["unit"], entry["unit"])
    df = load_dataset(name)
    found = {rule.code: mask for rule, mask, _ in breaches(target, df[target], unit)}
    for rule in rules_for(target):
        if rule.code in entry["flags"]:
            want = _flagged(df, rule.code)
            got = found.get(rule.code, np.zeros(len(df), dtype=bool))
            assert np.array_equal(got, want), (name, rule.code)
            assert int(want.sum()) == entry["flags"][rule.code]["rows"]


def test_the_build_scripts_transformed_rules_use_the_table(build_script):
    """log10 moduli and per-cell energies: the script's rules still flag the bundled rows."""
    for name in ("matbench_log_kvrh", "matbench_log_gvrh", "matbench_perovskites"):
        df = load_dataset(name)
        for rule in build_script.MATBENCH_RULES[name]:
            assert rule.code in RANGES
            assert np.array_equal(rule.test(df), _flagged(df, rule.code)), (name, rule.code)


def test_every_rule_is_a_checkable_range_in_a_unit_pint_reads():
    for rule in RANGES.values():
        assert rule.low is not None or rule.high is not None
        units.check_unit(rule.unit, rule.unit, property=rule.properties[0])
        assert rule.requirement().endswith(rule.unit)


def test_bounds_are_open_or_closed_as_the_rules_say():
    modulus = RANGES["non_positive_modulus"]
    assert modulus.outside([-5.0, 0.0, 1e-9, np.nan]).tolist() == [True, True, False, False]
    gap = RANGES["negative_band_gap"]
    assert gap.outside([-1e-9, 0.0]).tolist() == [True, False]
    formation = RANGES["formation_energy_out_of_range"]
    assert formation.outside([-5.0, 5.0, 5.01]).tolist() == [False, False, True]
    assert formation.requirement() == "in [-5, 5] eV/atom"
    assert RANGES["volume_out_of_range"].requirement() == "in (0, 150] Å^3/atom"
    rule = PhysicalRange("x", ("x",), "K", None, 10.0, text="")
    assert rule.requirement() == "<= 10 K" and rule.outside([10.0, 11.0]).tolist() == [False, True]


def test_docs_show_the_table_as_the_code_has_it():
    assert markdown_table() in (ROOT / "docs" / "store.md").read_text()
