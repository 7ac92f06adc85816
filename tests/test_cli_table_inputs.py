"""`matforge train --csv` and `matforge predict` read the same table files as ingest and the
campaign commands: any common CSV dialect, .tsv, .xlsx (issue #16 section 6)."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from matforge.cli.main import app
from matforge.datasets import load_dataset


def _run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_train_from_xlsx_and_predict_european_csv_and_xlsx(tmp_path):
    home = tmp_path / "home"
    steels = load_dataset("matbench_steels").head(120)[["formula", "yield_strength"]]
    book = tmp_path / "steels.xlsx"
    steels.to_excel(book, index=False, sheet_name="steels")
    _run("train", "--csv", book, "--sheet", "steels", "--target", "yield_strength",
         "--unit", "MPa", "--model", "small", "--name", "steels", "--home", home)  # fmt: skip

    formulas = ["Fe0.7Cr0.18Ni0.12", "Fe0.98C0.02"]
    plain = tmp_path / "in.csv"
    pd.DataFrame({"formula": formulas, "id": [1, 2]}).to_csv(plain, index=False)
    _run("predict", plain, "--model", "steels", "-o", tmp_path / "a.csv", "--home", home)
    expected = pd.read_csv(tmp_path / "a.csv")

    eu = tmp_path / "in_eu.csv"
    eu.write_text("formula;id;thickness (mm)\nFe0.7Cr0.18Ni0.12;1;2,5\nFe0.98C0.02;2;0,8\n")
    res = _run("predict", eu, "--model", "steels", "-o", tmp_path / "b.csv", "--home", home)
    assert "';'-separated" in res.output  # what was assumed, said
    got = pd.read_csv(tmp_path / "b.csv")
    assert got["thickness (mm)"].tolist() == [2.5, 0.8]
    pd.testing.assert_series_equal(got["yield_strength_mean"], expected["yield_strength_mean"])

    xl = tmp_path / "in.xlsx"
    pd.DataFrame({"formula": formulas}).to_excel(xl, index=False)
    _run("predict", xl, "--model", "steels", "-o", tmp_path / "c.csv", "--home", home)
    got = pd.read_csv(tmp_path / "c.csv")
    pd.testing.assert_series_equal(got["yield_strength_mean"], expected["yield_strength_mean"])
