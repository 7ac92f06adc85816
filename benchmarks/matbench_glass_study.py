"""How far can composition models go on ``matbench_glass``? The study behind docs/benchmarks.md.

Matbench scores glass formation on *boolean* predictions, so its ROC-AUC is the balanced
accuracy of the labels. This script measures, on the 5 official folds:

1. **Label agreement of neighbours**: the share of test compositions whose label equals that of
   the nearest training composition (L1 distance of element fractions; most are the adjacent
   point of the same ternary composition grid). It bounds what interpolation can do.
2. **Model variants** (LightGBM stack as ``--model auto`` builds it, plus the options tried):
   balanced accuracy with the threshold chosen on the training fold's out-of-fold predictions
   (what Matbench scores), the same with the best threshold on the test fold ("oracle", an upper
   bound no honest model reaches), and the ROC-AUC of the probabilities.

Variants: ``auto`` (AUTO_FEATURIZER, LightGBM), ``+yang+miedema`` (matminer's YangSolidSolution
and Miedema added), ``+yang+miedema+extra_trees`` (extra-trees added to the stack as well),
``no_mat2vec+yang+miedema`` (mat2vec statistics dropped), ``no_mat2vec+neighbours`` (the labels
of the nearest training compositions as features: distance-weighted means over the 1–20 nearest,
the nearest distances, and the count, mean label and weighted label of training compositions of
the same chemical system; leave-one-out on the training rows, so they mean what they mean on a
test row). matminer is a test dependency; its Miedema featurizer takes ~1 CPU-min.

    .venv/bin/python benchmarks/matbench_glass_study.py [--variants auto,+yang+miedema]

15–215 CPU-s per variant and fold (measured 2026-11-28). Prints JSON lines and writes results/matbench/glass_study.json.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "results" / "matbench" / "glass_study.json"
VARIANTS = (
    "auto",
    "+yang+miedema",
    "+yang+miedema+extra_trees",
    "no_mat2vec+yang+miedema",
    "no_mat2vec+neighbours",
)
#: neighbour counts of the distance-weighted label features (``+neighbours``)
NEIGHBOURS = (1, 3, 5, 10, 20)


def matminer_features(formulas: list[str]) -> np.ndarray:
    from matminer.featurizers.composition import Miedema, YangSolidSolution
    from pymatgen.core import Composition

    warnings.filterwarnings("ignore")
    comps = [Composition(f) for f in formulas]
    cols = []
    for fz in (YangSolidSolution(), Miedema()):
        rows = []
        for c in comps:
            try:
                rows.append(fz.featurize(c))
            except Exception:  # matminer raises on elements outside its tables
                rows.append([np.nan] * len(fz.feature_labels()))
        cols.append(np.asarray(rows, dtype=float))
    return np.hstack(cols)


def neighbour_agreement(fractions: np.ndarray, y: np.ndarray, splits) -> list[float]:
    from sklearn.neighbors import NearestNeighbors

    out = []
    for train, test in splits:
        nn = NearestNeighbors(n_neighbors=1, metric="manhattan").fit(fractions[train])
        idx = nn.kneighbors(fractions[test], return_distance=False)[:, 0]
        out.append(float(np.mean(y[train][idx] == y[test])))
    return out


def neighbour_features(frac: np.ndarray, y: np.ndarray, ref, query, loo: bool) -> np.ndarray:
    """Label statistics of the training rows ``ref`` around rows ``query`` (element fractions
    ``frac``, L1 distance); ``loo`` leaves each query out of its own neighbours (query = ref)."""
    from collections import defaultdict

    from sklearn.neighbors import NearestNeighbors

    skip = 1 if loo else 0
    nn = NearestNeighbors(n_neighbors=max(NEIGHBOURS) + skip, metric="manhattan")
    dist, idx = nn.fit(frac[ref]).kneighbors(frac[query])
    dist, idx = dist[:, skip:], idx[:, skip:]
    labels = y[ref][idx]
    cols = []
    for k in NEIGHBOURS:
        w = 1.0 / (dist[:, :k] + 0.02)
        cols.append((labels[:, :k] * w).sum(1) / w.sum(1))
    cols += [dist[:, 0], dist[:, 4]]
    system = ["-".join(map(str, np.flatnonzero(row > 0))) for row in frac]
    members = defaultdict(list)
    for j, i in enumerate(ref):
        members[system[i]].append(j)
    same = np.full((len(query), 3), np.nan)
    for q, i in enumerate(query):
        rows = [ref[j] for j in members.get(system[i], []) if not (loo and ref[j] == i)]
        same[q, 0] = len(rows)
        if rows:
            w = 1.0 / (np.abs(frac[rows] - frac[i]).sum(1) + 0.02)
            same[q, 1] = y[rows].mean()
            same[q, 2] = (y[rows] * w).sum() / w.sum()
    return np.column_stack([*cols, same])


def run_variant(
    name: str, X: np.ndarray, y: np.ndarray, splits, frac: np.ndarray | None = None
) -> list[dict]:
    from matforge.models.pipeline import best_threshold, classification_metrics
    from matforge.models.presets import extra_trees_classifier, lgbm_classifier
    from matforge.models.stacking import StackedClassifier

    rows = []
    for k, (train, test) in enumerate(splits):
        t0 = time.process_time()
        X_train, X_test = X[train], X[test]
        if "neighbours" in name:
            X_train = np.hstack([X_train, neighbour_features(frac, y, train, train, loo=True)])
            X_test = np.hstack([X_test, neighbour_features(frac, y, train, test, loo=False)])
        ests = [("lgbm", lgbm_classifier(k))]
        if "extra_trees" in name:
            ests.append(("extra_trees", extra_trees_classifier(k, max_features=0.1)))
        model = StackedClassifier(ests, cv=5, random_state=k, n_jobs=1).fit(X_train, y[train])
        threshold = best_threshold(y[train], model.oof_proba_)
        p = model.predict_proba(X_test)[:, 1]
        m = classification_metrics(y[test], p, threshold)
        oracle = classification_metrics(y[test], p, best_threshold(y[test], p))["roc_auc"]
        row = {
            "variant": name,
            "fold": k,
            "roc_auc": m["roc_auc"],
            "oracle_roc_auc": oracle,
            "roc_auc_proba": m["roc_auc_proba"],
            "cpu_s": time.process_time() - t0,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    from matforge.datasets import load_dataset, matbench_folds
    from matforge.models.pipeline import build_featurizer
    from matforge.models.presets import AUTO_FEATURIZER

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")

    df = load_dataset("matbench_glass")
    formulas = df["formula"].astype(str).tolist()
    y = df["gfa"].to_numpy().astype(int)
    splits = matbench_folds("matbench_glass")
    fs = build_featurizer(list(AUTO_FEATURIZER))
    labels = fs.feature_labels()
    X = fs.featurize_many(formulas)
    fraction_start = len(build_featurizer(list(AUTO_FEATURIZER[:4])).feature_labels())
    n_fractions = len(build_featurizer(["element_fraction"]).feature_labels())
    assert AUTO_FEATURIZER[4] == "element_fraction"
    frac = np.nan_to_num(X[:, fraction_start : fraction_start + n_fractions])
    agree = neighbour_agreement(frac, y, splits)
    print(json.dumps({"nearest_neighbour_label_agreement": agree}), flush=True)
    extra = matminer_features(formulas) if any("miedema" in v for v in variants) else None
    no_m2v = np.array([not s.startswith("mat2vec") for s in labels])
    # variants run earlier stay in the file; the ones run now replace theirs
    result = json.loads(OUT.read_text()) if OUT.exists() else {"variants": {}}
    result["nearest_neighbour_label_agreement"] = agree
    for v in variants:
        Xv = X[:, no_m2v] if v.startswith("no_mat2vec") else X
        if "miedema" in v:
            Xv = np.hstack([Xv, extra])
        rows = run_variant(v, Xv, y, splits, frac)
        result["variants"][v] = {
            "folds": rows,
            "mean": {
                key: float(np.mean([r[key] for r in rows]))
                for key in ("roc_auc", "oracle_roc_auc", "roc_auc_proba")
            },
        }
        print(json.dumps({"variant": v, "mean": result["variants"][v]["mean"]}), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
