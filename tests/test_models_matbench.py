"""Matbench runner, models CLI (train / predict / report) and the models behind `auto`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

REGRESSION_FOLD_KEYS = {
    "fold",
    "n_train",
    "n_test",
    "mae",
    "rmse",
    "r2",
    "coverage_68",
    "coverage_95",
    "miscalibration_area",
    "spearman_error_std",
    "fit_seconds",
    "predict_seconds",
}
TOP_KEYS = {
    "schema",
    "task",
    "task_type",
    "target",
    "unit",
    "metric",
    "model",
    "model_class",
    "feature_set",
    "n_features",
    "folds_run",
    "complete",
    "folds",
    "mean",
    "std",
    "goal",
    "leaderboard",
    "matforge_version",
    "date",
    "machine",
}


@pytest.fixture(scope="module")
def steels_result(tmp_path_factory):
    from matforge.models.matbench import run_task, write_result

    seen, partials = [], []
    out = tmp_path_factory.mktemp("matbench")

    def checkpoint(partial):
        partials.append(partial)
        write_result(partial, out)

    result = run_task(
        "matbench_steels",
        "small",
        folds=[0, 1],
        on_fold_end=lambda task, k, row: seen.append((task, k)),
        on_partial=checkpoint,
    )
    assert [p["folds_run"] for p in partials] == [[0]]  # written after fold 0, before fold 1
    assert partials[0]["complete"] is False and partials[0]["folds"][0] == result["folds"][0]
    path = write_result(result, out)
    return result, path, seen


def test_interrupted_run_resumes_from_its_written_folds(steels_result, tmp_path):
    from matforge.errors import MatforgeError
    from matforge.models.matbench import resumable_folds, run_task, write_result

    result, _, _ = steels_result
    then = "2020-01-01T00:00:00+00:00"
    partial = {**result, "folds": result["folds"][:1], "folds_run": [0], "date": then}
    path = write_result(partial, tmp_path)
    assert resumable_folds(path, "auto", 0) == []  # another model: nothing to resume
    assert resumable_folds(path, "small", 1) == []  # another seed
    done = resumable_folds(path, "small", 0)
    assert [r["fold"] for r in done] == [0]
    started = []
    resumed = run_task(
        "matbench_steels",
        "small",
        folds=[0],
        done=done,
        on_fold_start=lambda task, k, row: started.append(k),
    )
    assert started == []  # fold 0 was not refitted
    assert resumed["folds"] == result["folds"][:1]
    assert resumed["model_class"] == result["model_class"]
    assert resumed["mean"]["mae"] == result["folds"][0]["mae"]
    assert resumed["date"] == then  # nothing refitted: the results keep their date
    # folds of a recipe whose meaning has changed since (same name, other model) are refused
    stale = [{**r, "_spec": {**r["_spec"], "model_class": "sklearn.dummy.DummyRegressor"}}
             for r in done]  # fmt: skip
    with pytest.raises(MatforgeError, match="fitted with sklearn.dummy.DummyRegressor"):
        run_task("matbench_steels", "small", folds=[0], done=stale)


def test_matbench_result_schema(steels_result):
    result, path, seen = steels_result
    assert seen == [("matbench_steels", 0), ("matbench_steels", 1)]
    on_disk = json.loads(path.read_text())
    assert on_disk == json.loads(json.dumps(result))  # strict JSON, no NaN
    assert TOP_KEYS <= set(on_disk)
    assert on_disk["schema"] == "matforge.matbench/1"
    assert on_disk["folds_run"] == [0, 1] and on_disk["complete"] is False
    assert on_disk["unit"] == "MPa" and on_disk["metric"] == "mae"
    assert [f["fold"] for f in on_disk["folds"]] == [0, 1]
    for fold in on_disk["folds"]:
        assert REGRESSION_FOLD_KEYS <= set(fold)
        assert fold["n_train"] + fold["n_test"] == 312
    assert {e["model"] for e in on_disk["leaderboard"]} >= {"Automatminer", "MODNet"}
    assert on_disk["goal"]["op"] == "<=" and on_disk["goal"]["value"] == 95.0


def test_matbench_metrics_are_sane(steels_result):
    from matforge.datasets import load_dataset, matbench_folds

    result, _, _ = steels_result
    y = load_dataset("matbench_steels")["yield_strength"].to_numpy()
    for fold in result["folds"]:
        train, test = matbench_folds("matbench_steels")[fold["fold"]]
        dummy_mae = np.mean(np.abs(y[test] - y[train].mean()))
        assert 20 < fold["mae"] < 0.8 * dummy_mae  # learns something, not impossibly well
        assert fold["rmse"] >= fold["mae"]
        assert 0.3 < fold["r2"] <= 1
        assert 0.5 <= fold["coverage_68"] <= 1 and 0.75 <= fold["coverage_95"] <= 1
        assert fold["coverage_95"] >= fold["coverage_68"]
        assert 0 <= fold["miscalibration_area"] <= 0.5
        assert fold["fit_seconds"] > 0 and fold["predict_seconds"] > 0
    for k in ("mae", "coverage_95"):
        assert np.isfinite(result["mean"][k])


def test_summary_markdown_lists_published_figures(steels_result):
    _, path, _ = steels_result
    text = (path.parent / "table.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| matbench_steels"))
    assert "MODNet 87.8" in row and "TPOT-Mat 79.95" in row
    assert re.search(r"\| \d+\.\d ± \d+\.\d \|", row)


def test_classification_runner_reports_roc_auc():
    from matforge.models.matbench import run_task

    result = run_task("matbench_expt_is_metal", "small", folds=[0])
    fold = result["folds"][0]
    assert result["metric"] == "roc_auc"
    assert 0.8 < fold["roc_auc"] <= 1.0
    assert "coverage_95" not in fold


def test_unknown_fold_is_an_error():
    from matforge.errors import MatforgeError
    from matforge.models.matbench import run_task

    with pytest.raises(MatforgeError, match="fold 7 does not exist"):
        run_task("matbench_steels", "small", folds=[7])


# -- CLI --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli():
    import typer
    from typer.testing import CliRunner

    from matforge.cli.models import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def _train_steels(cli, home: str):
    """A small model of matbench_steels named "steels" in ``home``; the CLI's result."""
    res = cli("train", "--dataset", "matbench_steels", "--model", "small", "--name", "steels",
              "--home", home)  # fmt: skip
    assert res.exit_code == 0, res.output
    return res


def test_train_predict_report_round_trip(cli, tmp_path):
    import pandas as pd

    home = str(tmp_path / "home")
    res = _train_steels(cli, home)
    assert "mae" in res.output and "coverage_95" in res.output
    assert (tmp_path / "home" / "steels" / "metadata.json").is_file()

    inp = tmp_path / "in.csv"
    pd.DataFrame(
        {"formula": ["Fe0.7Cr0.18Ni0.12", "Xx2O3", "Fe0.98C0.02"], "id": [1, 2, 3]}
    ).to_csv(inp, index=False)
    out = tmp_path / "preds.csv"
    res = cli("predict", str(inp), "--model", "steels", "-o", str(out), "--home", home)
    assert res.exit_code == 0, res.output
    preds = pd.read_csv(out, keep_default_na=False)
    assert list(preds.columns) == [
        "formula",
        "id",
        "yield_strength_mean",
        "yield_strength_std",
        "domain_distance",
        "in_domain",
        "error",
    ]
    assert preds.loc[1, "yield_strength_mean"] == "" and "Xx" in preds.loc[1, "error"]
    good = preds.loc[[0, 2]]
    assert (good["error"] == "").all()
    assert (good["yield_strength_mean"].astype(float) > 100).all()
    assert (good["yield_strength_std"].astype(float) > 0).all()
    assert "line 3" in res.output  # the bad row, reported by its CSV line

    html_path = tmp_path / "report.html"
    res = cli("report", "model", "steels", "-o", str(html_path), "--home", home)
    assert res.exit_code == 0, res.output
    text = html_path.read_text()
    assert "Parity" in text and "Calibration" in text and "Residuals" in text
    assert re.search(r"<td>mae</td><td>[\d.]+</td><td>MPa</td>", text)  # metrics with units
    # plotly.js is inlined: no external script at all (the bundle names a CDN only as the
    # default topojson URL of geo maps, which these figures do not use)
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)
    assert text.count("<script") >= 3 and len(text) > 1_000_000


def test_train_from_csv_reports_bad_rows(cli, tmp_path):

    from matforge.datasets import load_dataset

    df = load_dataset("matbench_expt_is_metal").iloc[:300][["formula", "is_metal"]].copy()
    df["is_metal"] = df["is_metal"].astype(int)
    df.loc[5, "formula"] = "NotAFormula!"
    csv = tmp_path / "metals.csv"
    df.rename(columns={"formula": "composition"}).to_csv(csv, index=False)
    res = cli(
        "train",
        "--csv",
        str(csv),
        "--formula-col",
        "composition",
        "--target",
        "is_metal",
        "--model",
        "small",
        "--name",
        "metal",
        "--home",
        str(tmp_path),
    )
    assert res.exit_code == 0, res.output
    assert "line 7" in res.output  # row 5 + header + 1-based
    assert "roc_auc" in res.output
    meta = json.loads((tmp_path / "metal" / "metadata.json").read_text())
    assert meta["task"] == "classification" and meta["n_train"] <= 299

    html_path = tmp_path / "metal.html"
    res = cli("report", "model", "metal", "-o", str(html_path), "--home", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "ROC curve" in html_path.read_text()


def test_train_refuses_existing_name_without_force(cli, tmp_path):
    from matforge.errors import ModelRegistryError

    args = [
        "train",
        "--dataset",
        "matbench_steels",
        "--model",
        "small",
        "--name",
        "s",
        "--home",
        str(tmp_path),
    ]
    assert cli(*args).exit_code == 0
    with pytest.raises(ModelRegistryError, match="already exists"):
        cli(*args)
    assert cli(*args, "--force").exit_code == 0


def test_predict_formulas_from_the_command_line_with_units(cli, tmp_path, monkeypatch):
    import pandas as pd

    home = str(tmp_path / "home")
    res = _train_steels(cli, home)
    formulas = ["Fe0.7Cr0.18Ni0.12", "Xx2O3", "Fe0.98C0.02"]
    inp = tmp_path / "in.csv"
    pd.DataFrame({"formula": formulas}).to_csv(inp, index=False)
    res = cli(
        "predict", str(inp), "--model", "steels", "-o", str(tmp_path / "a.csv"), "--home", home
    )
    assert res.exit_code == 0, res.output
    from_csv = pd.read_csv(tmp_path / "a.csv", keep_default_na=False)

    out = tmp_path / "b.csv"
    res = cli("predict", "--model", "steels", *formulas, "-o", str(out), "--home", home)
    assert res.exit_code == 0, res.output
    assert "argument 2" in res.output and "Xx" in res.output  # the bad one, by its position
    preds = pd.read_csv(out, keep_default_na=False)
    assert list(preds.columns) == [
        "formula",
        "yield_strength_mean [MPa]",
        "yield_strength_std [MPa]",
        "domain_distance",
        "in_domain",
        "error",
    ]
    assert preds["formula"].tolist() == formulas
    assert preds["yield_strength_mean [MPa]"].tolist() == from_csv["yield_strength_mean"].tolist()
    assert preds["yield_strength_std [MPa]"].tolist() == from_csv["yield_strength_std"].tolist()
    assert preds.loc[1, "yield_strength_mean [MPa]"] == "" and "Xx" in preds.loc[1, "error"]

    # no -o: a table on stdout (a terminal's: piped output is TSV), headed with the unit
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    res = cli("predict", "--model", "steels", "Fe0.7Cr0.18Ni0.12", "NiO", "--home", home)
    assert res.exit_code == 0, res.output
    assert "[MPa]" in res.output and "Fe0.7Cr0.18Ni0.12" in res.output and "NiO" in res.output
    assert f"{float(from_csv.loc[0, 'yield_strength_mean']):.4g}" in res.output
    assert "domain_distance" in res.output and "in_domain" in res.output

    monkeypatch.delenv("TTY_COMPATIBLE")
    # a CSV and formulas together, or a CSV without -o, are refused
    assert cli("predict", "--model", "steels", str(inp), "NiO", "--home", home).exit_code == 2
    assert cli("predict", "--model", "steels", str(inp), "--home", home).exit_code == 2


def test_train_shows_metric_units_and_a_progress_bar(cli, tmp_path):
    res = _train_steels(cli, str(tmp_path))
    rows = {line.split()[1]: line for line in res.stdout.splitlines() if line.startswith("│")}
    assert "MPa" in rows["mae"] and "MPa" in rows["rmse"]  # the target's unit
    assert "—" in rows["r2"] and "MPa" not in rows["r2"]  # dimensionless
    assert "fraction" in rows["coverage_95"] and "nats" in rows["nll"]
    assert "applicability domain" in res.stderr and "1/1" in res.stderr  # the bar, on stderr
    assert "applicability domain" not in res.stdout


def test_predict_flags_rows_outside_the_training_domain(cli, tmp_path):
    """A steels model predicts ammonium sulphate, but marks it out of domain and warns."""
    import pandas as pd

    from matforge.datasets import load_dataset

    home = str(tmp_path / "home")
    _train_steels(cli, home)
    steel = load_dataset("matbench_steels")["formula"].iloc[0]  # a training composition
    out = tmp_path / "b.csv"
    res = cli("predict", "--model", "steels", "(NH4)2SO4", steel, "Xx2", "-o", str(out),
              "--home", home)  # fmt: skip
    assert res.exit_code == 0, res.output
    preds = pd.read_csv(out, keep_default_na=False)
    assert preds["in_domain"].tolist() == ["False", "True", ""]  # no prediction: no verdict
    assert float(preds.loc[0, "domain_distance"]) > 50 > float(preds.loc[1, "domain_distance"])
    warning = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1
    assert "1 of 2 predicted rows" in warning[0] and "extrapolations" in warning[0]
    assert re.search(r"domain_distance > \d", warning[0])  # the threshold

    inp = tmp_path / "in.csv"
    pd.DataFrame({"formula": ["(NH4)2SO4", steel], "id": [1, 2]}).to_csv(inp, index=False)
    res = cli("predict", str(inp), "--model", "steels", "-o", str(tmp_path / "a.csv"),
              "--home", home)  # fmt: skip
    from_csv = pd.read_csv(tmp_path / "a.csv")
    assert from_csv["in_domain"].tolist() == [False, True]
    assert "1 of 2 predicted rows" in res.stderr

    res = cli("predict", "--model", "steels", steel, "--home", home)  # all in domain: silent
    assert res.exit_code == 0 and "warning" not in res.stderr
    assert "True" in res.stdout
