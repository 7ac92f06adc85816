"""matforge.tables.read_table: CSV dialects, Excel, Parquet, text columns, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matforge.errors import MatforgeError
from matforge.tables import TableError, read_table, sniff_dialect

EXPECTED = pd.DataFrame(
    {"formula": ["NaN", "NA", "Fe2O3"], "x": [0.5, 1.5, 2.0], "y": [1.25, np.nan, 3.0]}
)


def _check(df: pd.DataFrame) -> None:
    assert list(df.columns) == ["formula", "x", "y"]
    assert df["formula"].tolist() == ["NaN", "NA", "Fe2O3"]  # sodium nitride is no blank
    np.testing.assert_allclose(df["x"].to_numpy(dtype=float), [0.5, 1.5, 2.0])
    np.testing.assert_allclose(df["y"].to_numpy(dtype=float), [1.25, np.nan, 3.0])


def test_plain_csv_keeps_formula_nan(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("formula,x,y\nNaN,0.5,1.25\nNA,1.5,\nFe2O3,2,3\n")
    df = read_table(path)
    _check(df)
    assert df.attrs["assumed"] is None


def test_blank_formula_is_missing_and_other_columns_keep_na(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("formula,x\n,1\nNaN,NA\n")
    df = read_table(path)
    assert pd.isna(df["formula"].iloc[0]) and df["formula"].iloc[1] == "NaN"
    assert df["x"].dtype == float and np.isnan(df["x"].iloc[1])


def test_european_csv_with_options_and_sniffed(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("formula;x;y\nNaN;0,5;1,25\nNA;1,5;\nFe2O3;2;3,0\n")
    _check(read_table(path, sep=";", decimal=","))
    df = read_table(path)
    _check(df)
    assert "';'-separated" in df.attrs["assumed"] and "decimal commas" in df.attrs["assumed"]


def test_semicolon_with_decimal_points_is_not_taken_for_commas(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a;b\n1,5;2.5\n")  # a point somewhere: commas are not decimal marks
    assert sniff_dialect(path).decimal == "."
    assert sniff_dialect(path).sep == ";"


def test_tsv_and_tab_option(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("formula\tx\ty\nNaN\t0.5\t1.25\nNA\t1.5\t\nFe2O3\t2\t3\n")
    _check(read_table(path))
    txt = tmp_path / "t.txt"
    txt.write_text(path.read_text())
    _check(read_table(txt, sep="tab"))
    _check(read_table(txt))


def test_windows_1252_is_read_and_said(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("formula;T (°C)\nFe2O3;12,5\n".encode("cp1252"))
    df = read_table(path)
    assert list(df.columns) == ["formula", "T (°C)"] and df["T (°C)"].iloc[0] == 12.5
    assert "Windows-1252" in df.attrs["assumed"]


def test_xlsx_written_with_openpyxl(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "notes"
    book.active.append(["written by hand"])
    ws = book.create_sheet("blends")
    ws.append(["formula", "x", "y"])
    ws.append(["NaN", 0.5, 1.25])
    ws.append(["NA", 1.5, None])
    ws.append(["Fe2O3", 2, 3])
    path = tmp_path / "t.xlsx"
    book.save(path)
    _check(read_table(path, sheet="blends"))
    _check(read_table(path, sheet=1))
    assert list(read_table(path).columns) == ["written by hand"]  # first sheet by default
    with pytest.raises(TableError, match=r"t.xlsx has no sheet 'data'.*\['notes', 'blends'\]"):
        read_table(path, sheet="data")


def test_parquet(tmp_path):
    path = tmp_path / "t.parquet"
    EXPECTED.to_parquet(path)
    _check(read_table(path))


def test_as_text_keeps_every_cell_as_written(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("formula;x;y\nNaN;0,5;1,25\nNA;1,5;\n")
    df = read_table(path, as_text=True)
    assert df.to_dict("list") == {"formula": ["NaN", "NA"], "x": ["0,5", "1,5"], "y": ["1,25", ""]}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("t.json", "{}", "unknown file type '.json'"),
        ("t.xls", "x", "old .xls format"),
        ("empty.csv", "", "is empty"),
        ("bad.xlsx", "not a zip", "as an Excel workbook"),
        ("bad.parquet", "not parquet", "as Parquet"),
        ("dupes.csv", "a,b,a\n1,2,3\n", r"column\(s\) \['a'\] appear more than once"),
        ("ragged.csv", "a,b\n1,2\n1,2,3,4\n", "cannot read"),
    ],
)
def test_errors_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(MatforgeError, match=message) as info:
        read_table(path, what="results file")
    assert name in str(info.value)


def test_same_separator_and_decimal_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(TableError, match="both ','"):
        read_table(path, decimal=",")
