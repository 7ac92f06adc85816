"""Acquisition functions against closed forms and brute-force Monte Carlo."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import integrate, stats

from matforge.design.acquisition import (
    ExpectedHypervolumeImprovement,
    ExpectedImprovement,
    MaximumLikelihoodOfImprovement,
    MaximumUncertainty,
    ParEGO,
    ProbabilityOfImprovement,
    RandomAcquisition,
    ThompsonSampling,
    UpperConfidenceBound,
    make_acquisition,
    weight_by_feasibility,
)
from matforge.design.objectives import GaussianUtility, Range, Target, hypervolume
from matforge.errors import DesignSpaceError


def test_expected_improvement_closed_form():
    ei = ExpectedImprovement()
    assert ei([0.0], [1.0], 0.0)[0] == pytest.approx(0.3989422804014327, abs=1e-15)  # φ(0)
    mean = np.array([1.0, 0.5, -2.0, 3.0, 0.7])
    std = np.array([0.5, 2.0, 0.1, 0.0, 0.0])
    best = 0.8
    got = ei(mean, std, best)
    for m, s, g in zip(mean[:3], std[:3], got[:3], strict=True):
        ref = integrate.quad(lambda y, m=m, s=s: max(y - best, 0) * stats.norm.pdf(y, m, s),
                             m - 12 * s, m + 12 * s, points=[best], epsabs=1e-13)[0]
        assert g == pytest.approx(ref, abs=1e-10)
    assert got[3] == pytest.approx(2.2) and got[4] == 0.0  # σ = 0: max(μ − best, 0)
    assert ExpectedImprovement(xi=0.3)(mean, std, best) == pytest.approx(ei(mean, std, best + 0.3))


def test_probability_of_improvement_and_mli():
    mean, std = np.array([1.0, 0.0, 2.0]), np.array([0.5, 2.0, 0.0])
    best, xi = 0.8, 0.1
    expected = stats.norm.cdf((mean[:2] - best - xi) / std[:2])
    got = ProbabilityOfImprovement(xi=xi)(mean, std, best)
    assert got[:2] == pytest.approx(expected, abs=1e-15) and got[2] == 1.0
    mli = MaximumLikelihoodOfImprovement()(mean, std, best)
    assert mli == pytest.approx(ProbabilityOfImprovement()(mean, std, best))


def test_ucb_uncertainty_thompson_random():
    mean, std = np.array([1.0, 2.0, 0.0]), np.array([0.5, 0.1, 1.0])
    assert UpperConfidenceBound(beta=1.5)(mean, std).tolist() == (mean + 1.5 * std).tolist()
    assert MaximumUncertainty()(mean, std).tolist() == std.tolist()
    ts = ThompsonSampling(rng=3)
    draws = np.array([ts(mean, std) for _ in range(4000)])  # a fresh draw at every call
    assert draws.mean(axis=0) == pytest.approx(mean, abs=0.05)
    assert draws.std(axis=0) == pytest.approx(std, abs=0.05)
    assert ThompsonSampling(rng=3)(mean, std).tolist() == ThompsonSampling(rng=3)(mean, std).tolist()
    r = RandomAcquisition(rng=0)(mean, std)
    assert r.shape == (3,) and ((r >= 0) & (r < 1)).all()


def test_acquisitions_score_non_gaussian_target_utilities():
    obj = Target("gap", 1.3, 0.05)  # eV
    dist = obj.utility_distribution([1.3, 1.6, 1.0], [0.1, 0.1, 0.5])
    best = obj.best_utility([1.5, 0.9])  # closest so far: 0.2 eV from the target → −0.15
    assert best == pytest.approx(-0.15)
    ei = ExpectedImprovement().score(dist, best)
    assert ei == pytest.approx(dist.expected_improvement(best)) and ei.argmax() == 0
    mli = MaximumLikelihoodOfImprovement().score(dist, best)
    p0 = stats.norm.cdf(1.35 + 0.15, 1.3, 0.1) - stats.norm.cdf(1.25 - 0.15, 1.3, 0.1)
    assert mli[0] == pytest.approx(p0)
    ucb = UpperConfidenceBound(beta=1.0).score(dist)
    assert ucb == pytest.approx(dist.mean + dist.std)


def test_ei_once_on_target_ranks_by_the_chance_of_another_hit():
    # a range objective with a measurement already inside: EI is zero for every candidate (the
    # utility's EI stays exact), so the acquisition ranks by P(low <= Y <= high) instead of
    # leaving the choice to the candidates' order
    obj = Range("co", -0.7, -0.5)
    dist = obj.utility_distribution([-1.5, -0.61, -0.45, -0.6], [0.1, 0.02, 0.05, 0.3])
    best = obj.best_utility([-0.9, -0.55])
    assert best == 0.0
    assert np.all(dist.expected_improvement(best) == 0.0)
    ei = ExpectedImprovement().score(dist, best)
    inside = stats.norm.cdf(-0.5, dist.mu, dist.sigma) - stats.norm.cdf(-0.7, dist.mu, dist.sigma)
    assert ei == pytest.approx(inside, abs=1e-12)
    assert ei.argmax() == 1 and ei[0] < 1e-6
    assert ei == pytest.approx(MaximumLikelihoodOfImprovement().score(dist, best))
    # before the first hit it is the exact EI of minus the distance
    far = obj.best_utility([-0.9])
    assert ExpectedImprovement().score(dist, far) == pytest.approx(dist.expected_improvement(far))


def test_improvement_needs_best():
    with pytest.raises(DesignSpaceError, match="needs the best utility observed so far"):
        ExpectedImprovement()([0.0], [1.0])


def test_ehvi_matches_brute_force_monte_carlo():
    front = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    ref = np.array([0.0, 0.0])
    mean = np.array([[2.5, 2.5], [1.0, 1.0], [4.0, 0.5], [2.0, 2.0]])
    std = np.array([[0.5, 0.3], [0.2, 0.2], [0.1, 1.0], [0.0, 0.0]])
    acq = ExpectedHypervolumeImprovement(ref_point=ref, n_samples=64, rng=5)
    got = acq(mean, std, front)
    z = np.random.default_rng(5).standard_normal((64, 2))  # the same common random numbers
    base = hypervolume(front, ref)
    for i in range(len(mean)):
        U = mean[i] + std[i] * z
        expected = np.mean([hypervolume(np.vstack([front, u]), ref) - base for u in U])
        assert got[i] == pytest.approx(expected, abs=1e-12)
    assert got[3] == 0.0  # a point already on the front adds nothing
    assert got[0] > got[1]


def test_ehvi_three_objectives_and_limits():
    front = np.array([[1.0, 1.0, 2.0], [2.0, 1.0, 1.0], [1.0, 2.0, 1.0]])
    ref = np.zeros(3)
    mean = np.array([[2.0, 2.0, 2.0], [0.5, 0.5, 0.5]])
    std = np.full((2, 3), 1e-9)
    got = ExpectedHypervolumeImprovement(ref_point=ref)(mean, std, front)
    exact = hypervolume(np.vstack([front, mean[0]]), ref) - hypervolume(front, ref)
    assert got[0] == pytest.approx(exact, abs=1e-6) and got[1] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(DesignSpaceError, match="supports 2–3 objectives, got 4"):
        ExpectedHypervolumeImprovement()(np.zeros((2, 4)), np.ones((2, 4)), None)


def test_parego_prefers_dominating_candidates():
    observed = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    mean = np.array([[4.0, 4.0], [0.5, 0.5], [2.0, 2.0]])
    std = np.full((3, 2), 0.2)
    acq = ParEGO(rng=0)
    for _ in range(5):  # whatever the random weights
        s = acq(mean, std, observed)
        assert s.argmax() == 0 and s[1] == pytest.approx(0.0, abs=1e-12)
        assert acq.weights_.sum() == pytest.approx(1.0) and (acq.weights_ >= 0).all()
    with pytest.raises(DesignSpaceError, match="observed so far"):
        acq(mean, std, None)


def test_make_acquisition_and_serialisation():
    acq = make_acquisition("ucb", beta=3.0)
    assert isinstance(acq, UpperConfidenceBound) and acq.beta == 3.0
    d = json.loads(json.dumps(ExpectedImprovement(xi=0.01).as_dict()))
    assert d == {"name": "ei", "xi": 0.01}
    assert make_acquisition(d) == ExpectedImprovement(xi=0.01)
    assert make_acquisition(ThompsonSampling(rng=np.random.default_rng()).as_dict()).rng is None
    with pytest.raises(DesignSpaceError, match="unknown acquisition 'foo'"):
        make_acquisition("foo")


def test_weight_by_feasibility():
    assert weight_by_feasibility([0.5, 1.0], [1.0, 0.25]).tolist() == [0.5, 0.25]
    # signed scores are shifted to start at zero first
    assert weight_by_feasibility([-1.0, 1.0, 3.0], [1.0, 1.0, 0.5]).tolist() == [0.0, 2.0, 2.0]


def test_gaussian_utility_vectorised_shapes():
    dist = GaussianUtility(np.zeros(1000), np.ones(1000))
    assert ExpectedImprovement().score(dist, 0.0).shape == (1000,)
    assert dist.sample(7, rng=0).shape == (7, 1000)
