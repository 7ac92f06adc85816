"""Derived mechanical properties and Monte Carlo propagation (matforge.properties)."""

import math

import numpy as np
import pytest

from matforge.properties import (
    DERIVED,
    Predictive,
    get_derived,
    mechanically_plausible,
    normal_draws,
    poisson_ratio,
    propagate,
    pugh_ratio,
    vickers_hardness_chen,
    vickers_hardness_tian,
)


def test_chen_hardness_of_diamond_by_hand():
    # k = 535/443 = 1.20767; k²G = 780.28; 2 * 780.28**0.585 - 3 = 95.40 GPa (measured 96 ± 5)
    hv = float(vickers_hardness_chen(443.0, 535.0))
    k = 535.0 / 443.0
    assert hv == pytest.approx(2 * (k * k * 535.0) ** 0.585 - 3, rel=1e-12)
    assert hv == pytest.approx(95.40, abs=0.01)
    assert 93 <= hv <= 96


def test_tian_hardness_by_hand():
    # diamond: 0.92 * 1.20767**1.137 * 535**0.708 = 97.42 GPa
    assert float(vickers_hardness_tian(443.0, 535.0)) == pytest.approx(97.42, abs=0.01)
    # TiN-like moduli B = 288, G = 200: k = 0.6944
    k = 200 / 288
    assert float(vickers_hardness_tian(288, 200)) == pytest.approx(
        0.92 * k**1.137 * 200**0.708, rel=1e-12
    )


def test_soft_material_and_ratios():
    # lead: B = 46, G = 5.6 -> Chen goes negative, which the formula allows
    assert float(vickers_hardness_chen(46, 5.6)) < 0
    assert float(pugh_ratio(443, 535)) == pytest.approx(443 / 535)
    assert float(poisson_ratio(443, 535)) == pytest.approx((3 * 443 - 2 * 535) / (6 * 443 + 2 * 535))
    assert mechanically_plausible([100, 100, 100, -1], [50, 150, 151, 10]).tolist() == [
        True, True, False, False
    ]


def test_derived_registry_masks_implausible_moduli():
    hv = get_derived("hardness_vickers")
    out = hv({"bulk_modulus": np.array([443.0, 10.0]), "shear_modulus": np.array([535.0, 60.0])})
    assert out[0] == pytest.approx(95.40, abs=0.01)
    assert np.isnan(out[1])  # G > 1.5 B: negative Poisson ratio, outside the model
    assert set(DERIVED) >= {"hardness_vickers", "hardness_tian", "pugh_ratio", "poisson_ratio"}
    with pytest.raises(Exception, match="unknown derived property"):
        get_derived("hardness_mohs")


def test_lognormal_predictive_moments_match_samples():
    p = Predictive(np.array([2.0]), np.array([0.1]), log10=True)
    z = normal_draws(200_000, 1, seed=1)[:, 0]
    s = p.sample(z)[0]
    assert p.median()[0] == pytest.approx(100.0)
    assert p.mean()[0] == pytest.approx(s.mean(), rel=2e-3)
    assert p.std()[0] == pytest.approx(s.std(), rel=1e-2)


def test_propagation_is_seeded_and_row_independent():
    rng = np.random.default_rng(0)
    b = Predictive(rng.uniform(1.8, 2.6, 50), rng.uniform(0.02, 0.2, 50), log10=True)
    g = Predictive(rng.uniform(1.6, 2.5, 50), rng.uniform(0.02, 0.2, 50), log10=True)
    m1, s1 = propagate("hardness_tian", {"bulk_modulus": b, "shear_modulus": g}, seed=3)
    m2, s2 = propagate("hardness_tian", {"bulk_modulus": b, "shear_modulus": g}, seed=3)
    assert np.array_equal(m1, m2, equal_nan=True) and np.array_equal(s1, s2, equal_nan=True)
    assert np.isfinite(m1).sum() > 25
    # a row's value does not depend on which other rows are in the batch
    rows = np.array([7, 3, 31])
    m3, s3 = propagate(
        "hardness_tian", {"bulk_modulus": b.take(rows), "shear_modulus": g.take(rows)}, seed=3
    )
    assert np.array_equal(m3, m1[rows], equal_nan=True)
    assert np.array_equal(s3, s2[rows], equal_nan=True)


def test_propagation_converges_to_the_point_value_for_small_std():
    b = Predictive(np.array([443.0]), np.array([1e-6]))
    g = Predictive(np.array([535.0]), np.array([1e-6]))
    mean, std = propagate("hardness_chen", {"bulk_modulus": b, "shear_modulus": g})
    assert mean[0] == pytest.approx(float(vickers_hardness_chen(443, 535)), rel=1e-6)
    assert std[0] < 1e-3


def test_correlated_draws_and_bad_arguments():
    z = normal_draws(20_000, 2, seed=0, correlation=0.6)
    assert np.corrcoef(z.T)[0, 1] == pytest.approx(0.6, abs=0.02)
    assert np.allclose(z.mean(axis=0), 0.0)  # antithetic pairs
    with pytest.raises(ValueError):
        normal_draws(7, 2)
    with pytest.raises(KeyError, match="shear_modulus"):
        propagate("pugh_ratio", {"bulk_modulus": Predictive(np.ones(1), np.ones(1))})
    assert math.isclose(float(pugh_ratio(2.0, 1.0)), 2.0)
