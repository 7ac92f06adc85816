"""Baseline generators on the held-out splits of the Materials Project corpus (issue #14).

For each split (10 % of compositions at random, 10 % of chemical systems; seed 0), each
baseline draws 20,000 compositions from the training part with three seeds; the table gives
mean ± sd of validity, uniqueness, novelty and held-out rediscovery. Writes
``results/generate/baselines.json``.

    .venv/bin/python benchmarks/generate_baselines.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from matforge.generate.baselines import element_substitution, frequency_random, uniform_random
from matforge.generate.corpus import load_corpus, split_corpus
from matforge.generate.metrics import generation_metrics

OUT = Path(__file__).resolve().parents[1] / "results" / "generate" / "baselines.json"
N, SEEDS = 20_000, (0, 1, 2)
BASELINES = {
    "frequency_random": frequency_random,
    "uniform_random": uniform_random,
    "element_substitution": element_substitution,
}
KEYS = ("cn", "cn_eb", "smact_valid", "uniqueness", "novelty", "precision", "recall")


def main() -> None:
    start = time.perf_counter()
    corpus = load_corpus()
    results = {}
    for kind in ("random", "chemsys"):
        split = split_corpus(corpus, kind)
        for name, gen in BASELINES.items():
            runs = [
                generation_metrics(gen(list(split.train), N, seed=s), split.train, split.held_out)
                for s in SEEDS
            ]
            row = {
                k: [float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs]))]
                for k in KEYS
            }
            results[f"{kind}/{name}"] = row
            print(kind, name, {k: f"{v[0]:.4f}±{v[1]:.4f}" for k, v in row.items()}, flush=True)
    doc = {
        "n_samples": N,
        "seeds": list(SEEDS),
        "corpus": len(corpus),
        "results": results,
        "seconds": round(time.perf_counter() - start, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT} in {doc['seconds']} s")


if __name__ == "__main__":
    main()
