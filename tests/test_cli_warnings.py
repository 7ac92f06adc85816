"""Warnings reach a CLI user as one clear line each; harmless library noise is silenced
(issue #16 §4)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from matforge.cli.main import _one_line_warnings, app
from matforge.errors import MatforgeWarning

CIF = """data_x
_cell_length_a 3.0
_cell_length_b 3.0
_cell_length_c 5.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 120
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Zn1 Zn 0.3333 0.6667 0 1
O1 O 0.3333 0.6667 0.38 1
"""


def test_cif_parser_warnings_become_one_line(tmp_path):
    cif = tmp_path / "zno.cif"
    cif.write_text(CIF)
    result = CliRunner().invoke(app, ["xrd", "simulate", str(cif), "-o", str(tmp_path / "p.xy")])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("warning")]
    assert len(notes) == 1, result.output
    assert notes[0].startswith(f"warning: {cif}: the CIF lists no symmetry operations: read as P1")
    assert "fractional coordinates rounded" in notes[0]
    assert "UserWarning" not in result.output and "site-packages" not in result.output


@pytest.fixture
def cli_warnings(capsys):
    with warnings.catch_warnings():
        _one_line_warnings()
        yield capsys


def test_library_warning_is_one_attributed_line(cli_warnings):
    warnings.warn_explicit("first line\nsecond line", UserWarning,
                           "/x/lib/python3.11/site-packages/pymatgen/io/cif.py", 10)  # fmt: skip
    warnings.warn("assumed Cu Kα1", MatforgeWarning, stacklevel=1)
    err = cli_warnings.readouterr().err.splitlines()
    assert err == ["warning (pymatgen): first line", "warning: assumed Cu Kα1"]


def test_harmless_noise_is_silenced(cli_warnings):
    assert np.isnan(np.nanmedian(np.array([np.nan, np.nan])))
    assert np.isnan(np.nanmean(np.array([np.nan])))
    warnings.warn("old API", DeprecationWarning, stacklevel=1)
    warnings.warn("will change", FutureWarning, stacklevel=1)
    assert cli_warnings.readouterr().err == ""
