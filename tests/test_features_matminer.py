"""matforge.features reproduces matminer 0.10 on the bundled Matbench compositions.

matminer is the reference, computed here (it featurizes ~500 compositions/s). The default suite
compares a seeded sample of 4,000 of the distinct compositions of the seven small Matbench tasks
(~16k; all of them took 52 s of the suite); the ``slow`` suite compares all of those and every
distinct composition of all 13 tasks (~126k). Agreement is measured as
``|ours - matminer| / max(|matminer|, 1e-12)`` with NaN required exactly where matminer has NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("matminer")

from matforge.datasets import list_datasets, load_dataset  # noqa: E402
from matforge.features import (  # noqa: E402
    ElementFraction,
    IonProperty,
    MagpieFeaturizer,
    Stoichiometry,
    ValenceOrbital,
)

SMALL_TASKS = (
    "matbench_expt_gap",
    "matbench_steels",
    "matbench_glass",
    "matbench_expt_is_metal",
    "matbench_jdft2d",
    "matbench_phonons",
    "matbench_dielectric",
)
TOLERANCE = 1e-8


def distinct_formulas(tasks) -> list[str]:
    formulas: dict[str, None] = {}
    for task in tasks:
        formulas.update(dict.fromkeys(load_dataset(task)["formula"]))
    return list(formulas)


def rel_diff(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Relative difference per cell; inf where exactly one side is NaN."""
    with np.errstate(invalid="ignore"):
        d = np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-12)
    d[np.isnan(ours) & np.isnan(ref)] = 0.0
    d[np.isnan(ours) != np.isnan(ref)] = np.inf
    return d


def matminer_reference(formulas: list[str]) -> dict[str, np.ndarray]:
    """matminer's features for each formula (NaN row where matminer raises)."""
    from matminer.featurizers.composition import ElementFraction as MMElementFraction
    from matminer.featurizers.composition import ElementProperty
    from matminer.featurizers.composition import IonProperty as MMIonProperty
    from matminer.featurizers.composition import Stoichiometry as MMStoichiometry
    from matminer.featurizers.composition import ValenceOrbital as MMValenceOrbital
    from pymatgen.core import Composition

    featurizers = {
        "magpie": ElementProperty.from_preset("magpie"),
        "stoichiometry": MMStoichiometry(),
        "valence": MMValenceOrbital(),
        "fraction": MMElementFraction(),
        # fast=True skips pymatgen's charge-balance search, which is checked separately
        # (test_compound_possible_matches_pymatgen); the ionic characters are the same code
        "ionic": MMIonProperty(fast=True),
    }
    out = {name: [] for name in featurizers}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for formula in formulas:
            comp = Composition(formula)
            for name, f in featurizers.items():
                out[name].append(f.featurize(comp))
    return {name: np.array(rows, dtype=float) for name, rows in out.items()}


def ours(formulas: list[str]) -> dict[str, np.ndarray]:
    return {
        "magpie": MagpieFeaturizer().featurize_many(formulas),
        "stoichiometry": Stoichiometry().featurize_many(formulas),
        "valence": ValenceOrbital().featurize_many(formulas),
        "fraction": ElementFraction().featurize_many(formulas),
        "ionic": IonProperty().featurize_many(formulas),
    }


def compare(formulas: list[str]) -> dict[str, float]:
    ref = matminer_reference(formulas)
    got = ours(formulas)
    # compound possible (column 0) is compared with pymatgen's full search elsewhere
    ref["ionic"], got["ionic"] = ref["ionic"][:, 1:], got["ionic"][:, 1:]
    worst = {}
    for name in ref:
        assert got[name].shape == ref[name].shape, name
        d = rel_diff(got[name], ref[name])
        bad = np.argwhere(d > TOLERANCE)
        if len(bad):
            r, c = bad[0]
            pytest.fail(
                f"{name}: {len(bad)} cells differ, first {formulas[r]!r} column {c}: "
                f"ours {got[name][r, c]!r} matminer {ref[name][r, c]!r}"
            )
        worst[name] = float(d.max())
    return worst


def _small_tasks_match_matminer(formulas: list[str]) -> None:
    worst = compare(formulas)
    # Magpie, valence and fractions are bit-identical (same summation order as matminer);
    # Stoichiometry's powers differ by <= 1 ulp (numpy's SIMD pow vs libm's)
    assert worst["magpie"] == 0.0
    assert worst["valence"] == 0.0
    assert worst["fraction"] == 0.0
    assert worst["stoichiometry"] < 1e-15


def test_small_matbench_tasks_match_matminer_on_a_sample():
    formulas = distinct_formulas(SMALL_TASKS)
    assert len(formulas) > 15_000
    rows = np.random.default_rng(0).choice(len(formulas), 4000, replace=False)
    _small_tasks_match_matminer([formulas[i] for i in sorted(rows)])


@pytest.mark.slow
def test_small_matbench_tasks_match_matminer():
    formulas = distinct_formulas(SMALL_TASKS)
    assert len(formulas) > 15_000
    _small_tasks_match_matminer(formulas)


@pytest.mark.slow
def test_all_matbench_tasks_match_matminer():
    tasks = [d.name for d in list_datasets() if d.name.startswith("matbench_")]
    assert len(tasks) == 13
    compare(distinct_formulas(tasks))


def pymatgen_compound_possible(formulas: list[str]) -> np.ndarray:
    """matminer's ``compound possible`` with pymatgen's full oxidation-state search (NaN where
    matminer raises: pymatgen needs integer amounts)."""
    from matminer.featurizers.composition import IonProperty as MMIonProperty
    from pymatgen.core import Composition

    f = MMIonProperty()
    out = []
    for formula in formulas:
        try:
            out.append(float(f.featurize(Composition(formula))[0]))
        except ValueError as exc:
            assert "integer" in str(exc)
            out.append(np.nan)
    return np.array(out)


def small_compositions(max_atoms: int, n: int, seed: int = 0) -> list[str]:
    # pymatgen enumerates every oxidation-state combination: seconds per composition beyond
    # ~20 atoms, so the reference check is limited to small formula units
    from pymatgen.core import Composition

    pool = [f for f in distinct_formulas(SMALL_TASKS) if Composition(f).num_atoms <= max_atoms]
    rng = np.random.default_rng(seed)
    return [pool[i] for i in sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]


def test_compound_possible_matches_pymatgen():
    formulas = small_compositions(max_atoms=10, n=300)
    ref = pymatgen_compound_possible(formulas)
    got = IonProperty().featurize_many(formulas)[:, 0]
    np.testing.assert_array_equal(got, ref)
    assert 0 < np.nansum(ref) < np.isfinite(ref).sum()  # both answers occur
    assert np.isnan(ref).any()  # and non-integer compositions


@pytest.mark.slow
def test_compound_possible_matches_pymatgen_larger():
    formulas = small_compositions(max_atoms=24, n=2000, seed=1)
    np.testing.assert_array_equal(
        IonProperty().featurize_many(formulas)[:, 0], pymatgen_compound_possible(formulas)
    )
