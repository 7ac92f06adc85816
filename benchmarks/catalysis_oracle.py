"""CHGNet as an adsorption oracle for CO on the Ma et al. (2015) surfaces, raw and calibrated.

    python benchmarks/catalysis_oracle.py --workers 2        # compute (resumable), then analyse
    python benchmarks/catalysis_oracle.py --analyse-only

36 surfaces (6 per top-layer metal, drawn with seed 0 from the 285 distinct surfaces; the pure
metal always included), fcc(100) 2×2 slabs of 4 layers (bottom 2 fixed) at the host's lattice
constant, CO on the ontop, bridge and hollow sites, BFGS to 0.05 eV/Å (at most 200 steps),
lowest site kept, referenced to gas-phase CO (:mod:`matforge.catalysis.oracle`). Results go
to ``results/catalysis/oracle_chgnet.jsonl`` (one line per surface; rerun to resume) with the
relaxed structures in ``results/catalysis/oracle_structures/``; the analysis
(:mod:`matforge.catalysis.calibration`: raw errors, per-metal offset and linear Δ-model,
each cross-validated) to ``results/catalysis/oracle_calibration.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "catalysis"


def pick_surfaces(per_metal: int = 6, seed: int = 0):
    from matforge.catalysis import load_ma2015

    df = load_ma2015(clean=True)
    picks = []
    for metal, grp in df.groupby("top_layer", sort=True):
        pure = grp[grp["guest"] == metal]
        rest = grp[grp["guest"] != metal].sample(per_metal - len(pure), random_state=seed)
        picks.append(pure)
        picks.append(rest)
    import pandas as pd

    return pd.concat(picks).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--per-metal", type=int, default=6)
    parser.add_argument("--oracle", default="chgnet")
    parser.add_argument("--analyse-only", action="store_true")
    args = parser.parse_args()
    import warnings

    warnings.simplefilter("ignore")
    from matforge.catalysis.calibration import evaluate_calibration
    from matforge.catalysis.oracle import run_oracle_jobs

    picks = pick_surfaces(args.per_metal)
    results = OUT / f"oracle_{args.oracle}.jsonl"
    t0 = time.perf_counter()
    if not args.analyse_only:
        def progress(done, total, rec):
            print(f"[{done}/{total}] {rec['surface']}: {rec['energy']:.3f} eV ({rec['site']}, "
                  f"{rec['seconds']:.0f} s)", flush=True)

        run_oracle_jobs(picks["surface"], "CO", calculator=args.oracle, results=results,
                        structures=OUT / "oracle_structures", workers=args.workers,
                        progress=progress, layers=4)
    recs = {}
    for line in results.read_text().splitlines():
        r = json.loads(line)
        recs[r["surface"]] = r
    picks = picks[picks["surface"].isin(recs)].reset_index(drop=True)
    oracle = picks["surface"].map(lambda s: recs[s]["energy"]).to_numpy()
    report = evaluate_calibration(picks, oracle)
    report["oracle"] = args.oracle
    report["sites"] = {s: recs[s]["site"] for s in picks["surface"]}
    report["compute_seconds_total"] = round(sum(recs[s]["seconds"] for s in picks["surface"]), 1)
    report["command"] = (f"python benchmarks/catalysis_oracle.py --workers {args.workers}  "
                         "(compute, resumable; --analyse-only re-reads)")
    (OUT / f"oracle_calibration_{args.oracle}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("per_surface", "sites")},
                     indent=1))
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
