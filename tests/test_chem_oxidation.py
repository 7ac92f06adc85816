"""Oxidation-state screens, checked against smact on bundled Matbench formulas."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matforge.chem import (
    CompositionBatch,
    charge_balanced,
    electronegativity_balanced,
    smact_valid,
)
from matforge.chem.oxidation import _neutral
from matforge.errors import InvalidFormula

N_SAMPLE = 10_000


@pytest.fixture(scope="module")
def matbench_sample() -> list[str]:
    """10,000 formula rows drawn (seed 0) from all Matbench tasks of the bundled datasets."""
    from matforge.datasets import list_datasets, load_dataset

    rows: list[str] = []
    for info in list_datasets():
        if info.name.startswith("matbench_"):
            df = load_dataset(info.name)
            if "formula" in df.columns:
                rows.extend(df["formula"].astype(str))
    rng = np.random.default_rng(0)
    return [rows[i] for i in rng.choice(len(rows), N_SAMPLE, replace=False)]


def _smact(formula: str, **kwargs) -> bool | str:
    from smact.screening import smact_validity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(smact_validity(formula, **kwargs))
        except Exception as exc:  # smact raises on some inputs; recorded as a disagreement
            return f"{type(exc).__name__}"


def test_smact_agreement_on_matbench(matbench_sample):
    ours = CompositionBatch.from_formulas(matbench_sample).smact_valid()
    ref = [_smact(f) for f in matbench_sample]
    disagree = [
        (f, bool(o), r) for f, o, r in zip(matbench_sample, ours, ref, strict=True) if o != r
    ]
    rate = 1 - len(disagree) / len(matbench_sample)
    print(f"smact agreement {rate:.4%} on {len(matbench_sample)} Matbench formulas")
    for d in disagree:
        print("  disagreement:", d)
    assert rate >= 0.99
    # the only known disagreement: smact divides by a zero GCD when every amount is < 1
    from pymatgen.core import Composition

    for f, o, r in disagree:
        assert r == "ZeroDivisionError" and o is False, (f, o, r)
        assert all(v < 1 for v in Composition(f).values()), f
    # the single-composition function gives the batch's answers
    for f, o in zip(matbench_sample[:500], ours[:500], strict=True):
        assert smact_valid(f) == o


def test_smact_agreement_without_pauling_test(matbench_sample):
    sample = matbench_sample[:2000]
    ours = CompositionBatch.from_formulas(sample).smact_valid(use_pauling_test=False)
    ref = [_smact(f, use_pauling_test=False) for f in sample]
    disagree = [(f, r) for f, o, r in zip(sample, ours, ref, strict=True) if o != r]
    assert all(r == "ZeroDivisionError" for _, r in disagree), disagree
    assert len(disagree) / len(sample) <= 0.01


@pytest.mark.parametrize(
    ("formula", "valid"),
    [
        ("Fe2O3", True),
        ("NaCl", True),
        ("NaCl2", False),
        ("Fe3O4", False),  # needs mixed valence, which smact's default does not try
        ("Fe", True),  # single element
        ("FeNi3", True),  # alloy
        ("HeO", False),  # no ICSD24 states for He
        ("Li0.5O0.5", False),  # smact raises ZeroDivisionError here
        ("CaTiO3", True),
    ],
)
def test_smact_valid_examples(formula, valid):
    assert smact_valid(formula) is valid
    if formula != "Li0.5O0.5":
        assert _smact(formula) is valid


def test_accepts_composition_and_rejects_bad_input():
    from pymatgen.core import Composition

    assert smact_valid(Composition("Fe2O3"))
    assert charge_balanced(Composition({"Fe2+": 1, "O2-": 1}))
    with pytest.raises(InvalidFormula, match="unknown element 'Xx'"):
        smact_valid("Xx2O")


def test_charge_balanced_uses_amounts_as_written():
    assert charge_balanced("Fe0.5O0.75")  # Fe3+ : O2- = 2 : 3
    assert not smact_valid("Fe0.5O0.75")  # smact truncates the amounts to 0
    assert charge_balanced("Li0.1Co0.3O0.2", oxidation_states="common") is False
    assert charge_balanced("Ca0.1Ti0.1O0.3")  # exact decimals: 0.2 + 0.4 - 0.6 == 0
    assert not charge_balanced("NaCl2", oxidation_states="common")
    assert charge_balanced("Fe")


def test_electronegativity_order():
    assert electronegativity_balanced("NaCl")
    assert not electronegativity_balanced("ClNa2")  # would need Cl+ with Na-
    # ICSD24 lists negative states for Fe/Ni (intermetallics): balanced, but not in EN order
    assert charge_balanced("FeNi") and not electronegativity_balanced("FeNi")
    assert not electronegativity_balanced("HeO")


def test_batch_screens_match_single_and_skip_bad_rows():
    formulas = ["Fe2O3", "NaCl2", "Xx", "Fe0.5O0.75", "Fe2O3"]
    batch = CompositionBatch.from_formulas(formulas, errors="collect")
    assert batch.smact_valid().tolist() == [True, False, False, False, True]
    assert batch.charge_balanced().tolist() == [True, False, False, True, True]
    assert batch.electronegativity_balanced(oxidation_states="common").tolist() == [
        electronegativity_balanced(f, oxidation_states="common") if f != "Xx" else False
        for f in formulas
    ]


# the cut-based search equals brute force over every assignment
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 6),
            st.lists(st.integers(-4, 5), min_size=1, max_size=4, unique=True),
            st.sampled_from([0.8, 1.5, 2.0, 2.5, 3.4, math.nan]),
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_neutral_search_matches_brute_force(elements, pauling):
    counts = [n for n, _, _ in elements]
    states = [ox for _, ox, _ in elements]
    en = [e for _, _, e in elements]

    def ok(assignment):
        if sum(q * n for q, n in zip(assignment, counts, strict=True)) != 0:
            return False
        if not pauling:
            return True
        if any(math.isnan(e) for e in en):
            return False
        for (q1, e1), (q2, e2) in itertools.combinations(zip(assignment, en, strict=True), 2):
            if (q1 > 0 and q2 < 0 and e1 >= e2) or (q1 < 0 and q2 > 0 and e1 <= e2):
                return False
        return True

    expected = any(ok(a) for a in itertools.product(*states))
    assert _neutral(counts, states, en if pauling else None) == expected
