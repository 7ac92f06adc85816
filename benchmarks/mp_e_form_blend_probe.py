"""``auto``'s blend of the trees and the pretrained attention model (issue #21 §3) on
``matbench_mp_e_form`` fold 0, where ``auto`` itself stays the trees (above
``ATTENTION_MAX_ROWS`` training rows): does the blend beat either model alone there?

    python benchmarks/mp_e_form_blend_probe.py [--fold 0] [--jobs 2]

About an hour on 2 cores (the network takes 40 minutes of it). Writes
``results/matbench_blend_probe/`` (the Matbench runner's per-fold JSON and table) and prints
the fold's metrics, with the blend weights chosen on the out-of-fold predictions.
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    from matforge.models import presets
    from matforge.models.matbench import run_task, write_result

    presets.ATTENTION_MAX_ROWS = 10**9  # the blend at any size
    res = run_task("matbench_mp_e_form", "auto", folds=[args.fold], n_jobs=args.jobs)
    write_result(res, "results/matbench_blend_probe")
    row = {k: v for k, v in res["folds"][0].items() if not k.startswith("_")}
    print(json.dumps(row, indent=1, default=str))


if __name__ == "__main__":
    main()
