"""Formula parsing: parse_formula and CompositionBatch against pymatgen and each other."""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matforge.chem import SYMBOLS, CompositionBatch, parse_formula
from matforge.chem.formula import parse_amounts
from matforge.errors import InvalidFormula, MatforgeError

SAMPLE = 20_000


def _bundled_formulas() -> list[str]:
    """Every distinct formula string of every bundled dataset with a ``formula`` column."""
    from matforge.datasets import list_datasets, load_dataset

    found: set[str] = set()
    for info in list_datasets():
        name = getattr(info, "name", info)
        df = load_dataset(name)
        if "formula" in df.columns:
            found.update(df["formula"].dropna().astype(str))
    return sorted(found)


@pytest.fixture(scope="module")
def bundled() -> list[str]:
    return _bundled_formulas()


def _pymatgen_amounts(formula: str) -> dict[str, float]:
    from pymatgen.core import Composition

    return {el.symbol: amt for el, amt in Composition(formula).items()}


def _batch_rows(batch: CompositionBatch, matrix: sp.csr_matrix | None = None) -> list[dict]:
    m = batch.amounts if matrix is None else matrix
    return [
        {SYMBOLS[c]: float(v) for c, v in zip(m.indices[lo:hi], m.data[lo:hi], strict=True)}
        for lo, hi in zip(m.indptr[:-1], m.indptr[1:], strict=True)
    ]


def _check_agreement(formulas: list[str]) -> None:
    batch = CompositionBatch.from_formulas(formulas)
    rows = _batch_rows(batch)
    bad = []
    for f, ours in zip(formulas, rows, strict=True):
        ref = _pymatgen_amounts(f)
        if ours != ref or parse_amounts(f) != ref:
            bad.append((f, ref, ours))
    assert not bad, (
        f"{len(bad)} of {len(formulas)} formula strings disagree with pymatgen: {bad[:10]}"
    )
    print(f"pymatgen agreement: {len(formulas)} distinct formula strings, all identical")


# --- agreement with pymatgen on the bundled datasets ---------------------------------------


def test_agrees_with_pymatgen_on_bundled_sample(bundled):
    assert len(bundled) > 500_000  # the datasets are all there
    sample = random.Random(0).sample(bundled, SAMPLE)
    sample += [f for f in bundled if "(" in f][:2000]  # make sure brackets are covered
    _check_agreement(sorted(set(sample)))


@pytest.mark.slow
def test_agrees_with_pymatgen_on_all_bundled(bundled):
    _check_agreement(bundled)


# --- parse_formula -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("Fe2O3", {"Fe": 2, "O": 3}),
        ("Ca3(PO4)2", {"Ca": 3, "P": 2, "O": 8}),
        ("K4[Fe(CN)6]", {"K": 4, "Fe": 1, "C": 6, "N": 6}),
        ("{[(Fe)2]3}4", {"Fe": 24}),
        ("Mg3Si4(HO6)2", {"Mg": 3, "Si": 4, "H": 2, "O": 12}),
        ("Fe0.7Ni0.3", {"Fe": 0.7, "Ni": 0.3}),
        ("Fe.5Ni.5", {"Fe": 0.5, "Ni": 0.5}),
        ("CuSO4·5H2O", {"Cu": 1, "S": 1, "O": 9, "H": 10}),
        ("CuSO4.5H2O", {"Cu": 1, "S": 1, "O": 9, "H": 10}),
        ("CuSO4*5H2O", {"Cu": 1, "S": 1, "O": 9, "H": 10}),
        ("CaSO4·0.5H2O", {"Ca": 1, "S": 1, "O": 4.5, "H": 1}),
        ("Fe(OH)3.H2O", {"Fe": 1, "O": 4, "H": 5}),
        ("Li0.5H2O", {"Li": 0.5, "H": 2, "O": 1}),  # a decimal, not a hydrate
        (" Fe2 O3 ", {"Fe": 2, "O": 3}),
        ("CH3OH", {"C": 1, "H": 4, "O": 1}),
        ("Y3N@C80", {"Y": 3, "N": 1, "C": 80}),
        ("O2e-3Fe", {"O": 0.002, "Fe": 1}),
    ],
)
def test_parse_formula(formula, expected):
    comp = parse_formula(formula)
    assert {el.symbol: amt for el, amt in comp.items()} == pytest.approx(expected)
    assert CompositionBatch.from_formulas([formula]).to_compositions()[0] == comp


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("", "empty formula"),
        ("   ", "empty formula"),
        ("Xx2O", "unknown element 'Xx' at position 0"),
        ("FeO3Q", "unknown element 'Q' at position 4"),
        ("Fe0O", "amount '0' at position 2 is zero"),
        ("Fe-2O3", "unexpected character '-' at position 2"),
        ("Ca3(PO4", "unclosed '(' at position 3"),
        ("Ca3PO4)2", "unmatched ')' at position 6"),
        ("K4[Fe(CN)6)", "')' at position 10 does not close '[' at position 2"),
        ("Fe2O3x", "unexpected character 'x' at position 5"),
        ("Fe2O3!", "unexpected character '!' at position 5"),
        ("2H2O", "unexpected number '2' at position 0"),
        ("Fe()", "empty brackets at position 2"),
        ("CuSO4·", "nothing after separator"),
        ("Rf2", "unknown element 'Rf'"),  # Z = 104: outside the table
    ],
)
def test_bad_formulas_name_token_and_position(formula, message):
    with pytest.raises(InvalidFormula, match=re.escape(message)):
        parse_formula(formula)
    with pytest.raises(InvalidFormula, match="row 17 of data.csv"):
        parse_formula(formula, where="row 17 of data.csv")


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("Zn1e308O", "amount '1e308' at position 2 is more than 1,000,000 atoms per formula unit"),
        ("Zn2O1e307", "amount '1e307' at position 4 is more than 1,000,000"),
        ("Fe10000000O", "amount '10000000' at position 2 is more than 1,000,000"),
        ("Fe1234567890123456O", "amount '1234567890123456' at position 2 is more than"),
        ("(Fe0.001)10000000", "amount '10000000' at position 9 is more than 1,000,000"),
        # each number is allowed, their product is not
        ("(Fe1001)1000", "amount 1001000 of 'Fe' is more than 1,000,000"),
        ("Fe600000O600000", "1200000 atoms per formula unit are more than 1,000,000"),
        ("Fe1e-320O", "amount 1e-320 of 'Fe' is below 1e-08"),
        ("Fe1e309O", "amount '1e309' at position 2 is not finite"),
        ("Fe inf", "unexpected character 'i' at position 3"),
        ("Fe nan", "unexpected character 'n' at position 3"),
    ],
)
def test_absurd_amounts_are_invalid_in_both_parsers(formula, message):
    """Amounts that would overflow features (issue #18): refused by every entry point."""
    with pytest.raises(InvalidFormula, match=re.escape(message)):
        parse_formula(formula)
    batch = CompositionBatch.from_formulas(["Fe2O3", formula], errors="collect")
    assert [r for r, _ in batch.errors] == [1] and message in batch.errors[0][1]
    assert np.isfinite(batch.fractions.data).all()
    with pytest.raises(InvalidFormula, match=re.escape(message)):
        CompositionBatch.from_formulas([formula] * 3)


def test_amounts_up_to_the_bound_are_kept():
    for formula, fe in [("Fe999999O", 999999.0), ("Fe0.00001O", 1e-5), ("(Fe1000)999O", 999000.0)]:
        assert parse_amounts(formula)["Fe"] == fe
        assert CompositionBatch.from_formulas([formula]).amounts[0, 25] == fe


def test_non_string_is_invalid_formula():
    for value in (None, float("nan"), 3, ["Fe"]):
        with pytest.raises(InvalidFormula, match="must be a string"):
            parse_formula(value)


@pytest.mark.parametrize(
    ("written", "plain"),
    [
        ("Fe₂O₃", "Fe2O3"),
        ("Fe₂O3", "Fe2O3"),  # mixed
        ("Ca₃(PO₄)₂", "Ca3(PO4)2"),
        ("Ni₈₁.₅B₂", "Ni81.5B2"),  # no subscript '.' exists: a plain one between subscripts
        ("CuSO₄·5H₂O", "CuSO4·5H2O"),
        ("CuSO₄.5H₂O", "CuSO4.5H2O"),  # still a hydrate dot before subscripted water
        ("Fe₁₀O₁₅", "Fe10O15"),
    ],
)
def test_unicode_subscript_digits_read_as_digits(written, plain):
    assert parse_amounts(written) == parse_amounts(plain)
    assert parse_formula(written) == parse_formula(plain)
    batch = CompositionBatch.from_formulas([written, plain, "NaCl"])
    assert _batch_rows(batch)[0] == _batch_rows(batch)[1]


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("Fe₂O₃Q", "unknown element 'Q' at position 5"),
        ("Fe₂O₃x", "unexpected character 'x' at position 5"),
        ("Fe₀O", "amount '₀' at position 2 is zero"),
        ("₂H₂O", "unexpected number '₂' at position 0"),
        ("Ca₃(PO₄", "unclosed '(' at position 3"),
    ],
)
def test_subscript_formula_errors_point_at_the_written_text(formula, message):
    with pytest.raises(InvalidFormula, match=re.escape(message)) as info:
        parse_formula(formula, where="row 3 of data.csv")
    assert str(info.value).startswith(repr(formula)) and "(row 3 of data.csv)" in str(info.value)


# --- CompositionBatch ----------------------------------------------------------------------

EDGE = [
    "Fe2O3", "Fe2O3", "CH3OH", "Ca3(PO4)2", "K4[Fe(CN)6]", "CuSO4.5H2O", "Li0.5H2O", "Fe2.",
    "Fe.5Ni.5", "Ni81.5B2P16.5", "(Fe)", "(Fe)2(O)3", "Fe2 O3", "O2e-3Fe", "Fe0.0000993",
    "Al(Al)2", "Fe\nO", "Fe123456.7890123456O", "Fe0.1234567890123456789O", "H", "Lr", "Zr42.5Cu55B2.5",
]  # fmt: skip
BAD = ["", "Xx", "Fe0", "(Fe", "Fe)", "2Fe", "Fee", "fe", "Fe2..3", "Fe\x00O", "()", "Fe·", None]


def test_batch_matches_parse_formula_exactly(bundled):
    formulas = random.Random(1).sample(bundled, 5000) + EDGE
    batch = CompositionBatch.from_formulas(formulas)
    assert len(batch) == len(formulas) and batch.valid.all() and not batch.errors
    assert batch.amounts.shape == batch.fractions.shape == (len(formulas), 103)
    assert batch.elements == SYMBOLS
    for f, amounts, fractions in zip(
        formulas, _batch_rows(batch), _batch_rows(batch, batch.fractions), strict=True
    ):
        comp = parse_formula(f)
        assert amounts == {el.symbol: v for el, v in comp.items()}, f
        assert fractions == {el.symbol: comp.get_atomic_fraction(el) for el in comp}, f


def test_batch_fractions_sum_to_one_and_share_sparsity():
    batch = CompositionBatch.from_formulas(EDGE)
    np.testing.assert_allclose(np.asarray(batch.fractions.sum(axis=1)).ravel(), 1.0)
    assert (batch.fractions.indices == batch.amounts.indices).all()
    assert batch.fractions.has_sorted_indices and batch.amounts.has_sorted_indices
    assert batch.fractions.dtype == np.float64


def test_batch_collects_errors_with_row_and_source():
    formulas = ["Fe2O3", *BAD, "NaCl"]
    batch = CompositionBatch.from_formulas(formulas, errors="collect", source="data.csv")
    assert [r for r, _ in batch.errors] == list(range(1, len(BAD) + 1))
    assert batch.valid.tolist() == [True] + [False] * len(BAD) + [True]
    assert batch.amounts[1 : len(BAD) + 1].nnz == 0  # bad rows are all-zero
    assert "unknown element 'Xx' at position 0 (row 2 of data.csv)" in batch.errors[1][1]
    comps = batch.to_compositions()
    assert (
        comps[0].reduced_formula == "Fe2O3" and comps[1] is None and comps[-1].formula == "Na1 Cl1"
    )


def test_batch_raises_on_first_bad_row():
    with pytest.raises(InvalidFormula, match=r"'Xx'.*\(row 2\)"):
        CompositionBatch.from_formulas(["Fe", "Fe", "Xx", "Xx"])
    with pytest.raises(ValueError):
        CompositionBatch.from_formulas(["Fe"], errors="ignore")


def test_batch_repeats_and_empty():
    batch = CompositionBatch.from_formulas(["NaCl", "Fe2O3"] * 1000)
    assert len(batch) == 2000 and batch.amounts.nnz == 4000
    assert len(CompositionBatch.from_formulas([])) == 0
    assert CompositionBatch.from_formulas([]).amounts.shape == (0, 103)


def test_batch_accepts_any_sequence():
    import pandas as pd

    batch = CompositionBatch.from_formulas(pd.Series(["NaCl", "KBr"]))
    assert batch.to_compositions()[1].formula == "K1 Br1"
    assert len(CompositionBatch.from_formulas(np.array(["NaCl", "KBr"]))) == 2


# --- property-based ------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    list("CHONFeSiAlKaglmbrxeiu") + list("0123456789") + list("()[]{}..  ") + list("·*@-#é\n\t")
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(_ALPHABET, max_size=14), min_size=1, max_size=8))
def test_only_matforge_errors_escape(formulas):
    # single strings through both entry points
    for f in formulas:
        try:
            parse_formula(f)
        except MatforgeError:
            pass
    try:
        CompositionBatch.from_formulas(formulas)
    except MatforgeError:
        pass
    # and the batch agrees with the single-string parser row by row
    batch = CompositionBatch.from_formulas(formulas, errors="collect")
    bad = dict(batch.errors)
    for i, (f, row) in enumerate(zip(formulas, _batch_rows(batch), strict=True)):
        try:
            expected = parse_amounts(f)
        except InvalidFormula as exc:
            assert i in bad and str(exc) in bad[i]
            continue
        assert row == expected, f


_amounts = st.one_of(
    st.integers(1, 200).map(float),
    st.decimals(min_value="0.001", max_value="99.999", places=3).map(float),
)


@st.composite
def _compositions(draw):
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=6, unique=True))
    return {s: draw(_amounts) for s in symbols}


def _format(comp: dict[str, float], *, group: bool) -> str:
    parts = [f"{s}{'' if a == 1.0 else repr(a)}" for s, a in comp.items()]
    if group and len(parts) > 1:
        return f"{parts[0]}({''.join(parts[1:])})"
    return "".join(parts)


@pytest.mark.filterwarnings("ignore:No Pauling electronegativity")
@settings(max_examples=300, deadline=None)
@given(_compositions(), st.booleans())
def test_round_trip(comp, group):
    text = _format(comp, group=group)
    parsed = {el.symbol: v for el, v in parse_formula(text).items()}
    assert parsed == comp
    assert _batch_rows(CompositionBatch.from_formulas([text, text]))[1] == comp
    # pymatgen's own formula string parses back to the same composition
    pmg = parse_formula(text).formula
    assert {el.symbol: v for el, v in parse_formula(pmg).items()} == pytest.approx(comp)
    assert math.isclose(sum(parsed.values()), sum(comp.values()))
