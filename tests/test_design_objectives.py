"""Objectives, utility distributions, constraints, Pareto fronts and hypervolumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from matforge.design.objectives import (
    Constraint,
    GaussianUtility,
    IntervalUtility,
    Maximize,
    Minimize,
    Range,
    Target,
    hypervolume,
    hypervolume_improvement,
    objective_from_dict,
    pareto_front,
    parse_constraint,
    parse_objective,
)
from matforge.errors import DesignSpaceError

# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("yield_strength max", Maximize("yield_strength")),
    ("octane:max", Maximize("octane")),
    ("octane: Maximise", Maximize("octane")),
    ("maximize octane", Maximize("octane")),
    ("density min", Minimize("density")),
    ("cost:minimize", Minimize("cost")),
    ("'band gap' min", Minimize("band gap")),
    ("gap =1.3", Target("gap", 1.3)),
    ("gap = 1.3 ± 0.05", Target("gap", 1.3, 0.05)),
    ("gap=1.3+-0.05", Target("gap", 1.3, 0.05)),
    ("gap:=-2e-1", Target("gap", -0.2)),
    ("gap in [1.2,1.4]", Range("gap", 1.2, 1.4)),
    ("gap:[1.2, 1.4]", Range("gap", 1.2, 1.4)),
    ("1.2 <= gap <= 1.4", Range("gap", 1.2, 1.4)),
    ("gap between 1.2 and 1.4", Range("gap", 1.2, 1.4)),
])
def test_parse_objective(text, expected):
    assert parse_objective(text) == expected
    assert parse_objective(str(expected)) == expected


@pytest.mark.parametrize("text", ["", "gap", "gap maybe", "max", "gap = high", "gap in [2, 1]"])
def test_unparseable_objectives_name_the_text(text):
    with pytest.raises(DesignSpaceError, match="objective"):
        parse_objective(text)


@given(
    name=st.lists(st.sampled_from(["yield", "strength", "band", "gap", "e_form", "K_VRH",
                                   "T_c", "d33", "(eV)"]), min_size=1, max_size=3).map(" ".join),
    value=st.floats(-1e6, 1e6, allow_nan=False),
    tol=st.one_of(st.none(), st.floats(1e-6, 10)),
    kind=st.sampled_from(["max", "min", "target", "range"]),
)
@settings(max_examples=150)
def test_str_round_trips(name, value, tol, kind):
    obj = {"max": Maximize(name), "min": Minimize(name), "target": Target(name, value, tol),
           "range": Range(name, value, value + (tol or 0.0))}[kind]
    assert parse_objective(str(obj)) == obj
    assert objective_from_dict(json.loads(json.dumps(obj.as_dict()))) == obj


def test_invalid_objectives():
    with pytest.raises(DesignSpaceError, match="low 2.0 > high 1.0"):
        Range("gap", 2, 1)
    with pytest.raises(DesignSpaceError, match="tolerance of 'gap' must be ≥ 0"):
        Target("gap", 1.0, -0.1)
    with pytest.raises(DesignSpaceError, match="must be finite"):
        Target("gap", float("nan"))


# -- utilities ----------------------------------------------------------------------------------


def test_utilities_rank_observations():
    y = np.array([1.0, 1.25, 1.5, 2.0])
    assert Maximize("a").utility(y).tolist() == y.tolist()
    assert Minimize("a").utility(y).tolist() == (-y).tolist()
    assert np.allclose(Target("a", 1.5).utility(y), [-0.5, -0.25, 0.0, -0.5])
    assert np.allclose(Target("a", 1.5, 0.3).utility(y), [-0.2, 0.0, 0.0, -0.2])
    assert np.allclose(Range("a", 1.2, 1.6).utility(y), [-0.2, 0.0, 0.0, -0.4])
    assert Minimize("a").best_utility([3.0, np.nan, 2.0]) == -2.0
    assert Target("a", 1.5).best_utility([]) is None
    assert Target("a", 1.5, 0.3).satisfied(y).tolist() == [False, True, True, False]
    assert Range("a", 1.2, 1.6).satisfied(y).tolist() == [False, True, True, False]


def _expect(f, mu, sigma, kinks=()):
    """E[f(Y)] for Y ~ N(mu, sigma²) by adaptive quadrature (the reference for closed forms)."""
    lo, hi = mu - 12 * sigma, mu + 12 * sigma
    points = [p for p in (1.2, 1.3, 1.4, *kinks) if lo < p < hi]
    return integrate.quad(lambda y: f(y) * stats.norm.pdf(y, mu, sigma), lo, hi,
                          points=points, limit=400, epsabs=1e-13)[0]


@pytest.mark.parametrize("low, high", [(1.3, 1.3), (1.2, 1.4)])
@pytest.mark.parametrize("mu, sigma", [(1.0, 0.2), (1.3, 0.1), (1.33, 0.5), (2.5, 0.4)])
def test_interval_utility_closed_forms_match_quadrature(low, high, mu, sigma):
    dist = IntervalUtility([mu], [sigma], low, high)

    def u(y):
        return -(max(low - y, 0.0) + max(y - high, 0.0))

    mean = _expect(u, mu, sigma)
    var = _expect(lambda y: (u(y) - mean) ** 2, mu, sigma)
    assert dist.mean[0] == pytest.approx(mean, abs=1e-9)
    assert dist.std[0] == pytest.approx(np.sqrt(var), abs=1e-7)
    for best in (-0.4, -0.1, -0.01):
        ei = _expect(lambda y, b=best: max(u(y) - b, 0.0), mu, sigma, (low + best, high - best))
        assert dist.expected_improvement(best)[0] == pytest.approx(ei, abs=1e-9)
        pi = stats.norm.cdf(high - best, mu, sigma) - stats.norm.cdf(low + best, mu, sigma)
        assert dist.probability_of_improvement(best)[0] == pytest.approx(pi, abs=1e-12)
    # once on target, PI is the probability of landing on target again
    inside = stats.norm.cdf(high, mu, sigma) - stats.norm.cdf(low, mu, sigma)
    assert dist.probability_of_improvement(0.0)[0] == pytest.approx(inside, abs=1e-12)
    assert dist.expected_improvement(0.0)[0] == 0.0


def test_folded_normal_ei_against_monte_carlo_and_limits():
    dist = Target("gap", 1.3).utility_distribution([1.3, 1.0], [1.0, 0.0])
    draws = dist.sample(400_000, rng=0)
    assert np.allclose(dist.mean, draws.mean(axis=0), atol=5e-3)
    ei = dist.expected_improvement(-0.5)
    assert ei[0] == pytest.approx(np.maximum(draws[:, 0] + 0.5, 0).mean(), abs=5e-3)
    assert ei[1] == pytest.approx(0.2, abs=1e-15)  # deterministic: 0.3 beats 0.5 by 0.2
    # far from the target EI → c − E|Y − t| = c − σ√(2/π)
    far = Target("t", 0.0).utility_distribution([0.0], [0.01]).expected_improvement(-5.0)
    assert far[0] == pytest.approx(5.0 - 0.01 * np.sqrt(2 / np.pi), abs=1e-12)


def test_minimize_flips_the_gaussian():
    dist = Minimize("cost").utility_distribution([2.0, 3.0], [1.0, 0.5])
    assert isinstance(dist, GaussianUtility)
    assert dist.mean.tolist() == [-2.0, -3.0] and dist.std.tolist() == [1.0, 0.5]
    with pytest.raises(DesignSpaceError, match="non-negative"):
        Maximize("a").utility_distribution([1.0], [-1.0])


# -- constraints --------------------------------------------------------------------------------


def test_constraint_probability_of_feasibility():
    c = Constraint("density", "<", 5.0)
    mean, std = np.array([4.0, 5.0, 7.0, 4.0]), np.array([1.0, 2.0, 1.0, 0.0])
    assert np.allclose(c.probability(mean, std)[:3], stats.norm.cdf((5.0 - mean[:3]) / std[:3]))
    assert c.probability(mean, std)[3] == 1.0
    above = Constraint("hardness", ">=", 20)
    assert above.probability([18.0], [2.0])[0] == pytest.approx(1 - stats.norm.cdf(1.0))
    assert parse_constraint("density < 5.0") == c
    assert parse_constraint("hardness ≥ 20") == above
    assert parse_constraint(str(above)) == above
    assert Constraint.from_dict(json.loads(json.dumps(c.as_dict()))) == c
    assert c.satisfied([4.9, 5.0]).tolist() == [True, False]
    with pytest.raises(DesignSpaceError, match="unknown comparison '!='"):
        Constraint("density", "!=", 5)
    with pytest.raises(DesignSpaceError, match="cannot parse constraint"):
        parse_constraint("density about 5")


# -- Pareto fronts and hypervolume --------------------------------------------------------------


def test_pareto_front_by_hand():
    Y = np.array([[1, 5], [2, 4], [2, 3], [3, 1], [0, 0], [3, 1], [np.nan, 9]], dtype=float)
    assert pareto_front(Y).tolist() == [True, True, False, True, False, True, False]
    # minimising the second column: low y is good
    assert pareto_front(Y, ["max", "min"]).tolist() == [False, False, False, True, True, True,
                                                         False]
    assert pareto_front(-Y, "min").tolist() == pareto_front(Y).tolist()


def test_hypervolume_hand_computed_cases():
    # 2-D staircase: boxes [0,1]×[0,3], [0,2]×[0,2], [0,3]×[0,1] → 3 + 1 + 1 = 6
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [0, 0]) == 6.0
    # a dominated point and one below the reference add nothing
    assert hypervolume([[1, 3], [2, 2], [3, 1], [1, 1], [5, -1]], [0, 0]) == 6.0
    # minimisation with a reference at (4, 4): boxes from (1, 3), (3, 1) → 3 + 3 − 1 = 5
    assert hypervolume([[1, 3], [3, 1]], [4, 4], senses="min") == 5.0
    # 3-D: three boxes 2×1×1 in different directions overlapping in the unit cube → 6 − 3 + 1
    assert hypervolume([[2, 1, 1], [1, 2, 1], [1, 1, 2]], [0, 0, 0]) == 4.0
    # 3-D: two boxes by inclusion–exclusion: 2·3·4 + 4·2·1 − 2·2·1 = 28
    assert hypervolume([[2, 3, 4], [4, 2, 1]], [0, 0, 0]) == 28.0
    assert hypervolume(np.zeros((0, 2)), [0, 0]) == 0.0
    with pytest.raises(DesignSpaceError, match="reference point has 3 values for 2 objectives"):
        hypervolume([[1, 2]], [0, 0, 0])


def test_hypervolume_matches_monte_carlo_in_3d():
    rng = np.random.default_rng(4)
    Y = rng.uniform(0, 1, (12, 3))
    P = rng.uniform(0, 1, (400_000, 3))
    dominated = np.zeros(len(P), dtype=bool)
    for y in Y:
        dominated |= (P <= y).all(axis=1)
    assert hypervolume(Y, [0, 0, 0]) == pytest.approx(dominated.mean(), abs=3e-3)


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_improvement_equals_difference(m):
    rng = np.random.default_rng(m)
    front = rng.uniform(0, 1, (8, m))
    ref = np.full(m, -0.1)
    U = rng.uniform(-0.2, 1.3, (5, 7, m))
    hvi = hypervolume_improvement(U, front, ref)
    base = hypervolume(front, ref)
    expected = np.array([[hypervolume(np.vstack([front, u]), ref) - base for u in row]
                         for row in U])
    assert hvi.shape == (5, 7)
    assert np.allclose(hvi, expected, atol=1e-12)
    assert np.allclose(hypervolume_improvement(U[0], None, ref), np.prod(np.maximum(U[0] - ref, 0),
                                                                          axis=1))
