"""Behaviour of matforge.features users rely on: matminer's surface, bad rows, exact sums."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matforge.chem.batch import CompositionBatch
from matforge.errors import InvalidFormula
from matforge.features import (
    ElementEmbeddingFeaturizer,
    ElementFraction,
    ElementProperty,
    FeatureSet,
    IonProperty,
    MagpieFeaturizer,
    Stoichiometry,
    ValenceOrbital,
)
from matforge.features.embedding import embedding_table, provenance
from matforge.features.formula_order import appearance_ranks
from matforge.features.ion import _charge_states, charge_balanced
from matforge.features.rowgroups import group_rows, numpy_average, numpy_sum, sequential_sum

FORMULAS = ["Fe2O3", "NaCl", "Ag(AuS)2", "Al10Co21B19", "OFe", "Fe0.5Ni0.5O", "Si"]


# -- matminer's surface ---------------------------------------------------------------


def matminer_pairs():
    mm = pytest.importorskip("matminer.featurizers.composition")
    return [
        (MagpieFeaturizer(), mm.ElementProperty.from_preset("magpie")),
        (ElementProperty.from_preset("magpie"), mm.ElementProperty.from_preset("magpie")),
        (Stoichiometry(), mm.Stoichiometry()),
        (ValenceOrbital(), mm.ValenceOrbital()),
        (IonProperty(), mm.IonProperty()),
        (ElementFraction(), mm.ElementFraction()),
    ]


def test_labels_citations_implementors_are_matminers():
    for ours, theirs in matminer_pairs():
        assert ours.feature_labels() == theirs.feature_labels(), type(ours).__name__
        assert ours.citations() == theirs.citations(), type(ours).__name__
        assert ours.implementors() == theirs.implementors(), type(ours).__name__


def test_magpie_has_132_labels_in_matminer_order():
    labels = MagpieFeaturizer().feature_labels()
    assert len(labels) == 132
    assert labels[:7] == [
        "MagpieData minimum Number",
        "MagpieData maximum Number",
        "MagpieData range Number",
        "MagpieData mean Number",
        "MagpieData avg_dev Number",
        "MagpieData mode Number",
        "MagpieData minimum MendeleevNumber",
    ]


def magpie_row(formula: str) -> dict[str, float]:
    f = MagpieFeaturizer()
    return dict(zip(f.feature_labels(), f.featurize(formula), strict=True))


def test_known_values_fe2o3():
    row = magpie_row("Fe2O3")
    assert row["MagpieData minimum Number"] == 8.0
    assert row["MagpieData maximum Number"] == 26.0
    assert row["MagpieData mean Number"] == pytest.approx((2 * 26 + 3 * 8) / 5)
    assert row["MagpieData avg_dev Number"] == pytest.approx((2 * 10.8 + 3 * 7.2) / 5)
    assert row["MagpieData mode Number"] == 8.0  # O is the most abundant


def test_mode_tie_takes_smallest_value():
    # equal amounts: matminer's mode is the minimum of the tied values
    row = magpie_row("NaCl")
    assert row["MagpieData mode Number"] == 11.0


def test_missing_element_data_propagates_nan_without_imputation():
    mm = pytest.importorskip("matminer.featurizers.composition")
    from pymatgen.core import Composition

    formulas = ["HeO", "FrCl", "Es2O3", "NaCl"]  # He, Fr, Es lack some Magpie properties
    ref = mm.ElementProperty.from_preset("magpie", impute_nan=False)
    expected = np.array([ref.featurize(Composition(f)) for f in formulas], dtype=float)
    got = MagpieFeaturizer(impute_nan=False).featurize_many(formulas)
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[:3]).any(axis=1).all() and np.isfinite(got[3]).all()


def test_featurize_batch_matches_featurize_many():
    batch = CompositionBatch.from_formulas(FORMULAS)
    X = MagpieFeaturizer().featurize_batch(batch)
    Y = MagpieFeaturizer().featurize_many(FORMULAS)
    # without the formula order only the summation order differs: rounding-level agreement
    np.testing.assert_allclose(X, Y, rtol=1e-14, atol=1e-12)


def test_composition_objects_give_identical_rows():
    from pymatgen.core import Composition

    comps = [Composition(f) for f in FORMULAS]
    f = FeatureSet([MagpieFeaturizer(), Stoichiometry(), IonProperty()])
    np.testing.assert_array_equal(f.featurize_many(comps), f.featurize_many(FORMULAS))


# -- bad rows ---------------------------------------------------------------------------


def test_bad_formulas_give_nan_rows_and_reported_errors():
    f = MagpieFeaturizer()
    X = f.featurize_many(["Fe2O3", "Xx2", None, "NaCl"])
    assert np.isfinite(X[[0, 3]]).all()
    assert np.isnan(X[[1, 2]]).all()
    rows = [r for r, _ in f.errors_]
    assert rows == [1, 2]
    assert "Xx" in f.errors_[0][1]
    X2, errors = f.featurize_many(["Fe2O3", "Xx2"], return_errors=True)
    assert [r for r, _ in errors] == [1]


def test_ignore_errors_false_raises():
    with pytest.raises(InvalidFormula, match="Xx"):
        MagpieFeaturizer().featurize_many(["Fe2O3", "Xx2"], ignore_errors=False)
    with pytest.raises(InvalidFormula):
        MagpieFeaturizer().featurize("not a formula")


def test_featurize_dataframe_appends_columns():
    df = pd.DataFrame({"formula": ["Fe2O3", "oops", "NaCl"], "y": [1.0, 2.0, 3.0]}, index=[7, 8, 9])
    out = Stoichiometry().featurize_dataframe(df, "formula", return_errors=True)
    assert out.columns.tolist() == ["formula", "y", *Stoichiometry().feature_labels()] + [
        "Stoichiometry Exceptions"
    ]
    assert out.index.tolist() == [7, 8, 9]
    assert out.loc[7, "0-norm"] == 2 and out.loc[9, "2-norm"] == pytest.approx(math.sqrt(0.5))
    assert out.loc[8, "2-norm"] != out.loc[8, "2-norm"]  # NaN
    assert "oops" in out.loc[8, "Stoichiometry Exceptions"]
    assert pd.isna(out.loc[7, "Stoichiometry Exceptions"])
    assert df.columns.tolist() == ["formula", "y"]  # input untouched
    with pytest.raises(ValueError, match="exists"):
        Stoichiometry().featurize_dataframe(out, "formula")
    assert Stoichiometry().featurize_dataframe(df, inplace=True) is None
    assert "10-norm" in df.columns


def test_empty_input():
    assert MagpieFeaturizer().featurize_many([]).shape == (0, 132)


# -- exact arithmetic -----------------------------------------------------------------

floats = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(floats, floats), min_size=1, max_size=40))
def test_numpy_average_is_bit_identical_to_np_average(pairs):
    values, weights = (np.array(x) for x in zip(*pairs, strict=True))
    got = numpy_average(values[:, None], weights[:, None])[0]
    assert got == np.average(list(values), weights=tuple(weights))
    assert numpy_sum(values[:, None])[0] == np.sum(values)
    assert sequential_sum(values[:, None])[0] == sum(values.tolist())


def test_formula_order_matches_pymatgen():
    from pymatgen.core import Composition

    from matforge.chem import SYMBOLS

    formulas = ["OFe2", "Ag(AuS)2", "K4[Fe(CN)6]", "CH3OH", "Y3N@C80", "LiMn2O4", "Xx", "Ba(OH)2"]
    batch = CompositionBatch.from_formulas(formulas, errors="collect")
    ranks = appearance_ranks(formulas, batch.amounts)
    a = batch.amounts
    for i, formula in enumerate(formulas):
        if not batch.valid[i]:
            continue
        lo, hi = a.indptr[i], a.indptr[i + 1]
        ours = [SYMBOLS[c] for _, c in sorted(zip(ranks[lo:hi], a.indices[lo:hi], strict=True))]
        assert ours == [e.symbol for e in Composition(formula).element_composition], formula


def test_avg_dev_reproduces_matminers_rounding_noise():
    # In2O8P2: every element has NsValence 2, so avg_dev is mathematically 0; matminer sums
    # in formula order and gets exactly 0, a Z-ordered sum gets 2.2e-16
    pytest.importorskip("matminer")
    from matminer.featurizers.composition import ElementProperty as MMElementProperty
    from pymatgen.core import Composition

    for formula in ["In2O8P2", "P2In2O8", "Ba(OH)2", "Li3Fe2(PO4)3"]:
        ref = MMElementProperty.from_preset("magpie").featurize(Composition(formula))
        assert MagpieFeaturizer().featurize(formula) == ref, formula


def test_group_splitting_does_not_change_results():
    batch = CompositionBatch.from_formulas(FORMULAS * 5)
    f = MagpieFeaturizer()
    whole = np.vstack([f._featurize_group(g) for g in group_rows(batch.amounts)])
    split = np.vstack([f._featurize_group(g) for g in group_rows(batch.amounts, max_rows=2)])
    np.testing.assert_array_equal(np.sort(whole, axis=0), np.sort(split, axis=0))


# -- charge balance ---------------------------------------------------------------------


def brute_force_balanced(elements, counts) -> bool:
    states = [_charge_states()[e] for e in elements]
    per_element = [
        {sum(c) for c in itertools.combinations_with_replacement(s, n)}
        for s, n in zip(states, counts, strict=True)
    ]
    return any(sum(x) == 0 for x in itertools.product(*per_element))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 102), st.integers(1, 6)),
        min_size=2,
        max_size=4,
        unique_by=lambda t: t[0],
    )
)
def test_charge_balance_matches_enumeration(items):
    elements, counts = zip(*items, strict=True)
    assert charge_balanced(elements, counts) == brute_force_balanced(elements, counts)


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("Fe3O4", 1.0),
        ("NaCl", 1.0),
        ("NaCl2", 0.0),
        ("HeO", 0.0),
        ("Si", 1.0),
        ("Fe0.5Ni0.5O", None),
    ],
)
def test_compound_possible(formula, expected):
    cpd, max_ic, avg_ic = IonProperty().featurize(formula)
    if expected is None:  # pymatgen needs integer amounts; matminer raises here
        assert math.isnan(cpd) and 0 < avg_ic <= max_ic
    else:
        assert cpd == expected


# -- feature sets and embeddings ----------------------------------------------------------


def test_feature_set_concatenates():
    parts = [
        MagpieFeaturizer(),
        Stoichiometry(),
        ValenceOrbital(),
        IonProperty(),
        ElementFraction(),
    ]
    fs = FeatureSet(parts)
    X = fs.featurize_many(FORMULAS)
    np.testing.assert_array_equal(X, np.hstack([p.featurize_many(FORMULAS) for p in parts]))
    assert fs.feature_labels() == sum((p.feature_labels() for p in parts), [])
    assert len(fs.citations()) == len(set(fs.citations())) == 2
    with pytest.raises(ValueError, match="duplicate"):
        FeatureSet([Stoichiometry(), Stoichiometry()])


def test_embedding_tables_and_provenance():
    meta = provenance()
    assert meta["licence"] == "MIT" and "crabnet==2.0.8" in meta["source"]
    for name, width in [("mat2vec", 200), ("oliynyk", 44), ("jarvis", 438), ("magpie", 22)]:
        table, columns = embedding_table(name)
        assert table.shape == (103, width) and len(columns) == width
        assert table.dtype == np.float32
        assert meta["tables"][name]["elements"] == int((~np.isnan(table).all(axis=1)).sum())


def test_embedding_statistics_match_a_direct_computation():
    stats = ("mean", "sum", "var", "avg_dev", "range", "min", "max", "mode")
    f = ElementEmbeddingFeaturizer("magpie", stats=stats)
    table, _ = embedding_table("magpie")
    from matforge.chem import Z

    for formula, amounts in [("Fe2O3", {"Fe": 2, "O": 3}), ("NaCl", {"Na": 1, "Cl": 1})]:
        v = np.array([table[Z[e] - 1] for e in amounts], dtype=float)
        a = np.array(list(amounts.values()), dtype=float)
        x = a / a.sum()
        mean = x @ v
        expected = {
            "mean": mean,
            "sum": a @ v,
            "var": x @ (v - mean) ** 2,
            "avg_dev": x @ np.abs(v - mean),
            "range": v.max(0) - v.min(0),
            "min": v.min(0),
            "max": v.max(0),
            "mode": v[np.isclose(a, a.max())].min(0),
        }
        got = np.array(f.featurize(formula)).reshape(len(stats), -1)
        for i, s in enumerate(stats):
            np.testing.assert_allclose(got[i], expected[s], rtol=1e-12, err_msg=f"{formula} {s}")
    assert f.feature_labels()[0] == "magpie mean Number"


def test_embedding_missing_element_gives_nan():
    table, _ = embedding_table("oliynyk")
    from matforge.chem import Z

    assert np.isnan(table[Z["Po"] - 1]).all()
    X = ElementEmbeddingFeaturizer("oliynyk").featurize_many(["PoO2", "Fe2O3"])
    assert np.isnan(X[0]).all() and np.isfinite(X[1]).all()
