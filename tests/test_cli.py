"""The command-line shell: fast start-up and the documented commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("pymatgen", "torch", "pandas", "sqlalchemy", "sklearn", "scipy", "dask", "lightgbm")


def _matforge(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "matforge", *args], capture_output=True, text=True, **kw
    )


def test_help_imports_no_heavy_library():
    code = (
        "import sys, runpy; sys.argv=['matforge','--help']\n"
        "try:\n    runpy.run_module('matforge', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_help_lists_the_commands():
    # The "under a second" is measured by benchmarks/cli_latency.py (tests assert no
    # wall-clock times); what keeps it fast, importing no heavy module, is tested above.
    res = _matforge("--help")
    assert res.returncode == 0, res.stderr
    assert "datasets" in res.stdout and "ingest" in res.stdout


def test_version():
    res = _matforge("--version")
    assert res.returncode == 0
    assert res.stdout.startswith("matforge ")


def test_datasets_list_json_has_catalog_fields():
    res = _matforge("datasets", "list", "--json")
    assert res.returncode == 0, res.stderr
    catalog = json.loads(res.stdout)
    assert len(catalog) >= 25
    for entry in catalog:
        for field in ("name", "rows", "unit", "source", "citation"):
            assert entry.get(field) not in (None, ""), (entry["name"], field)


def test_datasets_export_and_unknown_name(tmp_path):
    out = tmp_path / "gap.csv"
    res = _matforge("datasets", "export", "matbench_expt_gap", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_text().count("\n") == 4604 + 1
    bad = _matforge("datasets", "show", "matbench_expt_gapp")
    assert bad.returncode == 2
    assert "matbench_expt_gapp" in bad.stderr and "matbench_expt_gap" in bad.stderr


@pytest.mark.skipif(os.name != "posix", reason="uses a POSIX temp path")
def test_demo_foundation_runs_end_to_end(tmp_path):
    res = _matforge("demo", "foundation", "--out", str(tmp_path), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "matforge.db").exists()
    assert (tmp_path / "measurements.parquet").exists()
    assert "bulk_modulus" in res.stdout and "band_gap" in res.stdout
