"""Element-aware search-match on patterns of structures from chemical systems unseen in training
(issue #17 section 5, C and D): :func:`matforge.xrd.benchmark_sets.run_searchmatch` (its module
docstring says how the patterns are made and what is scored). ``matforge benchmark xrd`` runs
it too.

    OMP_NUM_THREADS=1 python benchmarks/xrd_searchmatch.py --single 80 --mix2 30 --mix3 20 --refine

writes ``results/xrd/searchmatch.json`` (every pattern's outcome and the summary).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> dict:
    from matforge.xrd.benchmark_sets import CACHE, run_searchmatch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--single", type=int, default=100, help="single-phase patterns (C)")
    ap.add_argument("--mix2", type=int, default=40, help="two-phase patterns (D)")
    ap.add_argument("--mix3", type=int, default=30, help="three-phase patterns (D)")
    ap.add_argument("--split", default="test", choices=("test", "val"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=CACHE,
                    help="folder of the structure sets (built there when missing)")  # fmt: skip
    ap.add_argument("--refine", action="store_true", help="also run the refinement (C)")
    ap.add_argument("--no-classifier", action="store_true")
    ap.add_argument("--real", type=int, default=None,
                    help="search-match on this many real structures of set E (default all)")
    ap.add_argument("--out", type=Path, default=Path("results/xrd/searchmatch.json"))
    args = ap.parse_args(argv)
    command = "OMP_NUM_THREADS=1 python benchmarks/xrd_searchmatch.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    result = run_searchmatch(
        args.cache, single=args.single, mix2=args.mix2, mix3=args.mix3, split=args.split,
        seed=args.seed, refine=args.refine, classifier=not args.no_classifier, real=args.real,
        command=command,
    )  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(json.dumps(result["summary"], indent=1))
    return result


if __name__ == "__main__":
    main()
