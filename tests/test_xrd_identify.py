"""Identification results as tables and figures, and the peak-width plausibility check of
``check_pattern`` (a warning, not a refusal)."""

from __future__ import annotations

import numpy as np
import pytest

from matforge.xrd.identify import (
    MAX_FWHM,
    Candidate,
    Identification,
    check_pattern,
    example_pattern,
    identifications_frame,
    peak_fwhm,
)
from matforge.xrd.io import Pattern

GRID = np.round(np.arange(10.0, 80.0 + 1e-9, 0.02), 4)


def _identification(source="a.xy") -> Identification:
    return Identification(
        candidates={
            "crystal_system": [Candidate("cubic", 0.9), Candidate("tetragonal", 0.06)],
            "spacegroup": [Candidate("Fm-3m (225)", 0.4), Candidate("Pm-3m (221)", 0.3)],
            "prototype": [Candidate("AB_cF8_225_a_b", 0.7), Candidate("A_cP1_221_a", 0.2)],
        },
        threshold=0.5,
        source=source,
        prototype_info={"AB_cF8_225_a_b": {"formula": "NaCl", "mineral": "Halite"},
                        "A_cP1_221_a": {"formula": "Po", "mineral": None}},
        warnings=["coarse step"],
    )  # fmt: skip


def test_to_frame_is_one_row_per_head_and_rank():
    df = _identification().to_frame()
    assert list(df.columns) == ["head", "rank", "name", "probability", "uncertain", "formula",
                                "mineral"]  # fmt: skip
    assert df["head"].tolist() == ["crystal_system"] * 2 + ["spacegroup"] * 2 + ["prototype"] * 2
    assert df["rank"].tolist() == [1, 2] * 3
    assert df["name"].iloc[0] == "cubic" and df["probability"].iloc[0] == 0.9
    # below the threshold (0.5): the space group head abstains at rank 1
    assert df["uncertain"].tolist() == [False, True, True, True, False, True]
    assert df["formula"].tolist()[4:] == ["NaCl", "Po"] and df["mineral"].iloc[4] == "Halite"
    assert df["formula"].iloc[:4].isna().all()


def test_plot_is_one_bar_trace_per_head_with_the_threshold():
    import plotly.graph_objects as go

    fig = _identification().plot()
    assert isinstance(fig, go.Figure)
    assert [t.type for t in fig.data] == ["bar"] * 3
    assert list(fig.data[2].y) == ["AB_cF8_225_a_b (NaCl Halite)", "A_cP1_221_a (Po)"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 3 and {s.x0 for s in lines} == {0.5}  # the threshold, each head
    titles = [a.text for a in fig.layout.annotations]
    assert "space group: uncertain" in titles and "crystal system: cubic" in titles


def test_identifications_frame_is_one_row_per_pattern():
    df = identifications_frame([_identification("a.xy"), _identification("b.xy")])
    assert df["source"].tolist() == ["a.xy", "b.xy"]
    assert df["spacegroup"].tolist() == ["uncertain"] * 2  # below the threshold
    assert df["prototype"].iloc[0] == "AB_cF8_225_a_b"
    assert df["crystal_system_probability"].iloc[0] == 0.9
    assert df["warnings"].iloc[0] == "coarse step"


# --- peak widths ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rock_salt_peaks():
    from matforge.xrd.identify import prototype_structure
    from matforge.xrd.simulate import simulate

    return simulate(prototype_structure("AB_cF8_225_a_b")[0], two_theta_range=(10, 80))[0]


def _width_warnings(p) -> list[str]:
    return [w for w in check_pattern(p) if "wide (median FWHM" in w]


@pytest.mark.parametrize("fwhm", [0.3, 1.0, 3.0])
def test_peak_fwhm_measures_a_peak_on_a_background(fwhm):
    y = 50 + 0.5 * GRID + 1000 * np.exp(-4 * np.log(2) * ((GRID - 40) / fwhm) ** 2)
    degrees, steps = peak_fwhm(GRID, y)
    assert degrees == pytest.approx(fwhm, rel=0.03)
    assert steps == pytest.approx(fwhm / 0.02, rel=0.03)


def test_realistic_patterns_have_plausible_widths(rock_salt_peaks):
    from matforge.xrd.simulate import profile

    assert check_pattern(example_pattern()) == []  # the bundled example (40 nm, noise)
    for kw in ({"fwhm": 0.1}, {"fwhm": 0.05}, {"crystallite_size_nm": 5.0}):
        assert _width_warnings(Pattern(GRID, profile(rock_salt_peaks, GRID, **kw))) == [], kw
    # and with the training augmentations: 5 nm crystallites, 100 counts, backgrounds (humps)
    from matforge.xrd.augment import AugmentConfig, augment
    from matforge.xrd.identify import _prototypes
    from matforge.xrd.training_data import symmetry_labels

    _, _, structures = _prototypes()
    picked = [symmetry_labels(s) for s in structures[::12]]  # 24 prototypes
    n = len(picked)
    for params in ({}, {"size_nm": np.full(n, 5.0)}, {"counts": np.full(n, 100.0)}):
        x, _ = augment([c for c, _, _ in picked], GRID, 0, AugmentConfig(),
                       crystal_systems=[s for _, s, _ in picked],
                       orbits=[o for _, _, o in picked], params=params)  # fmt: skip
        assert [w for row in x for w in _width_warnings(Pattern(GRID, row))] == [], params


def test_broad_humps_warn(rock_salt_peaks):
    from matforge.xrd.simulate import profile

    warnings = _width_warnings(Pattern(GRID, profile(rock_salt_peaks, GRID, fwhm=8.0)))
    assert len(warnings) == 1 and "broader than crystallites of a few nm" in warnings[0]
    measured = float(warnings[0].split("are ")[1].split("°")[0])
    assert measured > MAX_FWHM
    # widths compare in Cu Kα1 2θ: 4° peaks at Mo Kα are over 8° at Cu Kα1
    from matforge.xrd.identify import prototype_structure
    from matforge.xrd.simulate import simulate

    mo_peaks = simulate(prototype_structure("AB_cF8_225_a_b")[0], wavelength="MoKa1",
                        two_theta_range=(5, 40))[0]  # fmt: skip
    mo_grid = np.round(np.arange(5.0, 40.0, 0.01), 4)
    at_mo = Pattern(mo_grid, profile(mo_peaks, mo_grid, fwhm=4.0), wavelength=mo_peaks.wavelength)
    assert len(_width_warnings(at_mo)) == 1
    sharp = Pattern(mo_grid, profile(mo_peaks, mo_grid, fwhm=0.05), wavelength=mo_peaks.wavelength)
    assert _width_warnings(sharp) == []


def test_sticks_and_too_coarse_steps_warn(rock_salt_peaks):
    from matforge.xrd.simulate import profile

    sticks = np.zeros_like(GRID)  # a peak list drawn on a fine grid: one point per peak
    sticks[np.searchsorted(GRID, rock_salt_peaks.two_theta)] = rock_salt_peaks.intensity
    warnings = _width_warnings(Pattern(GRID, sticks))
    assert len(warnings) == 1 and "single-point spikes" in warnings[0]
    assert "1 steps of the scan" in warnings[0]
    coarse = np.round(np.arange(10.0, 80.0, 0.25), 4)  # 0.05° peaks sampled every 0.25°
    warnings = _width_warnings(Pattern(coarse, profile(rock_salt_peaks, coarse, fwhm=0.05)))
    assert len(warnings) == 1 and "single-point spikes" in warnings[0]


# --- one coherent answer: indexing and the network --------------------------------------------


def _prototype_scan(label: str, seed: int) -> Pattern:
    """A Cu tube scan (Kα1 + Kα2, zero shift 0.05°, background, Poisson noise) of the bundled
    example compound of AFLOW prototype ``label``."""
    import dataclasses

    from matforge.xrd.identify import prototype_structure
    from matforge.xrd.io import CU_KA1
    from matforge.xrd.peaks import KALPHA
    from matforge.xrd.simulate import profile, simulate

    peaks = simulate(prototype_structure(label)[0], wavelength=CU_KA1, two_theta_range=(5, 95))[0]
    s = np.sin(np.radians(peaks.two_theta) / 2) * KALPHA["Cu"][1] / KALPHA["Cu"][0]
    ka2 = dataclasses.replace(peaks, two_theta=2 * np.degrees(np.arcsin(np.clip(s, 0, 1))),
                              intensity=0.5 * peaks.intensity)  # fmt: skip
    grid = np.round(np.arange(10.0, 90.0 + 1e-9, 0.02), 4)
    y = profile(peaks, grid - 0.05, fwhm=0.1) + profile(ka2, grid - 0.05, fwhm=0.1)
    y = y / y.max() * 3000 + 100 + 60 * np.exp(-(grid - 10) / 20)
    y = np.random.default_rng(seed).poisson(y).astype(float)
    return Pattern(grid, y, wavelength=CU_KA1, source=f"{label}.xy")


@pytest.fixture(scope="module")
def shipped_model():
    pytest.importorskip("torch")
    from matforge.xrd.cnn import XRDClassifier, bundled_dir

    if not (bundled_dir() / "cnn_v1.pt").exists():
        pytest.skip("the shipped XRD weights are not installed")
    return XRDClassifier.load()


def test_the_heads_never_contradict_each_other(shipped_model):
    """Over many patterns of every crystal system: the crystal-system probabilities are the
    sums of the space-group probabilities, and the best space group and the best prototype
    lie in the best crystal system — with indexing and without."""
    from matforge.datasets import load_dataset
    from matforge.xrd.augment import CRYSTAL_SYSTEMS, crystal_system_index
    from matforge.xrd.identify import identify

    labels = load_dataset("aflow_prototypes")["aflow_label"].drop_duplicates().tolist()
    picked = labels[:: max(1, len(labels) // 16)][:16]
    patterns = [_prototype_scan(label, seed) for seed, label in enumerate(picked)]
    names = shipped_model.classes["crystal_system"]
    seen_systems = set()
    for index in (False, True):
        results = identify(patterns, model=shipped_model, top=230, index=index, threshold=0.0)
        for r in results:
            sg = {c.name: c.probability for c in r.candidates["spacegroup"]}
            assert sum(sg.values()) == pytest.approx(1.0, abs=1e-6)
            numbers = np.array([int(n.rsplit("(", 1)[1][:-1]) for n in sg])
            member = crystal_system_index(numbers)
            probs = np.array(list(sg.values()))
            for c in r.candidates["crystal_system"]:
                total = probs[member == CRYSTAL_SYSTEMS.index(c.name)].sum()
                assert c.probability == pytest.approx(total, abs=1e-6)
            best = r.best("crystal_system")
            seen_systems.add(best)
            best_sg = int(r.best("spacegroup").rsplit("(", 1)[1][:-1])
            assert CRYSTAL_SYSTEMS[int(crystal_system_index([best_sg])[0])] == best
            proto_sg = int(r.best("prototype").split("_")[2])
            assert CRYSTAL_SYSTEMS[int(crystal_system_index([proto_sg])[0])] == best
            assert (r.indexing is not None) == index
    assert len(seen_systems) >= 4 and set(seen_systems) <= set(names)


def test_a_convincing_cell_settles_the_crystal_system(shipped_model):
    from matforge.xrd.identify import coherent_proba, identify

    pattern = _prototype_scan("AB_cF8_225_a_b", 0)  # rock salt
    result = identify(pattern, model=shipped_model, top=5)
    assert result.indexing.system == "cubic" and result.indexing.best.convincing
    assert result.candidates["crystal_system"][0].name == "cubic"
    assert result.candidates["crystal_system"][0].probability > 0.99
    assert result.best("spacegroup") == "Fm-3m (225)"
    d = result.to_dict()
    assert d["indexing"]["system"] == "cubic" and d["indexing"]["best"]["convincing"]
    row = result.summary_row()
    assert row["indexed_system"] == "cubic" and row["m20"] > 20
    # a network that believes tetragonal is overruled by the cubic cell
    classes = shipped_model.classes
    sg = np.zeros((1, 230))
    sg[0, 139 - 1], sg[0, 225 - 1] = 0.95, 0.05  # I4/mmm, Fm-3m
    proba = {"spacegroup": sg, "crystal_system": np.full((1, 7), 1 / 7)}
    alone = coherent_proba(proba, [None], classes)
    assert classes["crystal_system"][int(np.argmax(alone["crystal_system"][0]))] == "tetragonal"
    assert alone["crystal_system"][0].sum() == pytest.approx(1.0)
    both = coherent_proba(proba, [result.indexing], classes)
    assert classes["crystal_system"][int(np.argmax(both["crystal_system"][0]))] == "cubic"
    assert both["crystal_system"][0].max() > 0.99
    # where the network gives the family nothing, the extinction classes rank the groups
    sg_none = np.zeros((1, 230))
    sg_none[0, 139 - 1] = 1.0
    only = coherent_proba({"spacegroup": sg_none}, [result.indexing], classes)
    top = int(np.argmax(only["spacegroup"][0])) + 1
    assert top in result.indexing.classes[0].space_groups


def test_identify_without_indexing_leaves_the_network_alone(shipped_model):
    from matforge.xrd.identify import identify

    pattern = _prototype_scan("AB_cF8_225_a_b", 1)
    plain = identify(pattern, model=shipped_model, top=230, index=False)
    assert plain.indexing is None and plain.to_dict()["indexing"] is None
    assert "indexed_system" not in plain.summary_row()
    proba = shipped_model.predict_proba([pattern])
    got = {c.name: c.probability for c in plain.candidates["spacegroup"]}
    names = shipped_model.classes["spacegroup"]
    assert np.allclose([got[n] for n in names], proba["spacegroup"][0], atol=1e-6)


def test_indexing_a_batch_in_processes_gives_the_same_cells():
    from matforge.xrd.identify import index_patterns

    patterns = [_prototype_scan("AB_cF8_225_a_b", 2), _prototype_scan("AB_cF8_225_a_b", 3)]
    one = index_patterns(patterns, jobs=1)
    two = index_patterns(patterns, jobs=2)
    assert [r.best.cell for r in one] == [r.best.cell for r in two]
    assert all(r.system == "cubic" for r in two)
    # a scan the peak search refuses is reported, not raised
    bad = Pattern(np.linspace(10, 80, 120), np.ones(120), source="flat.xy")
    assert "flat.xy: no signal" in index_patterns([bad])[0]


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_indexing_workers_run_single_threaded_blas():
    """Two workers on two cores: BLAS threads in each only contend (half the throughput)."""
    from concurrent.futures import ProcessPoolExecutor

    from threadpoolctl import threadpool_limits

    from matforge.xrd.identify import _one_blas_thread

    with threadpool_limits(2, user_api="blas"):  # what the worker would inherit
        with ProcessPoolExecutor(1, initializer=_one_blas_thread) as pool:
            threads = pool.submit(_blas_threads).result()
    assert threads and set(threads) == {1}
