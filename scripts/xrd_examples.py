"""Write the search-match examples of docs/xrd.md into docs/examples/xrd/.

Measured-like Cu Kα patterns (Kα1 + Kα2, 10–80° 2θ in 0.02° steps, Poisson noise, a smooth
background) simulated with :func:`matforge.xrd.mixture.simulate_mixture` from real minerals
written from their published cells and atomic positions:

* cassiterite SnO2, P4_2/mnm: a = 4.7374, c = 3.1864 Å, O at (x, x, 0) with x = 0.3056
  (Bolzan, Fong, Kennedy & Howard, Acta Cryst. B53, 373, 1997);
* rutile TiO2, P4_2/mnm: a = 4.5937, c = 2.9587 Å, x(O) = 0.3048, and anatase TiO2,
  I4_1/amd: a = 3.7845, c = 9.5143 Å, O at (0, 0, z) with z = 0.2081 in origin choice 1
  (Howard, Sabine & Dickson, Acta Cryst. B47, 462, 1991).

The anatase CIF goes into ``refs/`` to show a user's own reference file at work (the bundled
anatase prototype is the same structure since the AFLOW source's misplaced O was corrected).

    python scripts/xrd_examples.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "docs" / "examples" / "xrd"
GRID = np.round(np.arange(10.0, 80.0 + 1e-9, 0.02), 4)


def minerals() -> dict:
    from pymatgen.core import Lattice, Structure

    def rutile_type(metal, a, c, x):
        return Structure.from_spacegroup(136, Lattice.tetragonal(a, c), [metal, "O"],
                                         [[0, 0, 0], [x, x, 0]])  # fmt: skip

    anatase = Structure.from_spacegroup(141, Lattice.tetragonal(3.7845, 9.5143), ["Ti", "O"],
                                        [[0, 0, 0], [0, 0, 0.2081]])  # fmt: skip
    return {
        "cassiterite": rutile_type("Sn", 4.7374, 3.1864, 0.3056),
        "rutile": rutile_type("Ti", 4.5937, 2.9587, 0.3048),
        "anatase": anatase,
    }


def main() -> None:
    from pymatgen.io.cif import CifWriter

    from matforge.xrd.io import write_xy
    from matforge.xrd.mixture import simulate_mixture

    m = minerals()
    (OUT / "tio2").mkdir(parents=True, exist_ok=True)
    (OUT / "refs").mkdir(parents=True, exist_ok=True)
    common = {"eta": 0.5, "kalpha2": True, "background": 0.1}
    patterns = {
        # preferred orientation along [110] (March–Dollase r = 0.75): what refinement is for
        "sno2_textured.xy": ([m["cassiterite"]], [1.0],
                             {"fwhm": 0.09, "zero_shift": 0.04, "texture": [((1, 1, 0), 0.75)],
                              "counts": 30_000, "rng": 2}),
        "tio2/rutile.xy": ([m["rutile"]], [1.0], {"fwhm": 0.12, "counts": 10_000, "rng": 11}),
        "tio2/rutile_anatase.xy": ([m["rutile"], m["anatase"]], [0.7, 0.3],
                                   {"fwhm": 0.1, "counts": 20_000, "rng": 2}),
    }  # fmt: skip
    for name, (structures, fractions, kw) in patterns.items():
        p = simulate_mixture(structures, fractions, GRID, **{**common, **kw},
                             source=f"simulated: {name}")  # fmt: skip
        write_xy(p, OUT / name)
    CifWriter(m["anatase"], symprec=0.01).write_file(OUT / "refs" / "anatase.cif")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
