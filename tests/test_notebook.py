"""matforge in Jupyter: ``import matforge`` reaches every subpackage lazily, and Campaign,
Store, Pattern and Identification show themselves as HTML (every user string escaped)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

import matforge
from matforge.xrd.identify import Candidate, Identification
from matforge.xrd.io import Pattern

SCRIPT = "<script>alert(1)</script>"


def test_import_matforge_is_cheap_and_its_subpackages_load_on_first_use():
    code = """
        import json, sys
        import matforge
        heavy = ("numpy", "pandas", "pymatgen", "torch", "sqlalchemy")
        before = [m for m in heavy if m in sys.modules]
        listed = dir(matforge)
        formula = matforge.chem.parse_formula("Fe2O3").reduced_formula
        errors = []
        for name in ("nope", "__main__"):
            try:
                getattr(matforge, name)
            except AttributeError as exc:
                errors.append(str(exc))
        try:
            matforge.xrd.nope
        except AttributeError as exc:
            errors.append(str(exc))
        print(json.dumps({"before": before, "listed": listed, "formula": formula,
                          "errors": errors, "xrd": dir(matforge.xrd),
                          "identify": callable(matforge.xrd.identify.identify),
                          "report": hasattr(matforge.report, "model"),
                          "generate": hasattr(matforge.generate, "tokens")}))
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["before"] == []  # `import matforge` pulls no third-party library
    assert {"chem", "xrd", "store", "design", "models", "datasets"} <= set(out["listed"])
    assert out["formula"] == "Fe2O3"
    assert out["errors"] == [
        "module 'matforge' has no attribute 'nope'",
        "module 'matforge' has no attribute '__main__'",  # the CLI is not run by a getattr
        "module 'matforge.xrd' has no attribute 'nope'",
    ]
    # a subpackage's own modules too: matforge.xrd.identify needs no import of its own
    assert {"identify", "io", "simulate"} <= set(out["xrd"])
    assert out["identify"] and out["report"] and out["generate"]


def test_every_subpackage_is_listed():
    """A new subpackage is not forgotten by dir(matforge) (tab completion)."""
    root = Path(matforge.__file__).parent
    folders = {p.parent.name for p in root.glob("*/__init__.py")} - {"cli"}
    assert set(matforge._SUBPACKAGES) == folders


def _identification(source="run 7.xy", threshold=0.5) -> Identification:
    return Identification(
        candidates={
            "crystal_system": [Candidate("cubic", 0.9), Candidate("tetragonal", 0.06)],
            "spacegroup": [Candidate("Fm-3m (225)", 0.4), Candidate(SCRIPT, 0.3)],
            "prototype": [Candidate("AB_cF8_225_a_b", 0.7), Candidate("A_cP1_221_a", 0.2)],
        },
        threshold=threshold,
        source=source,
        prototype_info={"AB_cF8_225_a_b": {"formula": "NaCl", "mineral": "Halite"},
                        "A_cP1_221_a": {"formula": "Po", "mineral": None}},
        warnings=["the file states no wavelength: Cu Kα1 assumed <b>"],
    )  # fmt: skip


def test_identification_html_says_best_uncertain_warnings_and_escapes():
    html = _identification(source=f"{SCRIPT}.xy")._repr_html_()
    assert "cubic" in html and "0.90" in html  # best crystal system and its probability
    assert "uncertain" in html and "Fm-3m (225)" in html  # space group abstains, best guess
    assert "AB_cF8_225_a_b (NaCl Halite)" in html  # prototype with its example compound
    assert "states no wavelength" in html  # the warnings
    assert "<script>" not in html and "&lt;script&gt;" in html  # source and a class name
    assert "<b>" not in html


def test_pattern_html_says_source_range_wavelength_and_draws_it(tmp_path):
    from matforge.xrd.io import read_pattern

    x = np.round(np.arange(10.0, 80.0, 0.02), 3)
    y = 100 + 1000 * np.exp(-0.5 * ((x - 31.7) / 0.05) ** 2)
    path = tmp_path / "scan.xy"
    path.write_text("".join(f"{a} {b}\n" for a, b in zip(x, y, strict=True)))
    html = read_pattern(path)._repr_html_()
    assert str(path) in html and f"{len(x)}" in html and "10.000–79.980°" in html
    assert "1.5406 Å" in html and "assumed" in html  # the file states no wavelength
    assert "<svg" in html and "polyline" in html and len(html) < 20_000
    html = Pattern(x, y, wavelength=0.7093, source=SCRIPT)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "0.7093 Å" in html


def test_sparkline_keeps_a_one_point_peak():
    from matforge.notebook import sparkline

    x = np.linspace(10, 80, 5000)
    y = np.zeros_like(x)
    y[2345] = 1.0  # one point: binned by maximum, it still reaches the top of the line
    svg = sparkline(x, y, width=100, height=20)
    ys = [float(p.split(",")[1]) for p in svg.split("points='")[1].split("'")[0].split()]
    assert len(ys) == 100 and min(ys) == 1.0


def test_store_html_hides_the_password_and_counts(tmp_path):
    from matforge.store import Store

    with Store(tmp_path / "lab.db") as store:
        df = pd.DataFrame({"formula": ["Fe2O3", "NiO", "TiO2"], "value": [2.1, 3.7, 3.2]})
        store.add_measurements(df, project="oxides", property="band_gap", unit="eV",
                               dataset=SCRIPT)  # fmt: skip
        html = store._repr_html_()
        assert str(tmp_path / "lab.db") in html
        for count in ("<th style='text-align:left'>materials</th><td style='text-align:left'>3",
                      "measurements</th><td style='text-align:left'>3",
                      "datasets</th><td style='text-align:left'>1"):  # fmt: skip
            assert count in html
        assert "band_gap" in html and "eV" in html
        store.url = "postgresql://lab:s3cret@db.example.org/matforge"  # what is shown of it
        html = store._repr_html_()
        assert "s3cret" not in html and "lab:***@db.example.org" in html


def test_campaign_html_says_objectives_counts_and_best(tmp_path):
    from matforge.datasets import load_dataset
    from matforge.design.campaign import Campaign
    from matforge.design.spaces import DiscretePool

    data = load_dataset("photo_pce10").drop(columns=["flag"]).iloc[:30].reset_index(drop=True)
    space = DiscretePool(data.drop(columns=["degradation"]))
    c = Campaign.create(tmp_path / "lab.db", f"blends {SCRIPT}", space, "degradation min",
                        initial=data.iloc[:6])  # fmt: skip
    html = c._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "degradation" in html and "min" in html
    assert "6 (6 initial" in html and "0 suggestion(s)" in html
    best = data.iloc[:6]["degradation"].min()
    assert "best so far" in html and f"{best:.4g}" in html


def test_the_jupyter_page_runs(tmp_path):
    """docs/jupyter.md's python blocks, one after another as in a notebook, in a fresh
    interpreter (the docs test runs bash blocks only)."""
    import re

    page = (Path(__file__).resolve().parents[1] / "docs" / "jupyter.md").read_text("utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", page, flags=re.S | re.M)
    assert len(blocks) >= 4
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path),
           "MATFORGE_HOME": str(tmp_path / ".matforge"), "OMP_NUM_THREADS": "1"}  # fmt: skip
    shown = (
        "\nfor o in (store, campaign, pattern, result):\n    assert '<table>' in o._repr_html_()"
    )
    proc = subprocess.run([sys.executable, "-c", "\n".join(blocks) + shown], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "lab.db").exists() and (tmp_path / "identification.html").exists()
