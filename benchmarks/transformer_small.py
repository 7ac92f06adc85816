"""The attention model from scratch against ``rf`` and ``auto`` on small Matbench tasks.

Runs the Matbench protocol (:func:`matforge.models.matbench.run_task`: official folds, the
model fitted on the training rows only, scored on the test rows) for each task, fold and model
spec, in the same process with the same seeds, and records per fold the test MAE, the coverage
of the 95 % intervals (after each model's own recalibration on its training rows), and the fit
wall and CPU seconds. One torch / BLAS thread unless ``--threads`` says otherwise.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/transformer_small.py \\
        --task matbench_steels --folds 0 1 2 3 4 --models transformer rf auto

Writes ``results/bench/transformer_small.json`` (rewritten after every fold, so an interrupted
run keeps what it finished; rows of an earlier run with the same task, model and fold are
kept) and prints one JSON line per fold and model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

KEYS = ("mae", "coverage_95", "coverage_68", "fit_seconds", "fit_cpu_seconds", "n_train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", default=["matbench_steels", "matbench_expt_gap"])
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--models", nargs="+", default=["transformer", "rf", "auto"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("results/bench/transformer_small.json"))
    args = parser.parse_args()

    import torch

    from matforge.models.matbench import run_task

    torch.set_num_threads(args.threads)
    rows = json.loads(args.out.read_text())["rows"] if args.out.is_file() else []
    for task in args.task:
        for fold in args.folds:
            for model in args.models:
                t0 = time.perf_counter()
                res = run_task(task, model, folds=[fold], n_jobs=args.threads)
                per_fold = res["folds"][0]
                row = {"task": task, "model": model, "fold": fold}
                row.update({k: per_fold.get(k) for k in KEYS})
                row["wall_seconds"] = time.perf_counter() - t0
                print(json.dumps(row), flush=True)
                rows = [
                    r for r in rows if (r["task"], r["model"], r["fold"]) != (task, model, fold)
                ]
                rows.append(row)
                _write(args.out, rows, args.threads)


def _write(path: Path, rows: list[dict], threads: int) -> None:
    summary = {}
    for task in sorted({r["task"] for r in rows}):
        for model in sorted({r["model"] for r in rows if r["task"] == task}):
            mine = [r for r in rows if r["task"] == task and r["model"] == model]
            summary[f"{task}/{model}"] = {
                "folds": sorted(r["fold"] for r in mine),
                **{k: float(np.mean([r[k] for r in mine])) for k in KEYS[:5]},
            }
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": "transformer_small", "threads": threads, "summary": summary, "rows": rows}
    path.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
