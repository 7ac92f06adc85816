"""`matforge ingest` and `matforge export`, run as the console script runs them (in-process)."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from matforge.store import Store


@pytest.fixture
def matforge(monkeypatch, capsys):
    """Run ``matforge ARGS...`` through the console-script entry; return (status, out, err)."""
    from matforge.cli.main import run

    def call(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["matforge", *args])
        try:
            run()
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return status, out.out, out.err

    return call


def test_ingest_maps_columns_and_export_writes_both_formats(matforge, tmp_path):
    db = str(tmp_path / "lab.db")
    data = tmp_path / "moduli.csv"
    data.write_text("Composition,K,T\nFe,170000,300\nNi,180000,300\nXx2,1,300\n")
    status, out, err = matforge(
        "ingest", str(data), "--project", "alloys", "--property", "bulk_modulus", "--unit", "MPa",
        "--map", "Composition=formula", "--map", "K=value", "--map", "T=temperature_K",
        "--skip-invalid", "--db", db,
    )  # fmt: skip
    assert status == 0, err
    assert "2 of 3 rows of moduli.csv written to project 'alloys'" in out
    assert "1 rejected" in out and "moduli.rejects.csv" in out
    assert pd.read_csv(tmp_path / "moduli.rejects.csv")["line"].tolist() == [4]

    for name in ("out.csv", "out.parquet"):
        status, out, err = matforge(
            "export",
            "--project",
            "alloys",
            "--property",
            "bulk_modulus",
            "-o",
            str(tmp_path / name),
            "--db",
            db,
        )
        assert status == 0, err
        assert "exported 2 measurements" in out
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert back["value"].tolist() == pytest.approx([170.0, 180.0])
    assert set(back["unit"]) == {"GPa"}
    assert pd.read_csv(tmp_path / "out.csv")["formula"].tolist() == ["Fe", "Ni"]


def test_invalid_file_is_refused_whole_with_every_bad_line(matforge, tmp_path):
    db = str(tmp_path / "lab.db")
    data = tmp_path / "gaps.csv"
    data.write_text("formula,value\nSi,1.1\nSi2Q,1.0\nGe,abc\n")
    status, out, err = matforge(
        "ingest", str(data), "-p", "semis", "--property", "band_gap", "--unit", "eV", "--db", db
    )
    assert status == 2
    assert f"{data}, line 3, column 'formula'" in err
    assert f"{data}, line 4, column 'value': value 'abc' is not a number" in err
    with Store(db) as store:
        assert store.measurements().empty and store.projects().empty


def test_register_adds_both_commands_and_bad_map_is_a_usage_error(tmp_path):
    from matforge.cli.store import register

    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "ingest" in result.output and "export" in result.output

    data = tmp_path / "x.csv"
    data.write_text("formula,value\nSi,1.1\n")
    args = ["ingest", str(data), "-p", "p", "--property", "band_gap", "--unit", "eV"]
    result = CliRunner().invoke(app, [*args, "--map", "novalue", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "COLUMN=FIELD" in result.output


def test_read_commands_do_not_create_a_store_at_a_mistyped_path(tmp_path):
    """export and the campaign commands that read refuse a SQLite file that does not exist
    (a typo in --db) instead of answering from a new, empty store; writers still create one."""
    from typer.testing import CliRunner

    from matforge.cli.campaign import app as campaign_app
    from matforge.cli.main import app
    from matforge.errors import StoreError
    from matforge.store import Store

    runner = CliRunner()
    typo = tmp_path / "lba.db"
    res = runner.invoke(app, ["export", "-o", str(tmp_path / "out.csv"), "--db", str(typo)])
    assert isinstance(res.exception, StoreError) and f"no store at {typo}" in str(res.exception)
    for args in (["status", "opv"], ["report", "opv"], ["suggest", "opv"], ["list"]):
        res = runner.invoke(campaign_app, [*args, "--db", str(typo)])
        assert isinstance(res.exception, StoreError), (args, res.output)
    assert not typo.exists() and not (tmp_path / "out.csv").exists()
    with pytest.raises(StoreError, match="no store at"):
        Store(f"sqlite:///{typo}", create=False)
    Store(typo).close()  # a writer creates it
    assert typo.exists()
    Store(typo, create=False).close()  # and then it opens
    Store(":memory:", create=False).close()


def test_ingest_refuses_an_impossible_modulus_unless_allow_unphysical(matforge, tmp_path):
    db = str(tmp_path / "lab.db")
    data = tmp_path / "moduli.csv"
    data.write_text("formula,value\nFe2O3,210\nO3Ni,-5\n")
    args = ["ingest", str(data), "-p", "oxides", "--property", "bulk_modulus", "--unit", "GPa"]
    status, out, err = matforge(*args, "--db", db)
    assert status == 2
    assert f"{data}, line 3, column 'value': value -5 GPa is physically impossible" in err
    assert "non_positive_modulus" in err and "--allow-unphysical" in err
    status, out, err = matforge(*args, "--allow-unphysical", "--db", db)
    assert status == 0, err
    assert "2 of 2 rows" in out and "1 outside the physical range of bulk_modulus" in out
    status, out, err = matforge("export", "-o", str(tmp_path / "out.csv"), "--db", db)
    assert status == 0, err
    back = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert back[["formula", "formula_as_ingested", "flag"]].values.tolist() == [
        ["Fe2O3", "Fe2O3", ""],
        ["NiO3", "O3Ni", "non_positive_modulus"],
    ]


def test_ingest_reads_european_csv_xlsx_and_tsv(matforge, tmp_path):
    db = str(tmp_path / "lab.db")
    eu = tmp_path / "gaps_eu.csv"
    eu.write_text("formula;value;T (K)\nFe2O3;2,15;300,5\nNaN;-0,5;\n", encoding="utf-8")
    status, out, err = matforge("ingest", str(eu), "-p", "eu", "--property", "band_gap",
                                "--unit", "eV", "--db", db)  # fmt: skip
    assert status == 2 and "line 3" in err and "negative_band_gap" in err  # -0.5 eV, not "-0,5"
    eu.write_text("formula;value;T (K)\nFe2O3;2,15;300,5\nNaN;0,5;\n", encoding="utf-8")
    status, out, err = matforge("ingest", str(eu), "-p", "eu", "--property", "band_gap",
                                "--unit", "eV", "--db", db)  # fmt: skip
    assert status == 0, err
    assert "';'-separated, with decimal commas" in err and "2 of 2 rows" in out
    with Store(db) as store:
        got = store.measurements(project="eu").sort_values("value")
    assert got["value"].tolist() == [0.5, 2.15]
    assert got["formula_as_ingested"].tolist() == ["NaN", "Fe2O3"]  # sodium nitride, not missing
    assert json.loads(got["conditions"].iloc[1]) == {"T (K)": 300.5}  # a number, not "300,5"

    book = tmp_path / "gaps.xlsx"
    pd.DataFrame({"formula": ["ZnO", "GaN", "Xx"], "value": [3.3, 3.4, 1.0]}).to_excel(
        book, index=False, sheet_name="gaps"
    )
    status, out, err = matforge("ingest", str(book), "-p", "xl", "--property", "band_gap",
                                "--unit", "eV", "--sheet", "gaps", "--db", db)  # fmt: skip
    assert status == 2 and "line 4" in err and "'Xx'" in err  # the spreadsheet's row
    status, out, err = matforge("ingest", str(book), "-p", "xl", "--property", "band_gap",
                                "--unit", "eV", "--sheet", "gaps", "--skip-invalid", "--db", db)  # fmt: skip
    assert status == 0 and "2 of 3 rows" in out, err

    tsv = tmp_path / "gaps.tsv"
    tsv.write_text("formula\tvalue\nSi\t1.12\n")
    status, out, err = matforge("ingest", str(tsv), "-p", "tsv", "--property", "band_gap",
                                "--unit", "eV", "--db", db)  # fmt: skip
    assert status == 0 and "1 of 1 rows" in out, err


def test_ingest_refuses_absurd_amounts_and_too_wide_files_and_train_skips_them(matforge, tmp_path):
    """Issue #18: ``Zn1e308O`` was stored and then broke every training on the project."""
    db = str(tmp_path / "lab.db")
    data = tmp_path / "gaps.csv"
    data.write_text("formula,value\nSi,1.1\nZn1e308O,3.3\nGe,0.7\nZn2O1e307,3.0\n")
    args = ["ingest", str(data), "-p", "semis", "--property", "band_gap", "--unit", "eV"]
    status, out, err = matforge(*args, "--db", db)
    assert status == 2
    assert f"{data}, line 3, column 'formula': 'Zn1e308O': amount '1e308'" in err
    assert f"{data}, line 5, column 'formula': 'Zn2O1e307'" in err
    assert "more than 1,000,000 atoms per formula unit" in err
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(["formula", "value", *(f"c{j}" for j in range(1500))]) + "\n")
    status, out, err = matforge("ingest", str(wide), *args[2:], "--db", db)
    assert status == 2 and "the header has 1,502 columns; at most 1,000 are allowed" in err
    with Store(db) as store:
        assert store.measurements().empty

    rows = [("NaCl", 8.5), ("KCl", 8.4), ("MgO", 7.8), ("ZnO", 3.3), ("GaN", 3.4), ("Si", 1.1),
            ("Ge", 0.7), ("GaAs", 1.4), ("AlN", 6.2), ("TiO2", 3.0), ("Cu2O", 2.1), ("NiO", 3.7)]  # fmt: skip
    table = tmp_path / "train.csv"
    pd.DataFrame(rows + [("Zn1e308O", 3.3)], columns=["formula", "band_gap"]).to_csv(
        table, index=False
    )
    home = tmp_path / "home"
    status, out, err = matforge(
        "train", "--csv", str(table), "--target", "band_gap", "--model", "small",
        "--name", "gaps", "--home", str(home),
    )  # fmt: skip
    assert status == 0, err
    assert f"skipped line 14 of {table}: formula: 'Zn1e308O'" in err
    assert "on 12 rows" in err


def test_wide_workbooks_and_parquet_files_are_refused_before_their_cells_are_read(
    matforge, tmp_path, monkeypatch
):
    """Issue #18: the width of a workbook or Parquet file was checked only after the whole file
    had been read. It is now read from the first row / the schema; --max-columns sets it."""
    import inspect

    from matforge.cli.store import ingest
    from matforge.store.validation import MAX_COLUMNS

    assert inspect.signature(ingest).parameters["max_columns"].default.default == MAX_COLUMNS
    db = str(tmp_path / "lab.db")
    wide = pd.DataFrame([["Si", 1.1, *range(1200)]],
                        columns=["formula", "value", *(f"c{j}" for j in range(1200))])  # fmt: skip
    xlsx, parquet = tmp_path / "wide.xlsx", tmp_path / "wide.parquet"
    wide.to_excel(xlsx, index=False)
    wide.to_parquet(parquet, index=False)

    def no_body_read(*args, **kwargs):
        raise AssertionError("the cells were read before the width was checked")

    monkeypatch.setattr(pd, "read_excel", no_body_read)
    monkeypatch.setattr(pd, "read_parquet", no_body_read)
    args = ["-p", "semis", "--property", "band_gap", "--unit", "eV", "--db", db]
    status, out, err = matforge("ingest", str(xlsx), *args)
    assert status == 2, err
    assert f"{xlsx}, sheet 'Sheet1', row 1: the header has 1,202 columns; at most 1,000" in err
    status, out, err = matforge("ingest", str(parquet), *args)
    assert status == 2, err
    assert f"{parquet}: the schema has 1,202 columns; at most 1,000 are allowed" in err
    status, out, err = matforge("ingest", str(parquet), *args, "--max-columns", "100")
    assert status == 2 and "at most 100 are allowed" in err
    monkeypatch.undo()
    status, out, err = matforge("ingest", str(parquet), *args, "--max-columns", "1300")
    assert status == 0, err
    with Store(db) as store:
        assert store.measurements()["formula"].tolist() == ["Si"]
