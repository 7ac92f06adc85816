"""Set A's evaluation patterns (the classifier's validation and test sides) without the training
patterns: what ``benchmarks/xrd_indexing.py`` and ``matforge benchmark xrd --parts indexing``
read from ``.cache/xrd``. ``matforge xrd train`` writes them too, with four training rounds
(about 50 minutes); this writes only the evaluation shards, with the same call, seed and
settings as :func:`matforge.xrd.training_data.prepare_data` (a few minutes on one core).

    OMP_NUM_THREADS=1 python benchmarks/xrd_eval_patterns.py [--structures .cache/xrd_sm]

The structures are read from ``--data-dir`` or, when they are not there, hard-linked from
``--structures`` (the search-match benchmark's cache holds the same set, built with the
corrected anatase prototype; the shipped classifier was trained on the set built before that
correction, so anatase-derived patterns differ) or built (about 11 minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path


def main() -> None:
    import numpy as np

    from matforge.xrd.cnn import XRDClassifier
    from matforge.xrd.training_data import (
        SYMPREC,
        AugmentConfig,
        StructureSet,
        generate_shards,
        make_grid,
        prototype_structures,
        random_structures,
        split_by_chemsys,
        split_by_prototype,
    )

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path(".cache/xrd"))
    ap.add_argument("--structures", type=Path, default=Path(".cache/xrd_sm"),
                    help="a folder holding the same structure set, used when data-dir has none")  # fmt: skip
    args = ap.parse_args()
    d = XRDClassifier.load(None).meta["training"]["data"]
    seed, nv, nr, ne = d["seed"], d["n_variants"], d["n_random"], d["eval_patterns"]
    args.data_dir.mkdir(parents=True, exist_ok=True)
    names = {f"prototypes_v{nv}_s{seed}": lambda: prototype_structures(nv, seed),
             f"random2_r{nr}_s{seed}": lambda: random_structures(nr, seed)}  # fmt: skip
    parts = []
    for name, build in names.items():
        path = args.data_dir / f"{name}.parquet"
        if not path.exists() and (args.structures / f"{name}.parquet").exists():
            for src in args.structures.glob(f"{name}.*"):
                try:
                    os.link(src, args.data_dir / src.name)
                except OSError:
                    shutil.copy2(src, args.data_dir / src.name)
        if path.exists():
            parts.append(StructureSet.load(path))
        else:
            parts.append(build())
            parts[-1].save(path)
    meta = {"n_variants": nv, "n_random": nr, "seed": seed, "symprec": SYMPREC}
    sset = parts[0].concat(parts[1], meta=meta)
    chem, proto = split_by_chemsys(sset, seed=seed), split_by_prototype(sset, seed=seed)
    groups = np.char.add(np.char.add(chem.astype(str), "|"), proto.astype(str))
    rows = np.flatnonzero((chem != "train") | (proto != "train"))
    out = generate_shards(
        sset, args.data_dir / f"eval_patterns_v{nv}_r{nr}_s{seed}_n{ne}", grid=make_grid(),
        n_per_structure=ne, seed=seed + 1, config=AugmentConfig(), groups=groups, rows=rows,
        description="evaluation patterns",
    )  # fmt: skip
    print(f"{len(rows)} structures × {ne} patterns → {out}")


if __name__ == "__main__":
    main()
