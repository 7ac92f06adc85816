"""The wider campaign suite (issue #20 §1–§2): the Liang et al. 2021 sets and the catalysis
window as replay problems, candidate strategies, leave-one-problem-out selection, Liang et al.'s
measures and batch spread."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from matforge.datasets import dataset_info, load_dataset
from matforge.design.benchmark import (
    BENCHMARKS,
    LIANG_BENCHMARKS,
    Problem,
    batch_spread,
    distinct_settings,
    experiments_needed,
    load_problem,
    lopo_report,
    replay,
    run_benchmark,
)
from matforge.design.candidates import CANDIDATES, make_candidate
from matforge.design.objectives import Maximize, Minimize, Range, parse_objective
from matforge.design.selection import aggregate, lopo, targets
from matforge.errors import DesignSpaceError

# name -> rows bundled, distinct settings replayed, objective, feature columns
LIANG = {
    "liang2021_agnp": (3295, 164, Minimize, "loss", 5),
    "liang2021_autoam": (100, 100, Maximize, "score", 4),
    "liang2021_crossed_barrel": (1800, 600, Maximize, "toughness", 4),
    "liang2021_p3ht": (233, 178, Maximize, "conductivity", 5),
    "liang2021_perovskite": (139, 94, Minimize, "instability_index", 3),
}


def test_suite_has_at_least_12_problems():
    assert len(BENCHMARKS) == len(set(BENCHMARKS)) >= 12
    assert set(LIANG_BENCHMARKS) <= set(BENCHMARKS) and "catalysis_co_window" in BENCHMARKS


@pytest.mark.parametrize("name", list(LIANG))
def test_liang_sets_load_with_the_papers_objectives(name):
    rows, distinct, sense, target, d = LIANG[name]
    info = dataset_info(name)
    df = load_dataset(name)
    assert len(df) == info.rows == rows and info.target == target
    assert info.extra["goal"] == ("minimize" if sense is Minimize else "maximize")
    assert info.extra["distinct_inputs"] == distinct
    assert "Liang" in info.citation and "10.1038/s41524-021-00656-9" in info.citation
    p = load_problem(name)
    assert isinstance(p.objective, sense) and p.objective.name == target
    assert p.X.shape == (distinct, d) and p.n == distinct
    # one candidate per distinct setting: no two rows of the pool share their inputs
    assert len(np.unique(p.X, axis=0)) == distinct
    # the best candidate is the best mean outcome
    best = p.y.min() if sense is Minimize else p.y.max()
    assert p.y[p.best][0] == best


def test_perovskite_shares_and_p3ht_percentages_sum_to_the_whole():
    pv = load_dataset("liang2021_perovskite")
    np.testing.assert_allclose(pv[["cs_pbi3", "fa_pbi3", "ma_pbi3"]].sum(axis=1), 1, atol=0.011)
    p3 = load_dataset("liang2021_p3ht")
    np.testing.assert_allclose(p3[["p3ht", "d1", "d2", "d6", "d8"]].sum(axis=1), 100, atol=0.2)


def test_distinct_settings_average_unique_outcomes_as_liang_do():
    df = pd.DataFrame({"a": [1, 1, 1, 2], "b": [0, 0, 0, 5], "y": [1.0, 1.0, 4.0, 7.0]})
    g = distinct_settings(df, ["a", "b"], "y")
    # (1, 0): unique outcomes {1, 4} -> 2.5 (the plain mean would be 2.0)
    assert g.to_dict("list") == {"a": [1, 2], "b": [0, 5], "y": [2.5, 7.0]}


def test_catalysis_window_goal_is_five_in_window_surfaces():
    p = load_problem("catalysis_co_window")
    assert isinstance(p.objective, Range)
    assert p.n == 295 and p.k_top == 5 and p.X.shape == (295, 13)
    in_window = (p.y >= -0.7) & (p.y <= -0.5)
    assert (p.good == in_window).all() and in_window.sum() == 33
    assert p.random_expected("top") == pytest.approx(5 * 296 / 34)


def _toy(k_top=1, budget=6):
    y = np.array([0.0, 1.0, 9.0, 2.0, 8.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    X = np.arange(10, dtype=float)[:, None]
    return Problem("toy", X, X, y, parse_objective("y max"), budget, top_fraction=0.2, k_top=k_top)


def test_experiments_needed_counts_the_kth_top_candidate():
    p = _toy(k_top=2)  # top 20 %: rows 2 (9.0) and 4 (8.0)
    assert p.good.sum() == 2
    assert experiments_needed(p, np.array([0, 2, 1, 4])) == 4.0
    # one found in 5 experiments, budget spent: 5 + 1 * (5 + 1) / (1 + 1) = 8
    assert experiments_needed(p, np.array([0, 2, 1, 3, 5])) == 8.0
    assert p.random_expected("top") == pytest.approx(2 * 11 / 3)
    assert p.settled([2, 4], "top") and p.settled([2, 4], "best")
    assert p.settled([4, 2], "top") and not p.settled([4], "best")
    with pytest.raises(DesignSpaceError, match="k_top must be between 1 and the 2"):
        _toy(k_top=3)


def test_batch_spread_by_hand():
    Zs = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    mean, smallest = batch_spread(Zs, [0, 1, 2], pool_mean=2.0)
    assert mean == pytest.approx((5 + 4 + 3) / 3 / 2) and smallest == pytest.approx(3 / 2)


def test_lopo_hand_checked():
    scores = {"a": {"x": 4.0, "y": 1.0}, "b": {"x": 1.0, "y": 4.0}, "c": {"x": 4.0, "y": 2.0}}
    r = lopo(scores)
    assert r["in_suite"]["chosen"] == "x"
    assert r["in_suite"]["aggregate"] == pytest.approx(16 ** (1 / 3))
    # without a: x has sqrt(1*4) = 2, y sqrt(4*2) = 2.83 -> y, which scores 1 on a
    assert r["problems"]["a"] == pytest.approx(
        {"chosen": "y", "train_aggregate": math.sqrt(8), "score": 1.0, "in_suite_score": 4.0}
    )
    assert r["problems"]["b"]["chosen"] == "x" and r["problems"]["b"]["score"] == 1.0
    # without c: a tie (2.0 each) goes to the candidate listed first
    assert r["problems"]["c"]["chosen"] == "x"
    assert lopo(scores, ["y", "x"])["problems"]["c"]["chosen"] == "y"
    assert r["lopo_median"] == 1.0 and r["in_suite_median"] == 4.0
    assert r["lopo_aggregate"] == pytest.approx(4 ** (1 / 3))


def test_lopo_and_targets_refuse_bad_input():
    with pytest.raises(DesignSpaceError, match="at least two problems"):
        lopo({"a": {"x": 1.0}})
    with pytest.raises(
        DesignSpaceError, match=r"problem 'b' has no score for candidate\(s\) \['y'\]"
    ):
        lopo({"a": {"x": 1.0, "y": 2.0}, "b": {"x": 1.0}}, ["x", "y"])
    with pytest.raises(DesignSpaceError, match="positive"):
        aggregate([1.0, 0.0])
    t = targets({"a": 5.0, "b": 1.2, "c": 4.0}, {"a": 2.0, "b": 1.5, "c": 1.0}, beat_baseline_on=2)
    assert t["median"] == {"value": 4.0, "target": 4.0, "met": True}
    assert t["each"]["below"] == ["b"] and not t["each"]["met"]
    assert t["beats_baseline"]["count"] == 2 and t["beats_baseline"]["met"]


def test_unknown_candidate_is_refused():
    with pytest.raises(DesignSpaceError, match="unknown candidate strategy 'nope'"):
        make_candidate("nope")
    with pytest.raises(DesignSpaceError, match="unknown benchmark strategy 'nope'"):
        run_benchmark([_toy()], seeds=[0], strategies=["nope"])


def test_candidates_replay_and_stop_top_gives_the_same_top_metric():
    p = load_problem("liang2021_perovskite", max_candidates=40, budget=14)
    for name in CANDIDATES:
        c = make_candidate(name)
        top = replay(p, c, 0, stop="top")
        assert top.extra["n_initial"] == c.n_initial
        assert p.good[top.order].sum() >= 1 or len(top.order) == p.budget
    full = replay(p, make_candidate("gp_prior"), 1, stop="best")
    top = replay(p, make_candidate("gp_prior"), 1, stop="top")
    assert experiments_needed(p, full.order) == experiments_needed(p, top.order)
    assert list(full.order[: len(top.order)]) == list(top.order)


def test_hedge_reports_its_choices():
    p = load_problem("liang2021_autoam")
    r = replay(p, make_candidate("hedge"), 2, stop="top")
    chosen = r.extra["policy_state"]["chosen"]
    assert set(chosen) == {"ei", "pi", "ucb"} and sum(chosen.values()) == r.n_fits


def test_tiny_suite_benchmark_lopo_and_resume(tmp_path):
    problems = [
        load_problem(n, max_candidates=40, budget=12)
        for n in ("colors_bob", "liang2021_p3ht", "liang2021_autoam")
    ]
    cands = ["default_init5", "gp_prior"]
    kwargs = dict(
        seeds=[0, 1],
        batches=[1],
        strategies=[*cands, "baseline", "random"],
        stop="top",
        cache_dir=tmp_path,
    )
    first = run_benchmark(problems, **kwargs)
    messages = []
    again = run_benchmark(problems, progress=messages.append, **kwargs)
    assert len(messages) == 3 * 4 * 2 and all("cached" in m for m in messages)
    assert again["problems"] == first["problems"]
    report = lopo_report(first, cands)
    for name, row in report["problems"].items():
        runs = first["problems"][name]["runs"]
        assert row["score"] == runs[f"{row['chosen']}@1"]["acceleration_top"]
        assert row["baseline"] == runs["baseline@1"]["acceleration_top"]
        others = [q for q in report["problems"] if q != name]
        best = max(cands, key=lambda c: aggregate([report["scores"][q][c] for q in others]))
        assert row["chosen"] == best
    assert set(report["targets"]) == {"median", "each", "beats_baseline"}


def test_batched_replays_report_spread():
    p = load_problem("colors_bob", max_candidates=80, budget=20)
    out = run_benchmark([p], seeds=[0], batches=[4], strategies=["default"])
    spread = out["problems"]["colors_bob"]["runs"]["default@4"]["batch_spread"]
    assert spread["n_batches"] >= 1
    assert 0 < spread["min_pairwise"] <= spread["mean_pairwise"]


def test_liang_measures_by_hand():
    from matforge.design.liang2021 import LiangPool, measures, top_percent

    X = np.arange(20, dtype=float)[:, None]
    pool = LiangPool("toy", X, np.arange(20, dtype=float))  # lower loss is better
    assert pool.n_top == 1 and pool.top[0]
    # two campaigns finding the top setting at experiments 2 and 4
    orders = [[5, 0], [5, 6, 7, 0]]
    curve = top_percent(pool, orders, 5)
    np.testing.assert_allclose(curve, [0, 0.5, 0.5, 1, 1])
    m = measures(pool, orders)
    # Top% 0.5 after 2 experiments (random: 0.5 * 20 = 10) -> AF 5; 0.8 after 4 -> AF 4
    assert m["af"] == {"0.5": 5.0, "0.8": 4.0} and m["experiments_to"] == {"0.5": 2, "0.8": 4}
    # EF(i) = Top%(i) / (i / 20): 5 at i = 2 and at i = 4
    assert m["ef_peak"] == pytest.approx(5.0) and m["ef_peak_at"] == 2


def test_liang_campaign_runs_and_refuses_unknown_input():
    from matforge.design.liang2021 import ALGORITHMS, campaign, liang_pool

    pool = liang_pool("liang2021_perovskite")
    assert pool.n == 94 and pool.n_top == 5 and len(ALGORITHMS) == 9
    r = campaign(pool, "rf/ei", 0, max_experiments=6)
    assert len(r["order"]) == 6 and len(set(r["order"])) == 6
    with pytest.raises(DesignSpaceError, match="unknown algorithm 'svm/ei'"):
        campaign(pool, "svm/ei", 0)
    with pytest.raises(DesignSpaceError, match="not one of Liang"):
        liang_pool("colors_bob")


def test_prior_gp_fits_near_its_prior_and_interpolates():
    from matforge.design.surrogates import PriorGP, lengthscale_prior

    rng = np.random.default_rng(0)
    X = rng.random((25, 3))
    y = np.sin(5 * X[:, 0]) + 0.5 * X[:, 1]
    m = PriorGP(random_state=0).fit(X, y)
    assert np.all(np.isfinite(m.lengthscales_)) and 0 < m.noise_ < 0.1
    # the irrelevant third input gets a longer length scale than the first
    assert m.lengthscales_[2] > m.lengthscales_[0]
    mean, std = m.predict(X, return_std=True)
    assert np.abs(mean - y).max() < 0.1
    _, far = m.predict(X + 3.0, return_std=True)
    assert far.mean() > 5 * std.mean()
    assert lengthscale_prior(4)[0] == pytest.approx(math.sqrt(2) + 0.5 * math.log(4))
