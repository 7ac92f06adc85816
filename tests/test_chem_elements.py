"""The element table must serve exactly what matminer, pymatgen and smact serve."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from matforge.chem import (
    MAGPIE_PRESET,
    SYMBOLS,
    Z,
    element_table,
    magpie_impute_value,
    magpie_property,
    oxidation_state_lists,
    provenance,
)
from matforge.errors import MatforgeError


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_symbols_and_z():
    assert len(SYMBOLS) == 103 and SYMBOLS[0] == "H" and SYMBOLS[25] == "Fe" and SYMBOLS[-1] == "Lr"
    assert all(Z[s] == i + 1 for i, s in enumerate(SYMBOLS))


def test_symbols_match_pymatgen():
    from pymatgen.core import Element

    assert tuple(Element.from_Z(z).symbol for z in range(1, 104)) == SYMBOLS


def test_table_shape_and_preset_columns():
    t = element_table()
    assert list(t.index) == list(SYMBOLS)
    assert set(MAGPIE_PRESET) <= set(t.columns)
    for name in (
        "pauling_en",
        "oxidation_states",
        "common_oxidation_states",
        "icsd_oxidation_states",
        "smact_oxidation_states",
        "covalent_radius",
        "ionic_radii",
    ):
        assert name in t.columns
    for name in MAGPIE_PRESET:
        assert t[name].dtype == np.float64
    t.loc["H", "Number"] = -1.0  # a copy: the cached table is unchanged
    assert element_table().loc["H", "Number"] == 1.0


@pytest.fixture(scope="module")
def magpie():
    from matminer.utils.data import MagpieData

    return MagpieData(impute_nan=False), MagpieData(impute_nan=True)


def test_every_magpie_property_matches_matminer(magpie):
    from pymatgen.core import Element

    raw, imputed = magpie
    served = set(raw.all_elemental_props)
    assert served <= set(element_table().columns)  # every property MagpieData can serve
    for name in raw.all_elemental_props:
        if name == "OxidationStates":
            continue
        ours, ours_imp = magpie_property(name), magpie_property(name, impute_nan=True)
        assert ours.dtype == np.float64 and ours.shape == (103,)
        for i, s in enumerate(SYMBOLS):
            el = Element(s)
            assert _same(ours[i], raw.get_elemental_property(el, name)), (name, s)
            assert _same(ours_imp[i], imputed.get_elemental_property(el, name)), (name, s)


def test_magpie_nan_where_matminer_has_nan(magpie):
    from pymatgen.core import Element

    raw, _ = magpie
    en = magpie_property("Electronegativity")
    assert np.isnan(en).sum() == 5  # He, Ne, Ar, ... not silently imputed
    assert math.isnan(en[Z["He"] - 1])
    assert math.isnan(raw.get_elemental_property(Element("He"), "Electronegativity"))
    assert not np.isnan(magpie_property("Electronegativity", impute_nan=True)).any()


def test_magpie_oxidation_states_match_matminer(magpie):
    from pymatgen.core import Element

    raw, imputed = magpie
    t = element_table()
    for s in SYMBOLS:
        assert t.loc[s, "OxidationStates"] == raw.get_oxidation_states(Element(s)), s
    assert magpie_impute_value("OxidationStates") == imputed.get_oxidation_states(Element("He"))


def test_pymatgen_columns():
    from pymatgen.core import Element

    t = element_table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in SYMBOLS:
            el = Element(s)
            assert _same(t.loc[s, "pauling_en"], float(el.X)), s
            assert t.loc[s, "common_oxidation_states"] == list(el.common_oxidation_states)
            assert t.loc[s, "icsd_oxidation_states"] == list(el.icsd_oxidation_states)
            assert t.loc[s, "oxidation_states"] == list(el.oxidation_states)
            assert dict(t.loc[s, "ionic_radii"]) == {float(k): v for k, v in el.ionic_radii.items()}
    assert t.loc["Fe", "covalent_radius"] == pytest.approx(1.42)


def test_smact_columns():
    import smact
    from smact.screening import _get_icsd24_oxidation_dict

    ox = _get_icsd24_oxidation_dict(False, 3, "low")
    lists = oxidation_state_lists("smact")
    t = element_table()
    for i, s in enumerate(SYMBOLS):
        assert lists[i] == tuple(sorted(ox.get(s, ()))), s
        en, ours = smact.Element(s).pauling_eneg, t.loc[s, "smact_pauling_en"]
        assert (en is None and math.isnan(ours)) or en == ours, s
        assert bool(t.loc[s, "smact_metal"]) == (s in smact.metals)


def test_unknown_property_raises():
    with pytest.raises(MatforgeError, match="Nope"):
        magpie_property("Nope")
    with pytest.raises(MatforgeError, match="unknown oxidation-state set"):
        oxidation_state_lists("nope")


def test_provenance_names_libraries():
    p = provenance()
    assert {"matminer", "pymatgen-core", "smact"} <= set(p["libraries"])
    assert p["files"]["magpie"].endswith("magpie_elementdata")


def test_import_is_light():
    code = "import sys, matforge.chem; print('pymatgen' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_element_set_groups_symbols_and_errors():
    from matforge.chem import DEFAULT_EXCLUDED, element_set
    from matforge.errors import InvalidFormula

    default = element_set(DEFAULT_EXCLUDED)
    assert {"Tc", "Pm", "Po", "Rn", "Th", "U", "Lr", "He", "Xe"} <= set(default)
    assert not {"Bi", "Pb", "Fe", "O"} & set(default)  # Bi is (quasi-)stable
    assert len(default) == 2 + (103 - 83) + 5  # Tc, Pm, Po..Lr, He..Xe (Rn counted once)
    assert element_set("Cd, noble-gases") == ("He", "Ne", "Ar", "Kr", "Cd", "Xe", "Rn")
    assert element_set("none") == () and element_set("") == () and element_set(["Fe"]) == ("Fe",)
    with pytest.raises(InvalidFormula, match="unknown element 'Xx'"):
        element_set("Fe,Xx")


def test_describe_elements_names_whole_groups():
    from matforge.chem import DEFAULT_EXCLUDED, describe_elements, element_set

    text = describe_elements(element_set(DEFAULT_EXCLUDED))
    assert text == "radioactive (Tc, Pm, Po-Lr); noble gases (He, Ne, Ar, Kr, Xe, Rn)"
    assert describe_elements(("Cd", "Hg")) == "Cd, Hg" and describe_elements(()) == "none"


def test_batch_contains_any():
    from matforge.chem import CompositionBatch

    batch = CompositionBatch.from_formulas(["Fe2O3", "UO2", "XeF2", "NaCl", "??"], errors="collect")
    assert batch.contains_any(["U", "Xe"]).tolist() == [False, True, True, False, False]
    assert not batch.contains_any([]).any()
