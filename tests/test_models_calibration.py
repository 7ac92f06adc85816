"""Calibration metrics, scale recalibration and jackknife variance against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from matforge.models import jackknife
from matforge.models.calibration import (
    calibration_report,
    coverage,
    coverage_curve,
    miscalibration_area,
    spearman_error_std,
)
from matforge.models.recalibration import fit_std_scale


@pytest.fixture(scope="module")
def gaussian():
    """200k heteroscedastic Gaussian residuals with their true sigma."""
    rng = np.random.default_rng(0)
    n = 200_000
    mu = rng.normal(size=n)
    sigma = rng.uniform(0.1, 3.0, size=n)
    y = mu + sigma * rng.standard_normal(n)
    return y, mu, sigma


def _area_for_scaled_sigma(k: float) -> float:
    """Exact miscalibration area when the predicted sigma is k times the true one.

    At level p the interval is mu ± k·z_p·sigma_true, which covers 2Φ(k·z_p) − 1 of the rows.
    """

    def gap(p):
        return abs(2 * stats.norm.cdf(k * stats.norm.ppf(0.5 + p / 2)) - 1 - p)

    return integrate.quad(gap, 0, 1, limit=200)[0]


def test_correct_sigma_gives_nominal_coverage_and_zero_area(gaussian):
    y, mu, sigma = gaussian
    assert coverage(y, mu, sigma, 0.68) == pytest.approx(0.68, abs=0.004)
    assert coverage(y, mu, sigma, 0.95) == pytest.approx(0.95, abs=0.003)
    assert miscalibration_area(y, mu, sigma) < 0.003


@pytest.mark.parametrize("k", [2.0, 0.5])
def test_scaled_sigma_matches_closed_form(gaussian, k):
    y, mu, sigma = gaussian
    for level in (0.68, 0.95):
        expected = 2 * stats.norm.cdf(k * stats.norm.ppf(0.5 + level / 2)) - 1
        assert coverage(y, mu, k * sigma, level) == pytest.approx(expected, abs=0.004)
    assert miscalibration_area(y, mu, k * sigma) == pytest.approx(
        _area_for_scaled_sigma(k), abs=0.004
    )


def test_doubled_sigma_over_covers_by_known_amount(gaussian):
    y, mu, sigma = gaussian
    # P(|Z| <= 2 · 0.9945) = 0.9533 and P(|Z| <= 3.92) = 0.99991
    assert coverage(y, mu, 2 * sigma, 0.68) == pytest.approx(0.9533, abs=0.003)
    assert coverage(y, mu, 2 * sigma, 0.95) > 0.999


def test_coverage_small_exact_case():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    mu, sigma = np.zeros(4), np.ones(4)
    assert coverage(y, mu, sigma, 0.68) == 0.25  # z_0.68 = 0.9945 < 1
    assert coverage(y, mu, sigma, 0.95) == 0.5  # 1, 2 vs 1.96
    expected, observed = coverage_curve(y, mu, sigma, n_levels=3)
    assert expected.tolist() == [0.0, 0.5, 1.0]
    # level 0: only the exact prediction; level 0.5: z <= 0.674; level 1: everything
    assert observed.tolist() == [0.25, 0.25, 1.0]


def test_exact_prediction_with_zero_sigma_is_covered():
    assert coverage([1.0, 2.0], [1.0, 0.0], [0.0, 0.0], 0.68) == 0.5


def test_extreme_miscalibration_approaches_half():
    rng = np.random.default_rng(1)
    y = rng.normal(size=10_000)
    assert miscalibration_area(y, np.zeros_like(y), np.full_like(y, 1e-6)) > 0.49
    assert miscalibration_area(y, np.zeros_like(y), np.full_like(y, 1e6)) > 0.49


def test_spearman_sign():
    y = np.array([0.0, 1.0, 3.0, 6.0])
    mu = np.zeros(4)
    assert spearman_error_std(y, mu, [0.1, 0.2, 0.3, 0.4]) == pytest.approx(1.0)
    assert spearman_error_std(y, mu, [0.4, 0.3, 0.2, 0.1]) == pytest.approx(-1.0)
    assert np.isnan(spearman_error_std(y, mu, np.ones(4)))


def test_report_is_consistent(gaussian):
    y, mu, sigma = gaussian
    report = calibration_report(y, mu, sigma)
    assert report["n"] == y.size
    assert report["rmse"] == pytest.approx(np.sqrt(np.mean((y - mu) ** 2)))
    assert report["rmv"] == pytest.approx(report["rmse"], rel=0.01)  # calibrated: RMV = RMSE
    assert report["coverage_95"] == coverage(y, mu, sigma, 0.95)
    # mean Gaussian NLL with the true sigma: 0.5·log(2π) + E[log σ] + 0.5
    assert report["nll"] == pytest.approx(
        0.5 * np.log(2 * np.pi) + np.mean(np.log(sigma)) + 0.5, abs=0.01
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1.0, 2.0], [1.0], [1.0, 1.0]), "same length"),
        (([1.0, 2.0], [1.0, 2.0], [1.0, -1.0]), "row 1 has sigma=-1.0"),
        (([1.0, np.nan], [1.0, 2.0], [1.0, 1.0]), "y has 1 non-finite"),
        (([], [], []), "at least one row"),
    ],
)
def test_bad_input_is_named(args, match):
    with pytest.raises(ValueError, match=match):
        calibration_report(*args)


def test_bad_level():
    with pytest.raises(ValueError, match="level"):
        coverage([1.0], [1.0], [1.0], 95)


finite = st.floats(-1e3, 1e3, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(
    data=st.lists(st.tuples(finite, finite, st.floats(1e-3, 1e3)), min_size=1, max_size=40),
    shift=finite,
    scale=st.floats(1e-2, 1e2),
)
def test_metrics_invariant_to_units(data, shift, scale):
    """Changing the target's units (affine map) changes no calibration metric."""
    y, mu, sigma = (np.array(c) for c in zip(*data, strict=True))
    area = miscalibration_area(y, mu, sigma)
    assert 0.0 <= area <= 0.5
    # exact rational comparisons can flip at the boundary, so compare with a tolerance of 1 row
    tol = 1.0 / y.size + 1e-12
    assert (
        abs(miscalibration_area(y * scale + shift, mu * scale + shift, sigma * scale) - area) <= tol
    )
    c = coverage(y, mu, sigma, 0.68)
    assert abs(coverage(y * scale + shift, mu * scale + shift, sigma * scale, 0.68) - c) <= tol


# --- recalibration --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["rmv", "z", "coverage68"])
def test_fit_std_scale_recovers_known_factor(method):
    rng = np.random.default_rng(2)
    sigma = rng.uniform(0.5, 2.0, 100_000)
    residuals = 3.0 * sigma * rng.standard_normal(sigma.size)
    assert fit_std_scale(residuals, sigma, method) == pytest.approx(3.0, rel=0.02)


def test_fit_std_scale_rmv_resists_tiny_sigma():
    rng = np.random.default_rng(3)
    sigma = np.ones(1000)
    residuals = rng.standard_normal(1000)
    sigma[0], residuals[0] = 1e-12, 1.0  # one row with a vanishing sigma
    assert fit_std_scale(residuals, sigma, "rmv") == pytest.approx(1.0, rel=0.1)
    assert fit_std_scale(residuals, sigma, "z") > 1e3


def test_fit_std_scale_degenerate_inputs():
    assert fit_std_scale([], [], "rmv") == 1.0
    assert fit_std_scale([0.0, 0.0], [1.0, 1.0], "rmv") == 1.0  # no error: nothing to scale
    with pytest.raises(ValueError, match="method"):
        fit_std_scale([1.0], [1.0], "mad")


# --- jackknife variance ----------------------------------------------------------------------


def _jackknife_loops(N, T):
    """Wager, Hastie & Efron (2014) eqs. (6), (7), (12), (13), written as plain loops."""
    n, B = N.shape
    out = {"ij": [], "j": []}
    for x in range(T.shape[1]):
        t = T[:, x]
        t_bar = t.mean()
        v = np.mean((t - t_bar) ** 2)
        v_ij = sum(np.mean((N[i] - N[i].mean()) * (t - t_bar)) ** 2 for i in range(n))
        v_j = 0.0
        for i in range(n):
            left_out = N[i] == 0
            if left_out.any():
                v_j += (t[left_out].mean() - t_bar) ** 2
        v_j *= (n - 1) / n
        out["ij"].append(v_ij - n / B * v)
        out["j"].append(v_j - (np.e - 1) * n / B * v)
    return {k: np.array(a) for k, a in out.items()}


def test_jackknife_matches_the_papers_formulas(monkeypatch):
    rng = np.random.default_rng(4)
    n, B, m = 30, 50, 7
    N = rng.multinomial(n, np.full(n, 1 / n), size=B).T
    T = rng.normal(size=(B, m)) + (N[:3].sum(axis=0)[:, None] * 0.3)  # trees depend on rows 0-2
    ref = _jackknife_loops(N, T)
    np.testing.assert_allclose(jackknife.jackknife_variance(N, T, "ij"), ref["ij"], rtol=1e-10)
    np.testing.assert_allclose(jackknife.jackknife_variance(N, T, "j"), ref["j"], rtol=1e-10)
    np.testing.assert_allclose(
        jackknife.jackknife_variance(N, T, "average"), (ref["ij"] + ref["j"]) / 2, rtol=1e-10
    )
    # the same numbers when the query points are processed two at a time, and with the
    # precomputed matrix a fitted forest keeps
    monkeypatch.setattr(jackknife, "_CHUNK_ELEMENTS", 2 * B)
    np.testing.assert_allclose(jackknife.jackknife_variance(N, T, "ij"), ref["ij"], rtol=1e-10)
    M = jackknife.jackknife_matrix(N, "j")
    np.testing.assert_allclose(jackknife.jackknife_variance(N, T, "j", matrix=M), ref["j"])
    np.testing.assert_allclose(
        jackknife.jackknife_variance(N, T, "j", bias_correction=False),
        ref["j"] + (np.e - 1) * n / B * T.var(axis=0),
        rtol=1e-10,
    )


def test_jackknife_of_identical_members_is_zero():
    N = np.random.default_rng(5).multinomial(20, np.full(20, 0.05), size=40).T
    T = np.tile(np.arange(6.0), (40, 1))
    np.testing.assert_allclose(jackknife.jackknife_variance(N, T), 0.0, atol=1e-12)


def test_jackknife_estimates_the_variance_of_a_random_forest():
    """Fit 12 forests on independent samples of one population; compare the spread of their
    predictions with the jackknife estimates. IJ-U runs low and J-U high (Wager et al., §4);
    their average, which RandomForestUQ uses, is close to unbiased."""
    from sklearn.datasets import make_friedman1
    from sklearn.ensemble import RandomForestRegressor

    Xq = make_friedman1(50, noise=0.0, random_state=123)[0].astype(np.float32)
    preds, est = [], {"ij": [], "j": [], "average": []}
    for seed in range(12):
        X, y = make_friedman1(100, noise=1.0, random_state=seed)
        rf = RandomForestRegressor(200, max_features=1 / 3, random_state=seed, n_jobs=2)
        rf.fit(X.astype(np.float32), y)
        N = jackknife.inbag_counts(rf, 100)
        T = jackknife.tree_predictions(rf.estimators_, Xq)
        np.testing.assert_allclose(T.mean(axis=0), rf.predict(Xq), rtol=1e-6)
        preds.append(T.mean(axis=0))
        for kind in est:
            est[kind].append(jackknife.jackknife_variance(N, T, kind))
    true = np.var(preds, axis=0, ddof=1).mean()
    ratio = {kind: np.mean(v) / true for kind, v in est.items()}
    assert ratio["ij"] < ratio["average"] < ratio["j"]
    assert 0.7 < ratio["average"] < 1.4


def test_inbag_counts_are_bootstrap_samples():
    from sklearn.ensemble import RandomForestRegressor

    X = np.random.default_rng(6).normal(size=(40, 3)).astype(np.float32)
    rf = RandomForestRegressor(10, random_state=0).fit(X, X[:, 0])
    N = jackknife.inbag_counts(rf, 40)
    assert N.shape == (40, 10)
    assert (N.sum(axis=0) == 40).all()  # each tree draws n rows with replacement
    mean, std, count = jackknife.oob_mean_std(N, jackknife.tree_predictions(rf.estimators_, X))
    np.testing.assert_array_equal(count, (N == 0).sum(axis=1))
    assert np.isnan(mean[count == 0]).all() and np.isfinite(mean[count > 0]).all()


def test_noise_forest_caps_bootstrap_rows_and_keeps_oob_estimates():
    """Above ``max_rows`` each tree draws that many rows; the out-of-bag std still follows the
    true noise level, and below the cap the forest is the plain bootstrap one."""
    from matforge.models.recalibration import NoiseForest

    rng = np.random.default_rng(0)
    n = 6_000
    X = rng.uniform(size=(n, 3)).astype(np.float32)
    sigma = np.where(X[:, 0] > 0.5, 2.0, 0.5)
    abs_r = np.abs(sigma * rng.standard_normal(n))
    capped = NoiseForest(n_estimators=30, max_rows=1_000, random_state=0).fit(X, abs_r)
    assert {len(s) for s in capped.forest_.estimators_samples_} == {1_000}
    ok = np.isfinite(capped.oob_std_)
    assert ok.mean() > 0.99  # a row is in-bag of a 1,000-row tree only ~1/6 of the time
    hi, lo = capped.oob_std_[ok & (X[:, 0] > 0.6)], capped.oob_std_[ok & (X[:, 0] < 0.4)]
    assert np.median(hi) / np.median(lo) == pytest.approx(4.0, rel=0.25)
    plain = NoiseForest(n_estimators=5, max_rows=10_000, random_state=0).fit(X, abs_r)
    assert {len(s) for s in plain.forest_.estimators_samples_} == {n}
