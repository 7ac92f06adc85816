"""Formula-parsing throughput: ``CompositionBatch.from_formulas`` vs pymatgen ``Composition``.

Usage: ``.venv/bin/python benchmarks/parse.py`` — prints one JSON line, writes
``results/bench/parse.json``.

Inputs: 100,000 rows drawn (seed 0, without replacement) from the ``formula`` column of every
bundled dataset (``matforge.datasets``), so strings repeat as they do in the data
(``formulas_per_s``); and 100,000 *distinct* strings drawn the same way, where de-duplication
cannot help (``unique_formulas_per_s``). Each matforge timing is the best of 5 runs on one core
(one process, single-threaded numpy). pymatgen is timed on the first 10,000 rows of the same
sample with its formula cache cleared, and scaled to a rate.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N = 100_000
N_PYMATGEN = 10_000
REPEATS = 5


def bundled_formulas() -> tuple[list[str], str]:
    """Formula column of every bundled dataset, concatenated in catalog order."""
    try:
        from matforge.datasets import list_datasets, load_dataset
    except ImportError:  # pragma: no cover - before matforge.datasets existed
        import glob

        import pandas as pd

        out: list[str] = []
        for path in sorted(glob.glob("/tmp/src/crabnet/data/**/*.csv", recursive=True)):
            df = pd.read_csv(path)
            if "formula" in df.columns:
                out.extend(df["formula"].dropna().astype(str))
        return out, "crabnet CSVs (matforge.datasets unavailable)"
    out = []
    for info in list_datasets():
        df = load_dataset(getattr(info, "name", info))
        if "formula" in df.columns:
            out.extend(df["formula"].dropna().astype(str))
    return out, "matforge.datasets (every dataset with a formula column)"


def best_rate(fn, items: list[str]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn(items)
        best = min(best, time.perf_counter() - t0)
    return len(items) / best


def main() -> dict:
    from matforge.chem import CompositionBatch

    rows, source = bundled_formulas()
    rng = np.random.default_rng(0)
    sample = [rows[i] for i in rng.choice(len(rows), N, replace=False)]
    distinct = sorted(set(rows))
    unique_sample = [distinct[i] for i in rng.choice(len(distinct), N, replace=False)]

    def parse(items):
        batch = CompositionBatch.from_formulas(items)
        assert len(batch) == len(items) and batch.valid.all()

    rate = best_rate(parse, sample)
    unique_rate = best_rate(parse, unique_sample)

    from pymatgen.core import Composition
    from pymatgen.core import composition as pmg_composition

    cache = getattr(pmg_composition, "_parse_formula_cached", None)
    if cache is not None:
        cache.cache_clear()
    subset = sample[:N_PYMATGEN]
    t0 = time.perf_counter()
    for f in subset:
        Composition(f)
    pymatgen_rate = len(subset) / (time.perf_counter() - t0)

    result = {
        "formulas_per_s": round(rate),
        "unique_formulas_per_s": round(unique_rate),
        "pymatgen_per_s": round(pymatgen_rate),
        "ratio": round(rate / pymatgen_rate, 1),
        "unique_ratio": round(unique_rate / pymatgen_rate, 1),
        "n": N,
        "distinct_in_sample": len(set(sample)),
        "pymatgen_timed_on": f"first {N_PYMATGEN} of the same sample, one pass, rate scaled",
        "matforge_timing": f"best of {REPEATS} runs, one process, OMP_NUM_THREADS=1",
        "source": source,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    out = ROOT / "results" / "bench" / "parse.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
