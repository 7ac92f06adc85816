"""`matforge serve` on a port that is already taken stops with a clear error before announcing a
server (it used to print "matforge server on http://..." and then fail inside uvicorn)."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

pytest.importorskip("uvicorn")

from matforge.cli.main import app  # noqa: E402


def test_serve_on_a_busy_port_says_so_and_exits(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            app, ["serve", "--port", str(port), "--db", str(tmp_path / "store.db")]
        )
    assert result.exit_code != 0
    assert "matforge server on" not in result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output
    assert not (tmp_path / "store.db").exists()  # refused before touching the store
