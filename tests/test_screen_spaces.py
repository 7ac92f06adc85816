"""Candidate spaces, composition keys, filter expressions and rankings (matforge.screen)."""

import numpy as np
import pytest

from matforge.chem import charge_balanced, electronegativity_balanced
from matforge.screen import (
    ConcatSpace,
    EnumeratedSpace,
    Expression,
    FormulaSpace,
    KnownCompositions,
    ScreenError,
    SubstitutionSpace,
    composition_keys,
    parse_ranking,
)
from matforge.screen.candidate_spaces import stoichiometries
from matforge.screen.ranking import ByValue, ConfidenceBound, ParetoFront, pareto_mask

ELEMENTS = ["B", "C", "N", "O", "Ti", "W", "Fe"]


def _formulas(space):
    chunk = space.chunk(0, len(space))
    return chunk.labels(np.arange(len(chunk)))["formula"]


def test_enumerated_space_counts_and_uniqueness():
    space = EnumeratedSpace(ELEMENTS, max_atoms=6, arities=(2, 3, 4))
    # reduced tuples: (1,1)...; C(7,2)*S2 + C(7,3)*S3 + C(7,4)*S4
    s2, s3, s4 = (len(stoichiometries(r, 6)) for r in (2, 3, 4))
    assert len(space) == 21 * s2 + 35 * s3 + 35 * s4
    formulas = _formulas(space)
    assert len(formulas) == len(space)
    keys = composition_keys(space.chunk(0, len(space)).batch.fractions)
    assert len(np.unique(keys)) == len(keys)  # no composition twice (Fe2O2 is FeO)
    assert {"BC", "TiO2", "Fe2O3", "WC", "TiFeWO3"} <= set(formulas)
    assert "Fe2O2" not in formulas and "FeO" in formulas


def test_enumerated_chunks_are_slices_of_the_whole():
    space = EnumeratedSpace(ELEMENTS, max_atoms=5, arities=(2, 3))
    whole = space.chunk(0, len(space))
    parts = [space.chunk(a, min(a + 37, len(space))) for a in range(0, len(space), 37)]
    assert np.array_equal(np.concatenate([p.index for p in parts]), whole.index)
    stacked = np.concatenate([p.batch.fractions.toarray() for p in parts])
    assert np.array_equal(stacked, whole.batch.fractions.toarray())


@pytest.mark.parametrize("kind", ["charge", "en"])
def test_enumerated_balance_filters_agree_with_chem(kind):
    plain = _formulas(EnumeratedSpace(ELEMENTS, max_atoms=6, arities=(2, 3, 4)))
    space = EnumeratedSpace(
        ELEMENTS, max_atoms=6, arities=(2, 3, 4),
        charge_balanced=kind == "charge", electronegativity_balanced=kind == "en",
    )  # fmt: skip
    test = charge_balanced if kind == "charge" else electronegativity_balanced
    assert set(_formulas(space)) == {f for f in plain if test(f)}
    chunk = space.chunk(0, len(space))
    assert sum(chunk.filtered.values()) == len(plain) - len(chunk)


def test_exclusion_of_known_compositions_matches_any_writing():
    space = EnumeratedSpace(ELEMENTS, max_atoms=6, arities=(2,), exclude=["Ti2O4", "Fe0.4O0.6", "CW"])
    formulas = set(_formulas(space))
    assert not {"TiO2", "Fe2O3", "WC"} & formulas
    assert space.chunk(0, len(space)).filtered == {"known": 3}
    known = KnownCompositions.from_formulas(["NaCl", "bad!"])
    assert len(known) == 1


def test_formula_space_dedupes_excludes_and_reports_bad_rows(tmp_path):
    path = tmp_path / "cands.csv"
    path.write_text("formula,id\nNaCl,a\nFe2O3,b\nXx2,c\nFe4O6,d\nTiO2,e\n")
    space = FormulaSpace.from_file(path, id_column="id", unique=True, exclude=["TiO2"])
    chunk = space.chunk(0, len(space))
    assert chunk.index.tolist() == [0, 1, 2]
    assert chunk.filtered == {"known": 1, "duplicate": 1}
    assert chunk.batch.errors and "Xx" in chunk.batch.errors[0][1]
    assert chunk.labels(np.arange(3)) == {"formula": ["NaCl", "Fe2O3", "Xx2"], "id": ["a", "b", "c"]}
    with pytest.raises(ScreenError, match="not found"):
        FormulaSpace.from_file(tmp_path / "missing.csv")


def test_formula_space_from_dataset_and_concat():
    pool = FormulaSpace.from_dataset("elasticity_pool", keep="not in_labelled_set")
    assert 100_000 < len(pool) < 128_495
    both = ConcatSpace([FormulaSpace(["NaCl"], name="a"), FormulaSpace(["KBr", "MgO"], name="b")])
    chunk = both.chunk(0, 3)
    assert chunk.labels(np.arange(3)) == {"formula": ["NaCl", "KBr", "MgO"], "source": ["a", "b", "b"]}


def test_substitution_space_uses_similar_elements():
    space = SubstitutionSpace(["NaCl", "TiO2"], rule="group", exclude=["KCl"])
    chunk = space.chunk(0, len(space))
    labels = chunk.labels(np.arange(len(chunk)))
    pairs = set(zip(labels["formula"], labels["substitution"], strict=True))
    assert ("LiCl", "Na->Li") in pairs and ("NaBr", "Cl->Br") in pairs
    assert ("ZrO2", "Ti->Zr") in pairs and ("TiS2", "O->S") in pairs
    assert "KCl" not in labels["formula"] and chunk.filtered["known"] == 1
    assert not any(s.startswith("Na->Cl") for s in labels["substitution"])
    radius = SubstitutionSpace(["MgO"], rule="radius")
    subs = set(radius.chunk(0, len(radius)).labels(np.arange(len(radius)))["substitution"])
    assert "Mg->Ni" in subs or "Mg->Co" in subs  # ~0.72 Å divalent cations


def test_expression_is_safe_and_vectorised():
    e = Expression("hardness_vickers > 40 and bulk_modulus > 250 or not (x <= 2 * y)")
    assert e.names == ("bulk_modulus", "hardness_vickers", "x", "y")
    cols = {"hardness_vickers": np.array([50.0, 50, 10]), "bulk_modulus": np.array([300.0, 100, 100]),
            "x": np.array([1.0, 1, 5]), "y": np.array([1.0, 1, 1])}  # fmt: skip
    assert e.evaluate(cols).tolist() == [True, False, True]
    assert Expression("20 < a <= 30").evaluate({"a": np.array([20, 25, 30, 31])}).tolist() == [
        False, True, True, False
    ]
    assert Expression("abs(a - 1) < sqrt(b)").evaluate({"a": np.array([0.5]), "b": np.array([1.0])})[0]
    for bad in ["__import__('os').system('ls')", "a.real > 1", "a[0] > 1", "'x' == a",
                "(lambda: 1)() > 0", "open('f')", "[a for a in b]", "a if b else c", "a @ b"]:
        with pytest.raises(ScreenError):
            Expression(bad)
    with pytest.raises(ScreenError, match="unknown column"):
        Expression("nope > 1").evaluate({"a": np.ones(2)})
    with pytest.raises(ScreenError, match="syntax"):
        Expression("a >")


def test_ranking_specs_and_pareto():
    assert parse_ranking("hardness_vickers") == ByValue("hardness_vickers")
    assert parse_ranking("-energy") == ByValue("energy", descending=False)
    assert parse_ranking("ucb:h:2") == ConfidenceBound("h", 2.0)
    assert parse_ranking("pareto:a,-b") == ParetoFront((("a", True), ("b", False)))
    with pytest.raises(ScreenError):
        parse_ranking("pareto:a")
    with pytest.raises(ScreenError):
        parse_ranking("magic:a")
    rng = np.random.default_rng(0)
    for d in (2, 3):
        v = rng.integers(0, 6, (80, d)).astype(float)
        brute = [not any((v[j] >= v[i]).all() and (v[j] > v[i]).any() for j in range(80))
                 for i in range(80)]  # fmt: skip
        assert pareto_mask(v).tolist() == brute


def test_formula_space_from_store(tmp_path):
    import pandas as pd

    from matforge.store import Store

    url = f"sqlite:///{tmp_path / 'm.db'}"
    with Store(url) as store:
        df = pd.DataFrame({"formula": ["TiB2", "WC", "B4C"], "value": [250.0, 380.0, 230.0]})
        store.add_measurements(df, project="hard", property="bulk_modulus", unit="GPa")
    space = FormulaSpace.from_store(url, project="hard", exclude=["WC"])
    chunk = space.chunk(0, len(space))
    assert sorted(chunk.labels(np.arange(len(chunk)))["formula"]) == ["B4C", "TiB2"]
    assert space.label_columns() == ("formula", "material_id")
