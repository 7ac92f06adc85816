"""Tables the CLI prints fit an 80-column terminal and are TSV when piped (issue #16 §4)."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from matforge.cli.main import app
from matforge.cli.tables import print_frame

TERMINAL = {"TTY_COMPATIBLE": "1", "NO_COLOR": "1"}


def _widest(text: str) -> int:
    """Longest line of ``text`` as the terminal shows it (bold and dim codes take no room)."""
    return max(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in text.splitlines())


@pytest.fixture
def terminal(monkeypatch):
    def use(columns: int):
        monkeypatch.setenv("COLUMNS", str(columns))
        for k, v in TERMINAL.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("MATFORGE_PLAIN", raising=False)

    return use


def _suggestions() -> pd.DataFrame:
    return pd.DataFrame({
        "suggestion_id": [101, 102],
        "pce10": [0.28731942, 0.5],
        "p3ht": [0.30000001, 0.25],
        "pcbm": [0.41268057, 0.25],
        "degradation_mean": [0.123456789, 12345.6789],
        "degradation_std": [0.0123456, 1.5],
        "acquisition": [1.234e-05, 3.5],
    })  # fmt: skip


def test_numbers_are_never_split_or_cut(terminal, capsys):
    terminal(80)
    print_frame(_suggestions(), "opv: batch 3")
    out = capsys.readouterr().out
    assert _widest(out) <= 80
    for number in ("0.2873", "1.234e-05", "1.235e+04", "0.4127"):
        assert number in out  # whole, on one line
    assert "…" not in out


def test_too_wide_drops_optional_columns_then_becomes_blocks(terminal, capsys):
    df = pd.DataFrame({"name": ["matbench_expt_is_metal"], "rows": ["4,921"],
                       "source": ["aced-differentiate/closed-loop-acceleration-benchmarks"]})  # fmt: skip
    terminal(50)
    print_frame(df, "t", keep=("name",), right=("rows",), optional=("source",))
    out = capsys.readouterr().out
    assert "matbench_expt_is_metal" in out and "not shown at this width: source" in out
    terminal(20)
    print_frame(df, "t", keep=("name",), right=("rows",), optional=("source",))
    out = capsys.readouterr().out
    assert "name: matbench_expt_is_metal" in out  # blocks: one line per value
    assert "source: aced-differentiate/closed-loop-acceleration-benchmarks" in out


def test_piped_output_is_tsv_of_every_row(monkeypatch, capsys):
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    df = pd.DataFrame({"formula": [f"Fe{i}O" for i in range(1, 41)], "x": range(40)})
    print_frame(df, "title", max_rows=5)  # pytest's stdout is not a terminal
    captured = capsys.readouterr()
    back = pd.read_csv(io.StringIO(captured.out), sep="\t")
    pd.testing.assert_frame_equal(back, df)
    assert "title" in captured.err and "title" not in captured.out


def test_datasets_list_fits_80_columns_and_keeps_every_name_whole():
    result = CliRunner().invoke(app, ["datasets", "list"], env={**TERMINAL, "COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert _widest(result.output) <= 80
    assert any("matbench_expt_is_metal" in line for line in lines)
    assert any("132,752" in line for line in lines)  # matbench_mp_e_form's rows, not "13…"
    assert "…" not in result.output


def test_plain_flag_and_pipe_give_tsv():
    for args, env in ((["--plain", "datasets", "list"], TERMINAL), (["datasets", "list"], {})):
        result = CliRunner().invoke(app, args, env={"COLUMNS": "80", **env})
        assert result.exit_code == 0, result.output
        header = next(line for line in result.output.splitlines() if line.startswith("name"))
        assert header.split("\t") == ["name", "rows", "property", "unit", "source"]


def test_campaign_suggest_fits_80_columns_with_every_number_whole(tmp_path):
    from pathlib import Path

    from matforge.cli.campaign import app as campaign_app

    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "opv_blends.csv"
    db, nxt = tmp_path / "lab.db", tmp_path / "next.csv"
    runner = CliRunner()
    new = ["new", "opv", "--from", str(example), "--target", "degradation min",
           "--formulation", "pce10,p3ht,pcbm", "--db", str(db)]  # fmt: skip
    assert runner.invoke(campaign_app, new).exit_code == 0
    result = runner.invoke(campaign_app, ["suggest", "opv", "-n", "4", "-o", str(nxt),
                                          "--db", str(db)], env={**TERMINAL, "COLUMNS": "80"})  # fmt: skip
    assert result.exit_code == 0, result.output
    table = "\n".join(line for line in result.output.splitlines() if line[:1] in "┏┃┡│└")
    assert _widest(table) <= 80
    batch = pd.read_csv(nxt)
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert len(rows) == len(batch)  # one line per suggestion: nothing wrapped
    for line, (_, r) in zip(rows, batch.iterrows(), strict=True):
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert cells[0] == str(int(r["suggestion_id"]))  # iterrows gives floats
        for col in ("pce10", "p3ht", "pcbm", "degradation_mean"):
            assert f"{r[col]:.4g}" in cells
