"""Indexing on the classifier's chemical-system-disjoint test set (issue #17 sections 1 and 5 A),
and the speed of ``identify`` with indexing: :func:`matforge.xrd.benchmark_sets.run_indexing`
(its module docstring says what is scored). ``matforge benchmark xrd`` runs it too.

    OMP_NUM_THREADS=1 python benchmarks/xrd_indexing.py --n 600 --jobs 2
    OMP_NUM_THREADS=1 python benchmarks/xrd_indexing.py --n 600 --jobs 2 --side validation

write ``results/xrd/indexing.json`` (test side) and ``results/xrd/indexing_validation.json``
(validation side, where every indexing setting is chosen).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    from matforge.xrd.benchmark_sets import run_indexing

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=600, help="patterns sampled from set A")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed")
    ap.add_argument("--jobs", type=int, default=2, help="processes for the indexing")
    ap.add_argument("--side", choices=("test", "validation"), default="test",
                    help="side of the chemical-system split: settings are chosen on validation")  # fmt: skip
    ap.add_argument("--data-dir", type=Path, default=Path(".cache/xrd"))
    ap.add_argument("--out", type=Path, default=None,
                    help="default results/xrd/indexing.json (test side), "
                    "results/xrd/indexing_validation.json (validation side)")  # fmt: skip
    args = ap.parse_args()
    if args.out is None:
        suffix = "" if args.side == "test" else "_validation"
        args.out = Path(f"results/xrd/indexing{suffix}.json")
    command = (f"OMP_NUM_THREADS=1 python benchmarks/xrd_indexing.py --n {args.n} "
               f"--seed {args.seed} --jobs {args.jobs} --side {args.side}")  # fmt: skip
    out = run_indexing(args.data_dir, n=args.n, seed=args.seed, jobs=args.jobs, side=args.side,
                       command=command)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "indexing"}, indent=1))
    print(json.dumps(out["indexing"], indent=1))


if __name__ == "__main__":
    main()
