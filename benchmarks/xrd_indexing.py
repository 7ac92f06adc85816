"""Indexing on the classifier's chemical-system-disjoint test set (issue #17 sections 1 and 5 A).

The patterns are those ``matforge benchmark xrd`` scores as set A: the evaluation patterns
(realistic augmentation: strain, vacancies, displacements, crystallite size, texture, zero
shift, Kα2, background, impurity phases, cropped ranges, Poisson noise; Cu Kα1 10–80° in
0.04° steps) of the structures on the test side of ``split_by_chemsys`` over the structure
set the shipped model was trained with (seed 0, 19 variants per prototype, 40 random crystals
per space group, read from ``.cache/xrd``; ``matforge benchmark xrd`` builds it). A seeded
sample of them is scored, the same patterns for every method:

* network alone: the shipped classifier's probabilities, crystal system from the sums of the
  space-group probabilities (what ``identify(..., index=False)`` reports);
* network + indexing: ``identify``'s :func:`~matforge.xrd.identify.coherent_proba` with each
  pattern's :func:`~matforge.xrd.indexing.index_pattern` result;
* indexing alone where it answers: how often a convincing cell appears, and how often its
  lattice family is the true one (trigonal and hexagonal are one family).

Accuracies: crystal system top-1, space group top-1 and space-group powder class top-1
(:func:`matforge.xrd.extinction.powder_classes`), with the position ceiling of the sample.
Speed: patterns per second of ``identify(patterns, index=True, jobs=J)`` on the sample (peak
search, indexing, network, combination; torch on one thread per process).

    OMP_NUM_THREADS=1 python benchmarks/xrd_indexing.py --n 600 --jobs 2

writes ``results/bench/xrd_indexing.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def load_set_a(data_dir: Path, seed: int = 0, side: str = "test"):
    """(x on the model grid, labels, structure rows, grid) of set A, as the benchmark reads it
    (the cached structures and evaluation patterns; nothing is generated here). ``side="val"``
    reads the evaluation patterns of the validation side of the same split instead: the
    patterns every indexing setting is chosen on."""
    from matforge.xrd.training_data import (
        SYMPREC,
        StructureSet,
        labels_for,
        load_shards,
        make_grid,
        split_by_chemsys,
    )

    parts = [StructureSet.load(data_dir / f"prototypes_v19_s{seed}.parquet"),
             StructureSet.load(data_dir / f"random2_r40_s{seed}.parquet")]  # fmt: skip
    meta = {"n_variants": 19, "n_random": 40, "seed": seed, "symprec": SYMPREC}
    sset = parts[0].concat(parts[1], meta=meta)
    chem = split_by_chemsys(sset, seed=seed)
    eval_dir = data_dir / f"eval_patterns_v19_r40_s{seed}_n4"
    data = load_shards(eval_dir, rows=lambda s: chem[s["structure"]] == side)
    rows = data["structure"].astype(np.int64)
    return data["x"], labels_for(sset, rows), rows, make_grid(), sset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=600, help="patterns sampled from set A")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed")
    ap.add_argument("--jobs", type=int, default=2, help="processes for the indexing")
    ap.add_argument(
        "--side",
        choices=("test", "validation"),
        default="test",
        help="side of the chemical-system split: settings are chosen on validation",
    )
    ap.add_argument("--data-dir", type=Path, default=Path(".cache/xrd"))
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default results/bench/xrd_indexing.json (test side), "
        "results/bench/xrd_indexing_validation.json (validation side)",
    )
    args = ap.parse_args()
    if args.out is None:
        suffix = "" if args.side == "test" else "_validation"
        args.out = Path(f"results/bench/xrd_indexing{suffix}.json")

    import torch

    from matforge.xrd.augment import CRYSTAL_SYSTEMS
    from matforge.xrd.cnn import XRDClassifier
    from matforge.xrd.extinction import position_ceiling, powder_classes
    from matforge.xrd.identify import coherent_proba, identify
    from matforge.xrd.io import CU_KA1, Pattern

    torch.set_num_threads(1)
    split_side = "val" if args.side == "validation" else "test"  # training_data's label
    x, y, rows, grid, sset = load_set_a(args.data_dir, side=split_side)
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(len(x), size=min(args.n, len(x)), replace=False))
    patterns = [Pattern(grid, x[i].astype(float), wavelength=CU_KA1, source=f"A#{i}")
                for i in pick]  # fmt: skip
    cs_true = y["crystal_system"][pick]
    sg_true = y["spacegroup"][pick]
    clf = XRDClassifier.load()
    classes = powder_classes()

    # speed: identify with indexing, the whole sample in one batch (warm caches first)
    identify(patterns[:4], model=clf, index=True, jobs=args.jobs)
    t0 = time.perf_counter()
    results = identify(patterns, model=clf, index=True, jobs=args.jobs, top=1)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    identify(patterns, model=clf, index=False, top=1)
    seconds_plain = time.perf_counter() - t0
    indexings = [r.indexing for r in results]

    proba = clf.predict_proba(patterns)
    alone = coherent_proba(proba, [None] * len(patterns), clf.classes)
    both = coherent_proba(proba, indexings, clf.classes)

    def scores(p):
        cs = p["crystal_system"].argmax(axis=1)
        sg = p["spacegroup"].argmax(axis=1)
        return {
            "crystal_system_top1": float((cs == cs_true).mean()),
            "spacegroup_top1": float((sg == sg_true).mean()),
            "spacegroup_class_top1": float((classes[sg] == classes[sg_true]).mean()),
        }

    family_of = {"cubic": {6}, "hexagonal": {4, 5}, "tetragonal": {3}, "orthorhombic": {2},
                 "monoclinic": {1}}  # fmt: skip
    answered = [r is not None and r.best is not None for r in indexings]
    right = [a and int(c) in family_of[r.system] for a, r, c in
             zip(answered, indexings, cs_true, strict=True)]  # fmt: skip
    per_system = {}
    for c, name in enumerate(CRYSTAL_SYSTEMS):
        sel = cs_true == c
        if sel.any():
            per_system[name] = {
                "n": int(sel.sum()),
                "indexed": float(np.mean(np.array(answered)[sel])),
                "indexed_right": float(np.mean(np.array(right)[sel])),
                "network_top1": float((alone["crystal_system"].argmax(1)[sel] == c).mean()),
                "combined_top1": float((both["crystal_system"].argmax(1)[sel] == c).mean()),
            }
    n_ans = int(np.sum(answered))
    out = {
        "command": f"OMP_NUM_THREADS=1 python benchmarks/xrd_indexing.py --n {args.n} "
        f"--seed {args.seed} --jobs {args.jobs} --side {args.side}",
        "side": args.side,
        "n_patterns": len(patterns),
        "n_structures": int(len(np.unique(rows[pick]))),
        "network_alone": scores(alone),
        "network_plus_indexing": scores(both),
        "ceiling": {
            "crystal_system_top1": position_ceiling(cs_true, groups=classes[sg_true]),
            "spacegroup_class_top1": 1.0,
        },
        "indexing": {
            "convincing_share": n_ans / len(patterns),
            "family_right_when_convincing": (float(np.sum(right)) / n_ans) if n_ans else None,
            "per_true_system": per_system,
        },
        "speed": {
            "jobs": args.jobs,
            "identify_with_indexing_patterns_per_s": len(patterns) / seconds,
            "identify_network_alone_patterns_per_s": len(patterns) / seconds_plain,
            "indexing_seconds_median": float(np.median([r.seconds for r in indexings if r])),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "indexing"}, indent=1))
    print(json.dumps(out["indexing"], indent=1))


if __name__ == "__main__":
    main()
