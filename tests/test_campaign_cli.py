"""`matforge campaign ...` round trip and `matforge benchmark campaign` on a tiny setting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from matforge.cli.campaign import app
from matforge.cli.campaign_benchmark import benchmark_command
from matforge.datasets import load_dataset

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "opv_blends.csv"


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def _invoke(runner, application, args):
    result = runner.invoke(application, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_formulation_round_trip_new_suggest_observe_status_report(tmp_path, runner):
    """The docs' example, offline: past blends → next batch → results → status → report."""
    past = pd.read_csv(EXAMPLE)
    db = tmp_path / "lab.db"
    out = _invoke(runner, app, ["new", "opv", "--from", EXAMPLE, "--target", "degradation min",
                                "--formulation", "pce10,p3ht,pcbm", "--db", db])
    assert f"{len(past)} past experiment(s)" in out
    nxt = tmp_path / "next.csv"
    _invoke(runner, app, ["suggest", "opv", "-n", "3", "-o", nxt, "--db", db])
    batch = pd.read_csv(nxt)
    assert len(batch) == 3 and {"suggestion_id", "pce10", "p3ht", "pcbm",
                                "degradation_mean", "degradation_std"} <= set(batch.columns)
    assert np.allclose(batch[["pce10", "p3ht", "pcbm"]].sum(axis=1), 1.0)
    from matforge.design.campaign import Campaign

    model = Campaign.load(db, "opv").batches()["model"].iloc[0]
    assert model["class"] == "GaussianProcessUQ" and model["n_train"] == [len(past)]
    # The lab measures them (here: the real blend nearest to each suggestion).
    truth = load_dataset("photo_pce10")
    truth = truth[truth["mat_4"] == 0]
    d = ((truth[["mat_1", "mat_2", "mat_3"]].to_numpy()[None]
          - batch[["pce10", "p3ht", "pcbm"]].to_numpy()[:, None]) ** 2).sum(-1)
    batch["degradation"] = truth["degradation"].to_numpy()[d.argmin(1)]
    results = tmp_path / "results.csv"
    batch[["suggestion_id", "pce10", "p3ht", "pcbm", "degradation"]].to_csv(results, index=False)
    out = _invoke(runner, app, ["observe", "opv", results, "--db", db])
    assert "3 result(s) recorded (3 answering suggestions" in out
    _invoke(runner, app, ["suggest", "opv", "-n", "2", "--db", db])
    out = _invoke(runner, app, ["status", "opv", "--json", "--db", db])
    status = json.loads(out)
    assert (status["observations"], status["answered"], status["pending"]) == (
        len(past) + 3, 3, 2)
    report = tmp_path / "report.html"
    _invoke(runner, app, ["report", "opv", "-o", report, "--db", db])
    text = report.read_text()
    assert "scatterternary" in text and "best so far" in text.lower()
    assert "cdn.plot.ly" not in text.split("</script>")[-1]  # plotly.js inlined, not fetched
    assert "Predicted vs observed" in text
    assert "opv" in _invoke(runner, app, ["list", "--db", db])


def test_list_shows_each_campaign_with_objectives_space_counts_and_time(tmp_path, runner):
    from matforge.errors import StoreError
    from matforge.store import Store

    db = tmp_path / "lab.db"
    missing = runner.invoke(app, ["list", "--db", str(db)])  # a mistyped path: no empty store
    assert isinstance(missing.exception, StoreError) and "no store at" in str(missing.exception)
    assert not db.exists()
    Store(db).close()
    out = _invoke(runner, app, ["list", "--db", db])
    assert "no campaigns in" in out
    past = pd.read_csv(EXAMPLE)
    _invoke(runner, app, ["new", "opv", "--from", EXAMPLE, "--target", "degradation min",
                          "--formulation", "pce10,p3ht,pcbm", "--db", db])
    _invoke(runner, app, ["new", "opv-band", "--from", EXAMPLE, "--target",
                          "degradation in [0.04, 0.06]",
                          "--formulation", "pce10,p3ht,pcbm", "--db", db])
    _invoke(runner, app, ["suggest", "opv", "-n", "2", "--db", db])

    from matforge.design.campaign import Campaign

    table = Campaign.overview(db)
    assert table["name"].tolist() == ["opv", "opv-band"]
    assert table["space"].tolist() == ["FormulationSpace"] * 2
    assert table["results"].tolist() == [len(past), len(past)]
    assert table["pending"].tolist() == [2, 0]
    assert table["objectives"].tolist() == [str(o) for o in (
        Campaign.load(db, "opv").objectives + Campaign.load(db, "opv-band").objectives)]
    assert table["created_at"].notna().all()

    # a terminal (rich's TTY_COMPATIBLE; piped output is TSV) wide enough that no cell wraps
    terminal = {"COLUMNS": "200", "TTY_COMPATIBLE": "1"}
    result = runner.invoke(app, ["list", "--db", str(db)], env=terminal)
    assert result.exit_code == 0, result.output
    out = result.output
    lines = out.splitlines()
    row = {name: next(ln for ln in lines if f" {name} " in ln) for name in ("opv", "opv-band")}
    assert "degradation" in row["opv"] and "0.04" in row["opv-band"]
    assert all(" Formulation " in ln and f" {len(past)} " in ln for ln in row.values())
    cells = [[c.strip() for c in ln.split("│")] for ln in row.values()]
    assert [c[5] for c in cells] == ["2", "0"]  # name, objectives, space, results, pending
    assert "created (UTC)" in out and str(pd.Timestamp.now("UTC").year) in row["opv"]


def _documented_step(tmp_path, runner):
    """README's workflow verbatim: the whole suggestion file handed back with a measured
    column added (batch, predictions and acquisition included)."""
    db = tmp_path / "lab.db"
    _invoke(runner, app, ["new", "opv", "--from", EXAMPLE, "--target", "degradation min",
                          "--formulation", "pce10,p3ht,pcbm", "--db", db])
    nxt = tmp_path / "next.csv"
    _invoke(runner, app, ["suggest", "opv", "-n", "4", "-o", nxt, "--db", db])
    batch = pd.read_csv(nxt)
    batch["degradation"] = [0.05, 0.04, 0.03, 0.02]
    batch.to_csv(nxt, index=False)
    out = _invoke(runner, app, ["observe", "opv", nxt, "--db", db])
    assert "4 result(s) recorded (4 answering suggestions, 0 unplanned)" in out
    return db


def test_observe_the_suggestion_file_then_report(tmp_path, runner):
    """Observing next.csv as documented records the blend and the measurement, not the
    suggestion file's predictions; history has one column per name and the report is written."""
    from matforge.design.campaign import Campaign

    db = _documented_step(tmp_path, runner)
    c = Campaign.load(db, "opv")
    observed = c._observations()
    assert all(set(d) == {"pce10", "p3ht", "pcbm"} for d in observed["design"])
    h = c.history()
    assert h.columns.is_unique
    assert sorted(h["batch"].tolist()) == [0] * 16 + [1] * 4
    report = tmp_path / "opv-report.html"
    out = _invoke(runner, app, ["report", "opv", "-o", report, "--db", db])
    assert "Predicted vs observed" in report.read_text()
    assert str(report) in out


def test_report_on_a_store_with_echoed_prediction_columns(tmp_path, runner):
    """Stores written before observe kept only the space's columns hold the suggestion file's
    batch, predictions and acquisition inside the observations' designs: they still report."""
    import sqlalchemy as sa

    from matforge.design.campaign import Campaign
    from matforge.store import Store
    from matforge.store import campaigns as tables

    db = _documented_step(tmp_path, runner)
    Obs = tables.campaign_observations
    with Store(db) as store, store.engine.begin() as conn:
        for row in conn.execute(sa.select(Obs.c.id, Obs.c.design)
                                .where(Obs.c.suggestion_id.is_not(None))).all():
            echoed = {**row.design, "batch": 1, "degradation_mean": 0.01,
                      "degradation_std": 0.02, "acquisition": 0.003}
            conn.execute(Obs.update().where(Obs.c.id == row.id).values(design=echoed))
    h = Campaign.load(db, "opv").history()
    assert h.columns.is_unique and "degradation_mean" not in h.columns
    assert sorted(h["batch"].tolist()) == [0] * 16 + [1] * 4
    report = tmp_path / "old.html"
    _invoke(runner, app, ["report", "opv", "-o", report, "--db", db])
    assert "Predicted vs observed" in report.read_text()


def test_cli_errors_name_the_problem(tmp_path, runner):
    from matforge.store import Store

    db = tmp_path / "lab.db"
    Store(db).close()  # a store without that campaign (a missing store is its own error)
    result = runner.invoke(app, ["suggest", "nope", "--db", str(db)])
    assert result.exit_code != 0 and "no campaign named 'nope'" in str(result.exception)
    result = runner.invoke(app, ["new", "x", "--from", str(EXAMPLE), "--target", "degradation min",
                                 "--db", str(db)])
    assert "exactly one of formula, features and formulation" in str(result.exception)


def test_benchmark_command_tiny_setting_writes_sane_json(tmp_path, runner):
    bench = typer.Typer()
    bench.command()(benchmark_command)
    out = tmp_path / "results"
    _invoke(runner, bench, ["--name", "photo_pce10", "--seeds", "2", "--batch", "1,3",
                            "--budget", "14", "--max-candidates", "120", "--out", out])
    entry = json.loads((out / "photo_pce10.json").read_text())
    info = entry["info"]
    assert info["n_candidates"] == 120 and info["budget"] == 14
    assert info["random_expected_top"] == pytest.approx(121 / (info["n_top"] + 1))
    assert set(entry["runs"]) == {"default@1", "default@3", "baseline@1", "random"}
    for run in entry["runs"].values():
        n = np.array(run["experiments_to_top"])
        assert len(n) == 2 and (n >= 1).all()
        assert run["acceleration_top"] == pytest.approx(info["random_expected_top"] / n.mean())
        curve = np.array(run["curve_mean"])
        assert len(curve) == 14 and (np.diff(curve) >= -1e-12).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"].startswith("matforge benchmark campaign --name photo_pce10")
    assert "default@1" in summary["summary"]["targets"]
    assert (out / "report.html").stat().st_size > 100_000


def test_benchmark_any_table(tmp_path, runner):
    bench = typer.Typer()
    bench.command()(benchmark_command)
    table = tmp_path / "dyes.csv"
    load_dataset("colors_bob").drop(columns=["flag"]).to_csv(table, index=False)
    out = tmp_path / "results"
    _invoke(runner, bench, ["--csv", table, "--target", "difference_to_green:min",
                            "--features", "red,orange,yellow,blue,green", "--seeds", "1",
                            "--batch", "2", "--budget", "14", "--strategies", "default,random",
                            "--no-html", "--out", out])
    entry = json.loads((out / "dyes.json").read_text())
    assert entry["info"]["objective"] == "difference_to_green min"
    assert entry["info"]["n_candidates"] == 241 and entry["info"]["n_top"] == 3
    assert set(entry["runs"]) == {"default@2", "random"}
    assert "| dyes | 241 | 3 |" in (out / "table.md").read_text()


def test_small_tables_are_refused_or_flagged():
    from matforge.design.benchmark import MIN_TABLE_ROWS, problem_from_table
    from matforge.errors import DesignSpaceError

    df = load_dataset("colors_bob").drop(columns=["flag"])
    cols = ["red", "orange", "yellow", "blue", "green"]
    with pytest.raises(DesignSpaceError, match=f"at least {MIN_TABLE_ROWS}"):
        problem_from_table(df.head(MIN_TABLE_ROWS - 1), "difference_to_green:min", features=cols)
    with pytest.warns(UserWarning, match="only 1 of 100 candidates count as top-1 %"):
        problem_from_table(df.head(100), "difference_to_green:min", features=cols)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        problem_from_table(df, "difference_to_green:min", features=cols)  # 241 rows, 3 top


def test_new_and_observe_read_european_csv_and_xlsx(tmp_path, runner):
    """A ';'-separated, decimal-comma export (said outright, or sniffed and said on stderr)
    and an .xlsx results file are read as the plain CSV would be."""
    from matforge.design.campaign import Campaign

    past = pd.read_csv(EXAMPLE)
    european = tmp_path / "past.csv"
    past.to_csv(european, sep=";", decimal=",", index=False)
    assert "0,4;" in european.read_text()
    for name, extra in (("given", ["--sep", ";", "--decimal", ","]), ("sniffed", [])):
        db = tmp_path / f"{name}.db"
        result = runner.invoke(app, ["new", "opv", "--from", str(european), "--target",
                                     "degradation min", "--formulation", "pce10,p3ht,pcbm",
                                     "--db", str(db), *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert ("decimal commas" in result.stderr) == (name == "sniffed")
        h = Campaign.load(db, "opv").history()
        np.testing.assert_allclose(h[["pce10", "p3ht", "pcbm", "degradation"]].to_numpy(),
                                   past.to_numpy())
    batch = Campaign.load(db, "opv").suggest(2)
    results = tmp_path / "results.xlsx"
    batch[["suggestion_id"]].assign(degradation=[0.01, 0.02]).to_excel(results, index=False)
    out = _invoke(runner, app, ["observe", "opv", results, "--db", db])
    assert "2 result(s) recorded (2 answering suggestions" in out


def test_formula_pool_keeps_sodium_nitride(tmp_path, runner):
    """The formula NaN (sodium nitride) in a pool and in a results file is a formula, not a
    missing value."""
    from matforge.design.campaign import Campaign

    data = tmp_path / "data.csv"
    data.write_text("formula,gap\nNaCl,8.5\nNaN,\nNa2O,\nKCl,8.4\n")
    db = tmp_path / "lab.db"
    _invoke(runner, app, ["new", "na", "--from", data, "--formula", "formula",
                          "--target", "gap max", "--db", db])
    c = Campaign.load(db, "na")
    assert sorted(c.space.df["formula"]) == ["Na2O", "NaN"]
    results = tmp_path / "results.csv"
    results.write_text("formula,gap\nNaN,1.1\n")
    out = _invoke(runner, app, ["observe", "na", results, "--db", db])
    assert "1 result(s) recorded" in out
    assert "NaN" in Campaign.load(db, "na").history()["formula"].tolist()


def test_benchmark_csv_goes_through_the_table_reader(tmp_path, runner, monkeypatch):
    import matforge.design.benchmark as benchmark

    seen = {}

    def capture(df, target, **kwargs):
        seen["df"] = df
        raise typer.Exit(0)

    monkeypatch.setattr(benchmark, "problem_from_table", capture)
    bench = typer.Typer()
    bench.command()(benchmark_command)
    table = tmp_path / "dyes.tsv"
    table.write_text("red\tgreen\tscore\n0,5\t1,5\t2,25\n")
    _invoke(runner, bench, ["--csv", table, "--target", "score:min", "--features", "red,green",
                            "--decimal", ","])
    assert seen["df"].to_dict("list") == {"red": [0.5], "green": [1.5], "score": [2.25]}


def test_new_precision_rounds_the_suggestions_and_says_so(tmp_path, runner):
    from decimal import Decimal

    db = tmp_path / "lab.db"
    args = ["--from", EXAMPLE, "--target", "degradation min", "--formulation",
            "pce10,p3ht,pcbm", "--db", db]
    out = _invoke(runner, app, ["new", "opv", *args])
    assert "suggestions rounded to: amounts 0.001" in out  # the default, said
    out = _invoke(runner, app, ["new", "coarse", *args, "--precision", "0.05"])
    assert "suggestions rounded to: amounts 0.05" in out
    nxt = tmp_path / "next.csv"
    _invoke(runner, app, ["suggest", "coarse", "-n", "4", "-o", nxt, "--db", db])
    for line in nxt.read_text().splitlines()[1:]:  # as written in the file the lab reads
        amounts = [Decimal(v) for v in line.split(",")[2:5]]
        assert sum(amounts) == 1 and all(a % Decimal("0.05") == 0 for a in amounts), line
    result = runner.invoke(app, ["new", "bad", *map(str, args), "--precision", "0.003"])
    assert "does not divide the total 1" in str(result.exception)
    result = runner.invoke(app, ["new", "bad", *map(str, args), "--precision", "pce10=0.01"])
    assert "share one step" in str(result.exception)
