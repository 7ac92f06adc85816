"""Every ``--help`` of the CLI reads as plain text at an 80-column terminal (issue #16 §4)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from matforge.cli.main import app


def _commands(group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group
            out += _commands(cmd, (*path, name))
        else:
            out.append((*path, name))
    return out


ROOT = typer.main.get_command(app)
COMMANDS = _commands(ROOT)


def test_every_command_is_covered():
    assert ("ingest",) in COMMANDS and ("campaign", "suggest") in COMMANDS
    assert len(COMMANDS) > 40


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "matforge")
def test_help_is_plain_and_fits(path):
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    text = result.output
    usage = text.splitlines()[0]
    assert usage.startswith("Usage: matforge"), usage
    assert "{" not in usage, usage  # arguments named as in man pages: FILE, not {file}
    assert "<bool>" not in text and "<str>" not in text  # a flag shows as a flag
    assert "``" not in text and "\\[" not in text  # no reST literals or rich escapes
    assert "╭" not in text  # no boxes: they squeeze option help into a narrow column
    long = [line for line in text.splitlines() if len(line) > 80]
    assert not long, long


def test_flags_take_no_value_in_help():
    text = CliRunner().invoke(app, ["ingest", "--help"], terminal_width=80).output
    line = next(x for x in text.splitlines() if x.strip().startswith("--skip-invalid"))
    assert line.split("--skip-invalid", 1)[1].strip().startswith("Write the valid rows")
