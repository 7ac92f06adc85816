"""The default composition GAN on the held-out splits of the Materials Project corpus (issue #14).

For each split (10 % of compositions at random, 10 % of chemical systems; seed 0), the default
:class:`~matforge.generate.gan.FormulaGAN` is trained (seed 0) on the valid-only part of the
training compositions (charge-neutral and electronegativity-balanced), then draws 20,000
compositions with three seeds; the table gives mean ± sd of validity, uniqueness, novelty and
held-out rediscovery against the whole split (novelty against all training compositions,
valid or not). Writes ``results/generate/gan.json`` with the training and sampling seconds and
the size of the saved model; naming splits runs only those and keeps the others' results.

    .venv/bin/python benchmarks/generate_gan.py [random] [chemsys]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from matforge.generate.corpus import load_corpus, split_corpus
from matforge.generate.gan import FormulaGAN
from matforge.generate.metrics import generation_metrics

OUT = Path(__file__).resolve().parents[1] / "results" / "generate" / "gan.json"
N, SEEDS = 20_000, (0, 1, 2)
KEYS = ("cn", "cn_eb", "smact_valid", "uniqueness", "novelty", "precision", "recall")


def main(kinds: list[str]) -> None:
    torch.set_num_threads(1)  # the reference measurement: one CPU core
    start = time.perf_counter()
    corpus = load_corpus()
    valid = set(load_corpus(valid_only=True))
    results = json.loads(OUT.read_text())["results"] if OUT.is_file() else {}
    for kind in kinds:
        split = split_corpus(corpus, kind)
        train = [f for f in split.train if f in valid]
        gan = FormulaGAN().fit(train, seed=0)
        print(
            f"{kind}: trained on {gan.fit_report_['n_train']} formulas "
            f"({gan.fit_report_['n_left_out']} left out) in {gan.fit_report_['seconds']} s",
            flush=True,
        )
        runs, seconds = [], []
        for s in SEEDS:
            t = time.perf_counter()
            samples = gan.sample(N, seed=s)
            seconds.append(time.perf_counter() - t)
            runs.append(generation_metrics(samples, split.train, split.held_out))
        with tempfile.TemporaryDirectory() as tmp:
            size = gan.save(Path(tmp) / "gan.pt").stat().st_size
        row = {
            k: [float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs]))]
            for k in KEYS
        }
        results[kind] = {
            **row,
            "n_train": gan.fit_report_["n_train"],
            "n_left_out": gan.fit_report_["n_left_out"],
            "epochs": gan.fit_report_["epochs"],
            "train_seconds": gan.fit_report_["seconds"],
            "sample_seconds": round(float(np.mean(seconds)), 2),
            "model_bytes": size,
        }
        print(kind, {k: f"{v[0]:.4f}±{v[1]:.4f}" for k, v in row.items()}, flush=True)
        print(
            f"{kind}: sampling {N} took {np.mean(seconds):.2f} s, model file {size} bytes",
            flush=True,
        )
    doc = {
        "model": "FormulaGAN()",
        "n_samples": N,
        "seeds": list(SEEDS),
        "threads": 1,
        "results": {k: results[k] for k in ("random", "chemsys") if k in results},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:] or ["random", "chemsys"])
