"""Powder XRD simulation: matforge.xrd.simulate against pymatgen's XRDCalculator.

Both simulate the 288 AFLOW prototype structures shipped with pymatgen (Cu Kα, 2θ 10–90°) in
one process. Each side is warmed up, then timed ``--repeats`` times over the whole set
(wall clock); the best run is reported, as ``timeit`` does, because on a shared machine the
slower runs measure the other processes. matforge is timed with its peak lists complete
(hkl families included, as arrays); ``matforge_with_hkl_dicts_per_s`` also converts every
peak's families to pymatgen's list-of-dicts form.

Agreement: every pymatgen peak with intensity > 1 (0–100 scale) is matched to the nearest
matforge peak and vice versa; the maximum 2θ and intensity differences are reported.

    .venv/bin/python benchmarks/xrd_simulate.py [--repeats 3]

prints one JSON line and writes it to results/bench/xrd_simulate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TWO_THETA_RANGE = (10, 90)


def load_prototypes():
    """The 288 AFLOW prototypes: matforge's bundled copy, else pymatgen's own file."""
    try:
        from matforge.datasets import load_structures

        return load_structures("aflow_prototypes")
    except (ImportError, KeyError):
        import gzip
        from importlib.resources import files

        from pymatgen.core import Structure

        src = files("pymatgen.analysis.prototypes").joinpath("aflow_prototypes.json.gz")
        with gzip.open(src.open("rb")) as fh:
            return [Structure.from_dict(e["snl"]) for e in json.load(fh)]


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def nearest(xs: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the element of sorted ``xs`` nearest to each ``x``."""
    j = np.searchsorted(xs, x)
    lo, hi = np.clip(j - 1, 0, len(xs) - 1), np.clip(j, 0, len(xs) - 1)
    return np.where(np.abs(xs[lo] - x) <= np.abs(xs[hi] - x), lo, hi)


def max_mismatch(a_x, a_y, b_x, b_y, min_intensity: float = 1.0) -> tuple[float, float]:
    """Largest 2θ and intensity differences from each peak of ``a`` above ``min_intensity``
    to the nearest peak of ``b``."""
    a_x, a_y, b_x, b_y = (np.asarray(v, dtype=float) for v in (a_x, a_y, b_x, b_y))
    sel = a_y > min_intensity
    if not sel.any():
        return 0.0, 0.0
    if len(b_x) == 0:
        return float("inf"), float("inf")
    j = nearest(b_x, a_x[sel])
    return float(np.abs(b_x[j] - a_x[sel]).max()), float(np.abs(b_y[j] - a_y[sel]).max())


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    from matforge.xrd.simulate import simulate

    structures = load_prototypes()
    calc = XRDCalculator(wavelength="CuKa")

    def run_pymatgen():
        return [calc.get_pattern(s, two_theta_range=TWO_THETA_RANGE) for s in structures]

    def run_matforge():
        return simulate(structures, wavelength="CuKa", two_theta_range=TWO_THETA_RANGE)

    def run_matforge_dicts():
        return [p.hkls for p in run_matforge()]

    # warm-up: imports, table loading, caches
    [calc.get_pattern(s, two_theta_range=TWO_THETA_RANGE) for s in structures[:10]]
    simulate(structures[:10])

    t_mf = best_time(run_matforge, args.repeats)
    t_mf_dicts = best_time(run_matforge_dicts, args.repeats)
    t_pmg = best_time(run_pymatgen, args.repeats)

    ours, ref = run_matforge(), run_pymatgen()
    d_tt = d_int = 0.0
    count_mismatch = 0
    for o, r in zip(ours, ref, strict=True):
        for a, b in (
            ((r.x, r.y), (o.two_theta, o.intensity)),
            ((o.two_theta, o.intensity), (r.x, r.y)),
        ):
            dt, di = max_mismatch(*a, *b)
            d_tt, d_int = max(d_tt, dt), max(d_int, di)
        count_mismatch += len(o.two_theta) != len(r.x)

    n = len(structures)
    result = {
        "matforge_per_s": round(n / t_mf, 1),
        "pymatgen_per_s": round(n / t_pmg, 1),
        "ratio": round(t_pmg / t_mf, 1),
        "n": n,
        "max_two_theta_diff": d_tt,
        "max_intensity_diff": d_int,
        "matforge_with_hkl_dicts_per_s": round(n / t_mf_dicts, 1),
        "ratio_with_hkl_dicts": round(t_pmg / t_mf_dicts, 1),
        "structures_with_different_peak_count": count_mismatch,
        "peaks_pymatgen": sum(len(r.x) for r in ref),
        "peaks_matforge": sum(len(o) for o in ours),
        "wavelength": "CuKa",
        "two_theta_range": list(TWO_THETA_RANGE),
        "timing": f"best of {args.repeats} wall-clock runs over all {n} structures, after warm-up",
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
    }
    out = ROOT / "results" / "bench" / "xrd_simulate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(result)
    out.write_text(line + "\n")
    print(line)
    return result


if __name__ == "__main__":
    main()
