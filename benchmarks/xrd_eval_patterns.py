"""Set A's evaluation patterns (the classifier's validation and test sides) without the training
patterns: what ``benchmarks/xrd_indexing.py`` and ``matforge benchmark xrd --parts indexing``
read from ``.cache/xrd``. ``matforge xrd train`` writes them too, with four training rounds
(about 50 minutes); this runs :func:`matforge.xrd.training_data.prepare_data` with the shipped
classifier's settings and ``training=False`` (a few minutes on one core).

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
    from matforge.xrd.cnn import XRDClassifier
    from matforge.xrd.training_data import prepare_data

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path(".cache/xrd"))
    ap.add_argument("--structures", type=Path, default=Path(".cache/xrd_sm"),
                    help="a folder holding the same structure set, used when data-dir has none")  # fmt: skip
    args = ap.parse_args()
    d = XRDClassifier.load(None).meta["training"]["data"]
    seed, nv, nr = d["seed"], d["n_variants"], d["n_random"]
    args.data_dir.mkdir(parents=True, exist_ok=True)
    for name in (f"prototypes_v{nv}_s{seed}", f"random2_r{nr}_s{seed}"):
        if (args.data_dir / f"{name}.parquet").exists():
            continue
        for src in args.structures.glob(f"{name}.*"):
            try:
                os.link(src, args.data_dir / src.name)
            except OSError:
                shutil.copy2(src, args.data_dir / src.name)
    prepared = prepare_data(
        args.data_dir, seed=seed, n_variants=nv, n_random=nr, train_patterns=d["train_patterns"],
        random_train_patterns=d["random_train_patterns"], eval_patterns=d["eval_patterns"],
        training=False, log=print,
    )  # fmt: skip
    print(f"set A's patterns: {prepared.eval_dir}")


if __name__ == "__main__":
    main()
