"""Set E of the XRD benchmark: real published structures (issue #17 §5 E)."""

from __future__ import annotations

import pytest

from matforge.xrd.real_set import evaluate_real_structures, real_structures


def test_set_e_is_at_least_40_real_structures_with_their_published_space_groups():
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    rows = real_structures()
    assert len(rows) >= 40
    assert len({r["name"] for r in rows}) == len(rows)
    systems = {r["crystal_system"] for r in rows}
    assert {"cubic", "hexagonal", "tetragonal", "orthorhombic", "monoclinic"} <= systems
    for r in rows:
        found = SpacegroupAnalyzer(r["structure"], symprec=0.1).get_space_group_number()
        assert found == r["spacegroup"], r["name"]
        cite = r["citation"]
        assert cite["journal"] and cite["year"], r["name"]  # every row names its publication
    by_name = {r["name"]: r for r in rows}
    assert by_name["Cu"]["spacegroup"] == 225 and by_name["Cu"]["prototype"] == "A_cF4_225_a"
    assert by_name["anatase"]["prototype"] == "A2B_tI12_141_e_a"
    assert by_name["vo2-m1"]["spacegroup"] == 14


def test_every_head_is_scored_on_simulated_patterns(tiny_xrd_model):
    names = ["Cu", "Mg", "rutile", "GaAs", "Ga", "vo2-m1"]
    e = evaluate_real_structures(tiny_xrd_model, patterns_per_structure=2, names=names)
    assert e["n_structures"] == 6 and e["n_patterns"] == 12
    assert e["n_with_prototype"] == 5  # VO2 M1 is no bundled prototype
    for key in ("network_alone", "network_plus_indexing"):
        m = e[key]
        for head in ("crystal_system_top1", "spacegroup_top1", "spacegroup_class_top1",
                     "prototype_top1"):  # fmt: skip
            assert 0.0 <= m[head] <= 1.0
        assert m["spacegroup_top1"] <= m["spacegroup_class_top1"]  # a group lies in its class
        assert set(m["per_system"]) == {"cubic", "hexagonal", "tetragonal", "orthorhombic",
                                        "monoclinic"}  # fmt: skip
    assert [p["name"] for p in e["per_structure"]] == [
        r["name"] for r in real_structures() if r["name"] in names
    ]
    with pytest.raises(ValueError, match="not in set E: Xx"):
        evaluate_real_structures(tiny_xrd_model, names=["Cu", "Xx"])
