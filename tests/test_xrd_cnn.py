"""XRD structure classifier: augmentations, training data, the CNN, identification."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from matforge.xrd import augment as aug  # noqa: E402
from matforge.xrd.cnn import HEADS, XRDClassifier, bundled_dir, fit_temperature, train_classifier  # noqa: E402
from matforge.xrd.identify import UNCERTAIN, example_pattern, identify, match_prototype  # noqa: E402
from matforge.xrd.io import Pattern, read_pattern  # noqa: E402
from matforge.xrd.simulate import profile, simulate  # noqa: E402
from matforge.xrd.training_data import (  # noqa: E402
    generate_shards,
    labels_for,
    load_shards,
    make_grid,
    split_by_chemsys,
    split_by_prototype,
    symmetry_labels,
)

GRID = make_grid()


@pytest.fixture(scope="module")
def rock_salt():
    from matforge.xrd.identify import prototype_structure

    structure, _ = prototype_structure("AB_cF8_225_a_b")
    return symmetry_labels(structure)


@pytest.fixture(scope="module")
def small_set(xrd_small_set):
    return xrd_small_set


# ---------------------------------------------------------------------------------------
# augmentations
# ---------------------------------------------------------------------------------------


def test_augment_is_reproducible_from_its_seed(rock_salt):
    conv, _, orbits = rock_salt
    kw = {"crystal_systems": ["cubic"] * 4, "orbits": [orbits] * 4}
    a, pa = aug.augment([conv] * 4, GRID, 11, **kw)
    b, _ = aug.augment([conv] * 4, GRID, 11, **kw)
    c, _ = aug.augment([conv] * 4, GRID, 12, **kw)
    assert a.shape == (4, GRID.size) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(a.max(axis=1), 1.0)
    assert set(pa) >= {
        "vacancy",
        "displacement",
        "size_nm",
        "march_r",
        "zero_shift",
        "counts",
        "impurity",
    }


def test_render_matches_simulate_profile(rock_salt):
    peaks = simulate(rock_salt[0], wavelength=aug.CU_KA1, two_theta_range=(5, 85))
    ours = aug.render(peaks, GRID, fwhm=[0.1], eta=[0.5])[0]
    ref = profile(peaks[0], GRID, fwhm=0.1, eta=0.5)
    np.testing.assert_allclose(ours, ref / ref.max(), atol=2e-3)
    # Scherrer broadening: 10 nm crystallites, evaluated on the coarse path
    ours = aug.render(peaks, GRID, fwhm=[0.0], eta=[0.5], size_nm=[10.0])[0]
    ref = profile(peaks[0], GRID, fwhm=0.0, eta=0.5, crystallite_size_nm=10.0)
    np.testing.assert_allclose(ours, ref / ref.max(), atol=1.5e-2)


def test_zero_shift_and_kalpha2_move_peaks(rock_salt):
    peaks = simulate(rock_salt[0], wavelength=aug.CU_KA1, two_theta_range=(5, 85))
    base = aug.render(peaks, GRID, fwhm=[0.05], eta=[0.5])[0]
    shifted = aug.render(peaks, GRID, fwhm=[0.05], eta=[0.5], zero_shift=[0.2])[0]
    assert GRID[np.argmax(shifted)] - GRID[np.argmax(base)] == pytest.approx(0.2, abs=0.021)
    doublet = aug.render(peaks, GRID, fwhm=[0.03], eta=[0.5], kalpha2=[1])[0]
    assert doublet.sum() == pytest.approx(base.sum() * 1.0, rel=0.6)  # normalised to max 1
    # at high angle the Kα2 peak is resolved: more local maxima than without
    hi = GRID > 70
    n_max = lambda y: int(((y[1:-1] > y[:-2]) & (y[1:-1] > y[2:]) & (y[1:-1] > 0.01)).sum())  # noqa: E731
    assert n_max(doublet[hi]) > n_max(base[hi])


def test_vacancies_reduce_occupancy_on_orbits_and_keep_symmetry(rock_salt):
    conv, sg, orbits = rock_salt
    s, realised = aug.perturb(conv, vacancy=0.1, orbits=orbits, rng=0)
    assert realised == pytest.approx(0.1, abs=1e-9)
    occu = np.array([sum(site.species.values()) for site in s])
    assert occu.min() < 1 and (occu > 0).all()
    # one whole orbit (all Na or all Cl) carries the vacancies: symmetry is kept
    assert len(np.unique(occu)) <= 2
    assert symmetry_labels(s)[1] == sg == 225


def test_strain_respects_the_crystal_system(rock_salt):
    conv = rock_salt[0]
    s, _ = aug.perturb(conv, strain=(0.03, -0.02, 0.01), crystal_system="cubic")
    a, b, c = s.lattice.abc
    assert a == pytest.approx(b) == pytest.approx(c)
    assert a == pytest.approx(conv.lattice.a * 1.03)
    hexa = aug.perturb(conv, strain=(0.03, -0.02, 0.01), crystal_system="tetragonal")[0]
    assert hexa.lattice.a == pytest.approx(hexa.lattice.b) and hexa.lattice.c != pytest.approx(
        hexa.lattice.a
    )


def test_displacements_have_the_requested_rms(rock_salt):
    conv = rock_salt[0].make_supercell(3, in_place=False)
    s, _ = aug.perturb(conv, displacement=0.1, rng=1)
    d = s.lattice.get_cartesian_coords(s.frac_coords - conv.frac_coords)
    assert np.sqrt((d**2).sum(axis=1).mean()) == pytest.approx(0.1, rel=0.2)


def test_march_dollase_favours_the_preferred_planes(rock_salt):
    conv = rock_salt[0]
    peaks = simulate(conv, wavelength=aug.CU_KA1, two_theta_range=(20, 80))
    recip = conv.lattice.reciprocal_lattice_crystallographic.matrix[None]
    ones = aug.march_dollase(peaks, recip, [[1, 0, 0]], [1.0])[0]
    np.testing.assert_array_equal(ones, 1.0)
    plates = aug.march_dollase(peaks, recip, [[1, 0, 0]], [0.7])[0]
    fam = [f[0]["hkl"] for f in peaks[0].hkls]
    i200, i220 = fam.index((2, 0, 0)), fam.index((2, 2, 0))
    # {200}: a third of the reflections lie along [100] (α = 0, P = r^-3); {220}: none
    assert plates[i200] > plates[i220]


def test_noise_background_and_crop():
    rng = np.random.default_rng(0)
    x = np.zeros((3, GRID.size), dtype=np.float32)
    x[:, 500] = 1
    noisy = aug.poisson_noise(x + 0.1, np.array([0, 100, 1e5]), rng)
    np.testing.assert_array_equal(noisy[0], x[0] + 0.1)
    assert np.std(noisy[1, :400]) > np.std(noisy[2, :400]) > 0
    bg = aug.background(GRID, np.array([0.0, 0.2]), rng)
    assert bg[0].max() == 0 and bg[1].max() == pytest.approx(0.2, rel=1e-5) and bg.min() >= 0
    cropped = aug.crop_range(
        np.ones((1, GRID.size), np.float32), GRID, np.array([5.0]), np.array([0.0])
    )
    assert cropped[0, GRID < 15 - 1e-6].max() == 0 and cropped[0, GRID > 15].min() == 1


# ---------------------------------------------------------------------------------------
# structures and splits
# ---------------------------------------------------------------------------------------


def test_structures_are_labelled_and_splits_are_disjoint(small_set):
    df = small_set.to_frame()
    assert set(df["source"]) == {"aflow", "substituted", "pyxtal"}
    assert df.loc[df.source == "pyxtal", "prototype"].isna().all()
    rs = df[df.prototype == "AB_cF8_225_a_b"]
    assert (rs["spacegroup"] == 225).all() and (rs["crystal_system"] == "cubic").all()
    assert len(set(rs["chemsys"])) == len(rs) >= 2  # substituted variants: new chemistries
    chem = split_by_chemsys(small_set, test=0.3, val=0.2, seed=0)
    for part in ("train", "val", "test"):
        assert (chem == part).any()
    systems = {p: set(df.chemsys[chem == p]) for p in ("train", "val", "test")}
    assert not systems["train"] & systems["test"] and not systems["train"] & systems["val"]
    proto = split_by_prototype(small_set, test=0.3, val=0.2, seed=0)
    labels = {p: set(df.prototype[(proto == p) & df.prototype.notna()]) for p in ("train", "test")}
    assert labels["test"] and not labels["train"] & labels["test"]


@pytest.mark.parametrize("spacegroup", [2, 15, 62, 141, 167, 194, 227])
def test_random_crystals_have_the_asked_symmetry(spacegroup):
    from matforge.xrd.training_data import random_crystal

    structure, found, orbits = random_crystal(spacegroup, np.random.default_rng(spacegroup))
    assert found == spacegroup == symmetry_labels(structure)[1]
    assert 1 <= len(structure) <= 96 and len(orbits) == len(structure)
    again = random_crystal(spacegroup, np.random.default_rng(spacegroup))[0]
    np.testing.assert_allclose(again.frac_coords, structure.frac_coords)


def test_shards_stream_reproducibly(small_set, tmp_path):
    kw = {"grid": GRID, "n_per_structure": 2, "seed": 5, "shard_size": 8, "batch_size": 8,
          "progress": False}  # fmt: skip
    a = generate_shards(small_set, tmp_path / "a", **kw)
    b = generate_shards(small_set, tmp_path / "b", **kw)
    assert len(list(a.glob("shard_*.npz"))) > 1
    da, db = load_shards(a), load_shards(b)
    np.testing.assert_array_equal(da["x"], db["x"])
    assert len(da["x"]) == 2 * len(small_set)
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["complete"] and manifest["n_patterns"] == 2 * len(small_set)


# ---------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------


def test_small_model_trains_end_to_end(small_set, tiny_xrd_arch, tmp_path):
    from matforge.xrd.training_data import classifier_classes as _classes
    from matforge.xrd.training_data import grid_spec as _grid_spec

    d = load_shards(generate_shards(small_set, tmp_path / "s", grid=GRID, n_per_structure=6,
                                    seed=1, progress=False))  # fmt: skip
    y = labels_for(small_set, d["structure"].astype(int))
    arch = tiny_xrd_arch
    clf = train_classifier(
        d["x"], y, d["x"][::3], {h: v[::3] for h, v in y.items()}, classes=_classes(),
        grid=_grid_spec(GRID), wavelength=aug.CU_KA1, epochs=3, batch_size=16, lr=3e-3,
        arch=arch, progress=False, seed=0, threads=1,
    )  # fmt: skip
    hist = clf.meta["training"]["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert all(t > 0 for t in clf.meta["temperatures"].values())
    clf.save(tmp_path / "model", name="tiny")
    back = XRDClassifier.load(tmp_path / "model" / "tiny")
    p1, p2 = clf.predict_proba(d["x"][:4]), back.predict_proba(d["x"][:4])
    for h in HEADS:
        np.testing.assert_allclose(p1[h], p2[h], atol=1e-5)
        np.testing.assert_allclose(p1[h].sum(axis=1), 1, atol=1e-5)


def test_training_rounds_are_fresh_draws_of_the_same_patterns(small_set, tmp_path):
    from matforge.xrd.augment import AugmentConfig
    from matforge.xrd.training_data import _generate_rounds, round_seed

    def work(folder):
        return [
            {"out_dir": tmp_path / folder / f"r{r}", "grid": GRID, "n_per_structure": 2,
             "seed": round_seed(3, r), "config": AugmentConfig.training(),
             "description": f"round {r}"}
            for r in range(2)
        ]  # fmt: skip

    _generate_rounds(small_set, work("serial"), jobs=1, progress=False, log=None)
    _generate_rounds(small_set, work("parallel"), jobs=2, progress=False, log=None)
    assert round_seed(3, 0) == 3 and round_seed(3, 1) != round_seed(3, 2)
    serial = [load_shards(tmp_path / "serial" / f"r{r}") for r in range(2)]
    for r in range(2):  # worker processes give the same patterns as this one
        np.testing.assert_array_equal(
            serial[r]["x"], load_shards(tmp_path / "parallel" / f"r{r}")["x"]
        )
    np.testing.assert_array_equal(serial[0]["structure"], serial[1]["structure"])
    assert not np.array_equal(serial[0]["x"], serial[1]["x"])


def test_training_takes_a_fresh_round_every_epoch(small_set, tiny_xrd_arch, tmp_path):
    from matforge.xrd.training_data import classifier_classes as _classes
    from matforge.xrd.training_data import grid_spec as _grid_spec

    draws = [
        load_shards(generate_shards(small_set, tmp_path / f"s{seed}", grid=GRID,
                                    n_per_structure=3, seed=seed, progress=False))
        for seed in (1, 2)
    ]  # fmt: skip
    y = labels_for(small_set, draws[0]["structure"].astype(int))
    a, b = draws[0]["x"], draws[1]["x"]

    def fit(x_train):
        return train_classifier(
            x_train, y, a[::3], {h: v[::3] for h, v in y.items()}, classes=_classes(),
            grid=_grid_spec(GRID), wavelength=aug.CU_KA1, epochs=2, batch_size=16,
            arch=tiny_xrd_arch, progress=False, seed=0, threads=1,
        )  # fmt: skip

    one, same, fresh = fit(a), fit([a, a]), fit([a, b])
    assert fresh.meta["training"]["rounds"] == 2 and one.meta["training"]["rounds"] == 1
    loss = {k: [e["train_loss"] for e in m.meta["training"]["history"]]
            for k, m in (("one", one), ("same", same), ("fresh", fresh))}  # fmt: skip
    assert loss["one"] == loss["same"]  # the same draw twice is one draw
    assert loss["fresh"][0] == loss["one"][0]  # epoch 1: the first draw
    assert loss["fresh"][1] != loss["one"][1]  # epoch 2: the second draw
    with pytest.raises(ValueError, match="equally shaped"):
        fit([a, b[:-1]])


def test_fit_temperature_recovers_the_scale():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(4000, 10)) * 2
    labels = np.array([rng.choice(10, p=np.exp(r) / np.exp(r).sum()) for r in true])
    assert fit_temperature(true * 3, labels) == pytest.approx(3, rel=0.1)
    assert fit_temperature(true, -np.ones(4000, dtype=int)) == 1.0


# ---------------------------------------------------------------------------------------
# the shipped model
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    return XRDClassifier.load()


def test_shipped_weights_match_their_metadata(shipped):
    pt, js = bundled_dir() / "cnn_v1.pt", bundled_dir() / "cnn_v1.json"
    meta = json.loads(js.read_text())
    assert hashlib.sha256(pt.read_bytes()).hexdigest() == meta["weights_sha256"]
    assert pt.stat().st_size <= 20e6
    assert meta["grid"] == [10.0, 80.0, 0.04] and shipped.grid.size == 1751
    n = {h: shipped.net.heads[h].out_features for h in HEADS}
    assert n == {h: len(meta["classes"][h]) for h in HEADS}
    assert n["crystal_system"] == 7 and n["spacegroup"] == 230
    assert sum(p.numel() for p in shipped.net.parameters()) == meta["n_parameters"]
    assert meta["training"]["data"]["split"] == "chemsys"


def test_identify_bundled_example_is_rock_salt(shipped):
    path = bundled_dir() / "example_pattern.xy"
    pattern = read_pattern(path)
    # the bundled file is what example_pattern() makes
    np.testing.assert_allclose(pattern.intensity, example_pattern().intensity, atol=2)
    result = identify(path, model=shipped, top=5, threshold=0.5)
    assert result.best("crystal_system") == "cubic"
    assert "Fm-3m (225)" in [c.name for c in result.candidates["spacegroup"]]
    probs = [c.probability for c in result.candidates["spacegroup"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_identify_simulated_rock_salt_and_wurtzite(shipped):
    """Patterns simulated from prototypes (no augmentation) at another wavelength."""
    from matforge.xrd.identify import prototype_structure

    out = {}
    for label in ("AB_cF8_225_a_b", "AB_hP4_186_b_b"):
        s, _ = prototype_structure(label)
        peaks = simulate(s, wavelength="MoKa", two_theta_range=(4, 40))[0]
        grid = np.arange(4, 40, 0.01)
        out[label] = identify(Pattern(grid, profile(peaks, grid, fwhm=0.05), wavelength=peaks.wavelength),
                              model=shipped)  # fmt: skip
    assert out["AB_cF8_225_a_b"].candidates["crystal_system"][0].name == "cubic"
    assert out["AB_hP4_186_b_b"].candidates["crystal_system"][0].name == "hexagonal"


def test_abstention_follows_the_threshold(shipped):
    pattern = example_pattern()
    never = identify(pattern, model=shipped, threshold=0.0)
    always = identify(pattern, model=shipped, threshold=1.0)
    for h in HEADS:
        assert never.best(h) != UNCERTAIN
        assert always.best(h) == UNCERTAIN and always.is_uncertain(h)
    with pytest.raises(ValueError, match="threshold"):
        identify(pattern, model=shipped, threshold=1.5)


def test_match_prototype_recovers_the_lattice_scale():
    from matforge.xrd.identify import prototype_structure

    s, _ = prototype_structure("AB_cF8_225_a_b")
    s = s.copy()
    s.scale_lattice(s.volume * 1.05**3)
    peaks = simulate(s, wavelength=aug.CU_KA1, two_theta_range=(10, 80))[0]
    grid = np.arange(10, 80, 0.02)
    m = match_prototype(Pattern(grid, profile(peaks, grid, fwhm=0.1)), "AB_cF8_225_a_b")
    assert m.scale == pytest.approx(1.05, abs=0.002) and m.score > 0.95


def test_input_channels_lift_weak_peaks():
    from matforge.xrd.cnn import prepare_input

    x = np.zeros((1, 50), dtype=np.float32)
    x[0, 10], x[0, 30] = 1000.0, 20.0  # a 2 % reflection
    two, three = prepare_input(x, 2), prepare_input(x, 3)
    assert two.shape == (1, 2, 50) and three.shape == (1, 3, 50)
    np.testing.assert_allclose(three[:, :2], two)
    np.testing.assert_allclose(three[0, :, 10], 1.0)
    # the weak peak is 2 % of the strongest in I, 14 % in √I, 43 % in the log channel
    assert three[0, 0, 30] == pytest.approx(0.02, rel=1e-5)
    assert three[0, 2, 30] == pytest.approx(np.log10(0.02) / 3 + 1, rel=1e-5)
    assert three[0, 2].min() == pytest.approx(0.0, abs=1e-6) and three.max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="channels"):
        prepare_input(x, 4)
