"""matforge in Jupyter: ``import matforge`` reaches every subpackage lazily."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import matforge


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
