"""Rewards, the design methods (REINVENT agent, genetic algorithm, best-of-N, random) and the
`matforge generate` commands."""

import math

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from matforge.generate.reward import Goal, Reward, parse_goals
from matforge.generate.tokens import GenerateError, integer_counts

runner = CliRunner()


class OxygenShare:
    """A synthetic property model: the atomic fraction of oxygen, with a fixed std."""

    def predict(self, X, return_std=False):
        mean = np.array(
            [integer_counts(f).get("O", 0) / sum(integer_counts(f).values()) for f in X]
        )
        return (mean, np.full(len(mean), 0.05)) if return_std else mean


def test_goals_parse_and_score():
    assert parse_goals("band_gap in [1.0, 1.8]") == [Goal("band_gap", 1.0, 1.8)]
    assert parse_goals("1 <= band_gap <= 2 and e_form <= -0.5") == [
        Goal("band_gap", 1.0, 2.0),
        Goal("e_form", hi=-0.5),
    ]
    assert parse_goals("band_gap >= 5")[0].lo == 5 and math.isinf(parse_goals("band_gap > 5")[0].hi)
    assert parse_goals("maximize bulk_modulus")[0].direction == 1
    g = Goal("x", 1.0, 2.0)
    p = g.probability(np.array([1.5, 1.5, 10.0, np.nan]), np.array([1e-6, 10.0, 0.1, 1.0]))
    assert p[0] == pytest.approx(1.0) and 0 < p[1] < 0.05 and p[2] < 1e-6 and p[3] == 0
    assert g.hit(np.array([1.0, 2.0, 2.1, np.nan])).tolist() == [True, True, False, False]
    with pytest.raises(GenerateError, match="impossible window"):
        parse_goals("band_gap in [1.8, 1.0]")
    with pytest.raises(GenerateError, match="cannot read the goal"):
        parse_goals("band_gap is large")
    with pytest.raises(GenerateError, match="once"):
        parse_goals("band_gap >= 1 and band_gap <= 2")


def test_reward_gates_cost_no_model_call():
    with pytest.raises(GenerateError, match="no model was given for it"):
        Reward("band_gap >= 1", {"bulk_modulus": OxygenShare()})
    with pytest.raises(GenerateError, match="unknown element"):
        Reward("o >= 0.5", {"o": OxygenShare()}, forbidden=["Xx"])
    r = Reward("o >= 0.5", {"o": OxygenShare()}, known=["Fe2O3"], forbidden=["Pb"],
               max_distance=None)  # fmt: skip
    t = r(["Fe2O3", "Fe4O6", "PbO", "NaCl2", "MgO", "Li2O", "MgO"])
    assert t["gate"].tolist() == ["known", "known", "forbidden element", "not charge-balanced",
                                  "", "", ""]  # fmt: skip
    assert r.calls == 2  # MgO and Li2O, MgO only once
    assert t["reward"].iloc[4] == pytest.approx(0.5, abs=1e-6)  # 50 % O, right at the bound
    assert t["reward"].iloc[5] < 0.5 and (t["reward"].iloc[:4] == 0).all()
    r(["MgO"])
    assert r.calls == 2  # cached


@pytest.fixture(scope="module")
def prior():
    from matforge.generate.defaults import load_default

    return load_default("rnn")


def test_reinforcement_learning_beats_sampling_the_prior(prior):
    from matforge.generate.optimize import optimize

    def run(method):
        r = Reward("o >= 0.75", {"o": OxygenShare()}, max_distance=None)
        return optimize(r, method, budget=400, prior=prior, seed=0, batch_size=64)

    before = prior.sample(50, seed=3)
    rl, bon = run("rl"), run("best-of-n")
    assert prior.sample(50, seed=3) == before  # the agent learned on a copy
    r = Reward("o >= 0.75", {"o": OxygenShare()}, max_distance=None)
    assert optimize(r, "rl", budget=30, prior=prior).calls == 30  # a second run learns too
    assert rl.calls == 400 and bon.calls == 400  # the budget is spent, never exceeded
    late_rl = rl.table[rl.table["gate"] == ""]["reward"].tail(100).mean()
    all_bon = bon.table[bon.table["gate"] == ""]["reward"].mean()
    assert late_rl > all_bon + 0.1  # the agent learned to write oxygen-rich formulas
    assert rl.top(50)["reward"].mean() >= bon.top(50)["reward"].mean()
    assert rl.history["best"].is_monotonic_increasing


def test_genetic_algorithm_and_random_respect_restrictions():
    from matforge.generate.corpus import load_corpus
    from matforge.generate.optimize import optimize

    ref = load_corpus(valid_only=True)[:5000]
    for method in ("ga", "random"):
        r = Reward("o >= 0.6", {"o": OxygenShare()}, required=["O"], forbidden=["Pb"],
                   max_distance=None, known=ref)  # fmt: skip
        res = optimize(r, method, budget=300, reference=ref, seed=1)
        assert res.calls == 300
        scored = res.table[res.table["gate"] == ""]
        assert all(
            "O" in integer_counts(f) and "Pb" not in integer_counts(f) for f in scored["formula"]
        )
        assert not set(scored["formula"]) & set(ref)
    with pytest.raises(GenerateError, match="method must be"):
        optimize(r, "annealing")


@pytest.fixture(scope="module")
def app():
    from matforge.cli import generate

    app = typer.Typer()
    app.add_typer(generate.app, name="generate")
    return app


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from matforge.datasets import load_dataset
    from matforge.models.presets import make_model
    from matforge.models.registry import save_model

    root = tmp_path_factory.mktemp("registry")
    df = load_dataset("matbench_expt_gap").sample(800, random_state=0)
    model = make_model("small", random_state=0, target="band_gap", unit="eV")
    save_model(model.fit(df["formula"].tolist(), df["gap_expt"].to_numpy()), "gap", root)
    return root


def test_cli_sample_optimize_and_train(app, registry, tmp_path, monkeypatch):
    import matforge.models.registry as reg

    monkeypatch.setattr(reg, "registry_root", lambda root=None: registry)
    out = tmp_path / "gen.csv"
    res = runner.invoke(app, ["generate", "sample", "-n", "300", "--elements-in", "Ti,O",
                              "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    gen = pd.read_csv(out, keep_default_na=False)
    assert {"formula", "count", "cn_eb", "novel", "nearest_known", "nearest_distance"} <= set(gen)
    assert gen["count"].sum() == 300 and gen["formula"].is_unique
    assert all({"Ti", "O"} <= set(integer_counts(f)) for f in gen["formula"])
    designs = tmp_path / "designs.csv"
    res = runner.invoke(app, ["generate", "optimize", "--reward", "band_gap in [1.0, 1.8]",
                              "--model-ref", "band_gap=gap", "--method", "ga", "--budget", "150",
                              "--top", "20", "-o", str(designs)])  # fmt: skip
    assert res.exit_code == 0, res.output
    d = pd.read_csv(designs, keep_default_na=False)
    assert len(d) == 20 and d["reward"].is_monotonic_decreasing
    assert {"band_gap", "band_gap_std", "p_band_gap", "distance", "novel", "nearest_known"} <= set(
        d
    )
    assert d["novel"].all() and d["cn_eb"].all()
    res = runner.invoke(
        app, ["generate", "optimize", "--reward", "band_gap >= 2", "--budget", "10"]
    )
    assert isinstance(res.exception, GenerateError) and "--model-ref band_gap=MODEL" in str(
        res.exception
    )
    res = runner.invoke(app, ["generate", "optimize", "--reward", "band_gap >= 2",
                              "--model-ref", "band_gap=nope", "--budget", "10"])  # fmt: skip
    assert res.exit_code != 0 and "nope" in str(res.exception)
    res = runner.invoke(app, ["generate", "sample", "-n", "5", "--elements-in", "Xx"])
    assert isinstance(res.exception, GenerateError) and "unknown element" in str(res.exception)
    csv = tmp_path / "mine.csv"
    pd.DataFrame(
        {"formula": ["Fe2O3", "TiO2", "NaCl", "Li2O", "MgO", "CaTiO3", "NaCl2", "x!"] * 5}
    ).to_csv(csv)
    model = tmp_path / "mine.pt"
    res = runner.invoke(
        app, ["generate", "train", "--csv", str(csv), "--epochs", "1", "-o", str(model)]
    )
    assert res.exit_code == 0, res.output
    assert "6 distinct compositions" in res.output  # NaCl2 is not charge-balanced, x! no formula
    res = runner.invoke(app, ["generate", "sample", "--weights", str(model), "-n", "20", "-o",
                              str(tmp_path / "g.csv")])  # fmt: skip
    assert res.exit_code == 0, res.output


def test_cli_trains_and_samples_a_conditioned_model(app, tmp_path):
    from matforge.generate.rnn import FormulaLM

    csv = tmp_path / "gaps.csv"
    rows = [("Fe2O3", 2.1), ("TiO2", 3.0), ("NaCl", 8.5), ("Li2O", 7.9), ("MgO", 7.8),
            ("CaTiO3", 3.5), ("ZnO", 3.3), ("GaAs", 1.4), ("InP", 1.3), ("CdTe", 1.5)]  # fmt: skip
    pd.DataFrame(rows * 4, columns=["formula", "gap"]).to_csv(csv, index=False)
    model = tmp_path / "cond.pt"
    args = ["generate", "train", "--csv", str(csv), "--condition-on", "gap=band_gap",
            "--bins", "1.8,5", "--unit", "eV", "--epochs", "2", "-o", str(model)]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "10 of 10 compositions labelled" in res.output
    lm = FormulaLM.load(model)
    assert lm.condition.name == "band_gap" and lm.condition.edges == (1.8, 5.0)
    out = tmp_path / "cond.csv"
    res = runner.invoke(app, ["generate", "sample", "--weights", str(model), "-n", "30",
                              "--condition", "band_gap=1.8:5", "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out, keep_default_na=False)["count"].sum() == 30
    res = runner.invoke(app, ["generate", "sample", "--weights", str(model), "-n", "5",
                              "--condition", "band_gap=1:2"])  # fmt: skip
    assert isinstance(res.exception, GenerateError) and "not one of the model's bins" in str(
        res.exception
    )
    for bad, message in (
        (["--condition-on", "nope", "--bins", "1"], "no column 'nope'"),
        (["--condition-on", "gap"], "needs --bins"),
        (["--condition-on", "gap", "--bins", "a,b"], "--bins must be numbers"),
        (["--bins", "1,2"], "--bins needs --condition-on"),
    ):
        res = runner.invoke(app, ["generate", "train", "--csv", str(csv), "--epochs", "1", *bad])
        assert isinstance(res.exception, GenerateError) and message in str(res.exception), bad
    res = runner.invoke(app, ["generate", "train", "--condition-on", "gap", "--bins", "1"])
    assert isinstance(res.exception, GenerateError) and "needs --csv or --dataset" in str(
        res.exception
    )


@pytest.mark.slow
def test_quick_design_benchmark_with_conditioned_generation():
    """The design part end to end (oracle and judge on matbench_mp_gap, a conditioned language
    model of one epoch): every run scores novel compositions within its budget."""
    from matforge.generate.benchmark import run_benchmark

    doc = run_benchmark(quick=True, part="design", methods=("random", "conditioned"))
    runs = doc["design"]["runs"]
    assert set(runs) == {f"{t}/{m}/0" for t in ("window", "rare") for m in ("random", "conditioned")}
    for row in runs.values():
        assert 0 < row["calls"] <= 300 and row["novelty"] == 1.0
        assert 0 <= row["judge_hit_rate"] <= 1
    assert doc["conditioned_train_seconds"] > 0
