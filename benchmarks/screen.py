"""Screening throughput: 1,000,000 enumerated candidates end to end.

    python benchmarks/screen.py                  # in-process
    python benchmarks/screen.py --dask local:2   # Dask LocalCluster, 2 workers (same top-100)
    python benchmarks/screen.py --processes 2    # local process pool

The space: binary, ternary and quaternary compositions of 30 elements common in hard
materials (borides, carbides, nitrides, oxides of transition metals), up to 8 atoms per formula
unit, first 1,000,000 positions. Per candidate: Magpie + stoichiometry + valence-orbital
features (146), a cheap LightGBM model per modulus (the funnel, every candidate), the bagged
LightGBM uncertainty ensembles with calibrated std (the ``superhard`` demo's models) on the
funnel's survivors, Monte Carlo Vickers hardness (Chen) with std, top-100 by hardness.

Model training is set-up, timed separately (``train_seconds``); the timed part is the screen.
Prints one JSON line and writes ``results/bench/screen.json`` (``screen_dask.json`` etc. for the
other executors) and the top-100 as CSV; with another executor the top-100 is compared with the
in-process one (``same_top100_as_serial``) when that file exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

ELEMENTS = (
    "Be B C N O Mg Al Si Sc Ti V Cr Mn Fe Co Ni Ga Y Zr Nb Mo Ru Rh Hf Ta W Re Os Ir Pt".split()
)


class _RssSampler(threading.Thread):
    """Peak resident memory of this process and all its descendants (summed), sampled."""

    def __init__(self, every: float = 0.2):
        super().__init__(daemon=True)
        self.every, self.peak, self._halt = every, 0, threading.Event()

    def run(self):
        import psutil

        me = psutil.Process()
        while not self._halt.is_set():
            total = 0
            try:
                procs = [me, *me.children(recursive=True)]
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            self._halt.wait(self.every)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--dask", default=None, help="local:N or tcp://host:port")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--keep", type=float, default=0.02, help="funnel: fraction kept")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--fast-models", action="store_true", help="the demo's --fast models")
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args()

    import numpy as np

    from matforge.screen.candidate_spaces import EnumeratedSpace
    from matforge.screen.streaming import Funnel, PropertyModel, Screen
    from matforge.screen.superhard import (
        SuperhardSettings,
        _features,
        featurizer,
        train_property,
        training_data,
    )

    t = time.perf_counter()
    settings = SuperhardSettings.fast_settings() if args.fast_models else SuperhardSettings()
    data, _ = training_data()
    fz = featurizer()
    models = {}
    for prop, df in data.items():
        if settings.train_limit and len(df) > settings.train_limit:
            df = df.sample(settings.train_limit, random_state=0)
        model, cheap, _ = train_property(_features(df["formula"], fz), df["log10"].to_numpy(), settings)
        models[prop] = PropertyModel(model, log10=True, unit="GPa", cheap=cheap)
    train_seconds = time.perf_counter() - t

    space = EnumeratedSpace(ELEMENTS, max_atoms=8, arities=(2, 3, 4)).head(args.candidates)
    screen = Screen(
        space, models, featurizer=fz, derive=["hardness_vickers"],
        where="shear_modulus <= 1.5 * bulk_modulus", rank_by="hardness_vickers", top_k=100,
        funnel=Funnel(keep=args.keep), chunk_size=args.chunk_size,
    )  # fmt: skip
    executor = (
        f"dask:{args.dask}" if args.dask else (f"processes:{args.processes}" if args.processes > 1 else "serial")
    )
    sampler = _RssSampler()
    sampler.start()
    t = time.perf_counter()
    result = screen.run(executor=executor, progress=sys.stderr.isatty())
    seconds = time.perf_counter() - t
    peak = sampler.stop()

    top = result.top
    digest = hashlib.sha256(
        top[["formula", "hardness_vickers", "hardness_vickers_std"]].round(9).to_csv(index=False).encode()
    ).hexdigest()[:16]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if executor == "serial" else "_" + executor.split(":")[0]
    top.to_csv(out / f"screen_top100{suffix}.csv", index=False)
    report = {
        "candidates": len(space),
        "seconds": round(seconds, 2),
        "candidates_per_s": round(len(space) / seconds),
        "peak_rss_mb": round(peak),
        "executor": executor,
        "funnel_survivors": result.summary["evaluated_full"],
        "funnel_threshold_hardness_gpa": round(result.summary["funnel"]["threshold"], 3),
        "train_seconds": round(train_seconds, 1),
        "models": f"BoostedEnsembleUQ {settings.n_members}x{settings.n_estimators} trees (std)"
        " + cheap LGBM 60 trees (funnel)",
        "top100_sha256": digest,
        "best": top["formula"].head(5).tolist(),
        "cpu_count": os.cpu_count(),
    }
    ref = out / "screen_top100.csv"
    if suffix and ref.exists():
        import pandas as pd

        serial = pd.read_csv(ref)
        same = serial["formula"].tolist() == top["formula"].tolist() and np.allclose(
            serial["hardness_vickers"], top["hardness_vickers"], rtol=1e-9, atol=0
        )
        report["same_top100_as_serial"] = bool(same)
    (out / f"screen{suffix}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
