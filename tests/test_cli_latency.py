"""The command line answers quickly when it can: errors before heavy imports, no torch for a
random forest. Each check runs in a fresh interpreter, since the test session has imported
everything already. Timings themselves are in ``benchmarks/cli_latency.py``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def _run(code: str, cwd, env=None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_missing_model_fails_before_heavy_imports(tmp_path, monkeypatch):
    (tmp_path / "f.csv").write_text("formula\nFe2O3\n")
    monkeypatch.setenv("MATFORGE_HOME", str(tmp_path / "home"))
    out = _run(
        """
        import json, sys
        from typer.testing import CliRunner
        from matforge.cli.main import app
        r = CliRunner().invoke(app, ["predict", "--model", "nope", "f.csv", "-o", "o.csv"])
        print(json.dumps({"exc": repr(r.exception),
                          "loaded": [m for m in ("pandas", "sklearn", "skops.io", "torch")
                                     if m in sys.modules]}))
        """,
        tmp_path,
    )
    assert "no model 'nope'" in out["exc"] and "saved models: none" in out["exc"]
    assert out["loaded"] == []
    assert not (tmp_path / "o.csv").exists()


def test_malformed_map_fails_before_the_store_loads(tmp_path):
    (tmp_path / "f.csv").write_text("formula,value\nFe2O3,1\n")
    out = _run(
        """
        import json, sys
        from typer.testing import CliRunner
        from matforge.cli.main import app
        r = CliRunner().invoke(app, ["ingest", "f.csv", "-p", "p", "--property", "band_gap",
                                     "--unit", "eV", "--map", "nonsense", "--db", "x.db"])
        print(json.dumps({"code": r.exit_code, "out": r.output,
                          "loaded": [m for m in ("pandas", "sqlalchemy", "pint")
                                     if m in sys.modules]}))
        """,
        tmp_path,
    )
    assert out["code"] == 2 and "expected COLUMN=FIELD" in out["out"]
    assert out["loaded"] == []
    assert not (tmp_path / "x.db").exists()


def test_skops_loads_without_torch_and_trusts_the_same_types(tmp_path):
    out = _run(
        """
        import json, sys
        from matforge.models.registry import _skops_io
        sio = _skops_io()
        torch_loaded = "torch" in sys.modules or "dask" in sys.modules
        from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES, get_type_name
        from sklearn.utils import all_estimators   # the real walk, shims importable again
        full = [get_type_name(c) for _, c in all_estimators()
                if get_type_name(c).startswith("sklearn.")]
        print(json.dumps({"torch_loaded": torch_loaded, "same": SKLEARN_ESTIMATOR_TYPE_NAMES == full,
                          "n": len(full), "has_dump": hasattr(sio, "dump")}))
        """,
        tmp_path,
    )
    assert out["torch_loaded"] is False
    assert out["same"] and out["n"] > 100
    assert out["has_dump"]
