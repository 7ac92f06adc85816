"""matforge.generate.gan: the MatGAN-style composition GAN (tiny models, a few seconds each)."""

from __future__ import annotations

import numpy as np
import pytest

from matforge.generate.corpus import load_corpus, valid_mask
from matforge.generate.tokens import GenerateError, integer_counts

torch = pytest.importorskip("torch")

from matforge.generate.gan import FormulaGAN  # noqa: E402
from matforge.generate.rnn import Condition  # noqa: E402

ELEMENTS = {"Li", "Na", "K", "Mg", "Ca", "Ba", "Fe", "Mn", "Al", "P", "S", "O", "F", "Cl", "N"}
TINY = {"hidden": 64, "noise": 16, "max_count": 6}
FIT = {"epochs": 15, "batch_size": 64, "lr": 1e-3, "n_critic": 2}


@pytest.fixture(scope="module")
def train() -> list[str]:
    """The valid (charge-neutral, electronegativity-balanced) MP compositions over 15 common
    elements with counts up to 6: about 1,500 formulas."""
    subset = [
        f for f in load_corpus() if set(c := integer_counts(f)) <= ELEMENTS and max(c.values()) <= 6
    ]
    return [f for f, ok in zip(subset, valid_mask(subset), strict=True) if ok]


@pytest.fixture(scope="module")
def gan(train) -> FormulaGAN:
    torch.set_num_threads(1)
    return FormulaGAN(**TINY).fit(train, seed=0, **FIT)


def test_gan_trains_and_reports(gan, train):
    report = gan.fit_report_
    assert report["n_train"] + report["n_left_out"] == len(train)
    assert report["n_left_out"] == 0  # every formula fits max_count 6 and 8 elements
    assert report["epochs"] == FIT["epochs"] == len(report["critic_loss"])
    assert set(gan.config.elements) <= ELEMENTS


def test_every_sample_parses_and_respects_the_request(gan):
    small = FormulaGAN(**TINY, max_elements=2).fit(
        ["LiFePO4", "NaCl", "Li2O", "MgAl2O4", "KMnO4", "CaF2"] * 20, epochs=2, batch_size=32
    )
    for model, limit in ((gan, 8), (small, 2)):
        samples = model.sample(500, seed=1)
        assert len(samples) == 500
        for f in samples:
            counts = integer_counts(f)  # parses
            assert set(counts) <= set(model.config.elements)
            assert 1 <= len(counts) <= limit
            assert max(counts.values()) <= TINY["max_count"]
    wanted = gan.sample(300, required=["O", "Fe"], forbidden=["Li", "Na"], seed=2)
    for f in wanted:
        counts = integer_counts(f)
        assert {"O", "Fe"} <= set(counts) and not {"Li", "Na"} & set(counts)
    # a two-element cap with two required elements leaves exactly those two
    assert {tuple(integer_counts(f)) for f in small.sample(50, required=["Li", "O"])} <= {
        ("Li", "O")
    }


def test_fit_and_sample_are_reproducible(train):
    a = FormulaGAN(**TINY).fit(train[:400], seed=3, epochs=3, batch_size=64)
    b = FormulaGAN(**TINY).fit(train[:400], seed=3, epochs=3, batch_size=64)
    assert a.fit_report_["critic_loss"] == b.fit_report_["critic_loss"]
    assert a.sample(200, seed=5) == b.sample(200, seed=5)
    assert a.sample(200, seed=5) != a.sample(200, seed=6)


def test_save_load_round_trip(gan, tmp_path):
    path = gan.save(tmp_path / "gan.pt")
    again = FormulaGAN.load(path)
    assert again.config == gan.config
    assert again.fit_report_ == gan.fit_report_
    # the fp16 weights are saved; the reloaded model draws the same formulas
    assert again.sample(300, temperature=0.7, seed=4) == gan.sample(300, temperature=0.7, seed=4)
    doc = torch.load(path, weights_only=True)
    assert doc["kind"] == "matforge.generate.FormulaGAN"
    assert all(v.dtype == torch.float16 for v in doc["state"].values())
    torch.save({"kind": "something else"}, tmp_path / "other.pt")
    with pytest.raises(GenerateError, match="not a matforge GAN"):
        FormulaGAN.load(tmp_path / "other.pt")
    with pytest.raises(GenerateError, match="no GAN file"):
        FormulaGAN.load(tmp_path / "missing.pt")


def test_conditional_gan_samples_per_bin(train):
    # the property: 1 for oxides, 0 otherwise, a quarter unlabelled (NaN: the "none" bin)
    has_o = np.array(["O" in integer_counts(f) for f in train], dtype=float)
    values = np.where(np.arange(len(train)) % 4 == 0, np.nan, has_o)
    cond = Condition("oxide", (0.5,))
    model = FormulaGAN(**TINY, condition=cond).fit(train, values=values, seed=0, **FIT)
    share = {}
    for k in range(cond.n_bins):
        samples = model.sample(400, condition=k, seed=7)
        share[k] = np.mean(["O" in integer_counts(f) for f in samples])
    # a window naming a bin is that bin
    assert model.sample(50, condition=(0.5, float("inf")), seed=7) == model.sample(
        50, condition=1, seed=7
    )
    assert len(model.sample(50, seed=7)) == 50  # no condition: the "none" bin
    assert share[1] > share[0] + 0.3, share  # the condition steers the samples
    with pytest.raises(GenerateError, match="not one of the model's bins"):
        model.sample(5, condition=(0.0, 0.4))
    with pytest.raises(GenerateError, match="bin must be in 0..1"):
        model.sample(5, condition=2)
    with pytest.raises(GenerateError, match="needs values"):
        FormulaGAN(**TINY, condition=cond).fit(train[:50], epochs=1)


def test_clear_errors(gan, train):
    with pytest.raises(GenerateError, match="not trained"):
        FormulaGAN().sample(5)
    with pytest.raises(GenerateError, match=r"unknown elements \['Qq', 'Xx'\]"):
        gan.sample(5, required=["Xx", "Qq"])
    with pytest.raises(GenerateError, match="unknown elements"):
        gan.sample(5, forbidden=["Oo"])
    with pytest.raises(GenerateError, match=r"\['U'\] never occur"):
        gan.sample(5, required=["U"])
    with pytest.raises(GenerateError, match="both required and forbidden"):
        gan.sample(5, required=["O"], forbidden=["O"])
    with pytest.raises(GenerateError, match="n must be at least 1"):
        gan.sample(0)
    for t in (0, -1.0):
        with pytest.raises(GenerateError, match="temperature must be positive"):
            gan.sample(5, temperature=t)
    # a vanishing temperature is greedy given the noise: no nan, the Gumbel draw cannot matter
    greedy = gan.sample(20, temperature=1e-161, seed=5)
    assert len(greedy) == 20 and all(greedy)
    assert greedy == gan.sample(20, temperature=1e-30, seed=5)
    with pytest.raises(GenerateError, match="not conditioned"):
        gan.sample(5, condition=(1.0, 1.8))
    with pytest.raises(GenerateError, match="no training formula fits"):
        FormulaGAN(max_count=2).fit(["Fe2O3", "Li3N"], epochs=1)


def test_trained_gan_beats_uniform_random_on_validity(gan, train):
    from matforge.generate.baselines import uniform_random
    from matforge.generate.metrics import generation_metrics

    samples = gan.sample(2000, seed=0)
    uniform = uniform_random(train, 2000, max_count=TINY["max_count"], seed=0)
    m_gan = generation_metrics(samples, train)
    m_uniform = generation_metrics(uniform, train)
    assert m_gan["cn_eb"] > m_uniform["cn_eb"] + 0.3, (m_gan, m_uniform)
    assert m_gan["uniqueness"] > 0.1  # not one formula repeated


def test_shipped_gan_samples_valid_new_compositions():
    from matforge.generate.defaults import default_path, load_default
    from matforge.generate.metrics import validity

    assert default_path("gan").stat().st_size < 5e6  # small enough to ship
    gan = load_default("gan")
    samples = gan.sample(2000, seed=0)
    assert len(samples) == 2000 and samples == gan.sample(2000, seed=0)
    # measured on 20,000 (docs/benchmarks.md): CN+EB ~0.79, novelty ~0.95
    assert validity(samples)["cn_eb"].mean() > 0.7
    known = set(load_corpus())
    assert np.mean([f not in known for f in set(samples)]) > 0.8
    with_li = gan.sample(200, required=["Li"], seed=1)
    assert all("Li" in integer_counts(f) for f in with_li)
