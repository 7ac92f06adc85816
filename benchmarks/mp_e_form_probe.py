"""Is the ``auto`` LightGBM too small for ``matbench_mp_e_form``? A probe on official fold 0.

Fits one Huber-loss LightGBM (``auto``'s loss and features, no stacking, no uncertainty) on all
106,201 training rows of fold 0 and prints the test MAE (eV/atom), for matforge's defaults
(600 trees of 31 leaves, learning rate 0.04), for a larger model (``LARGE_LGBM``: 2,000 trees of
63 leaves, learning rate 0.08), and for the larger model without the mat2vec statistics
(``LARGE_FEATURIZER``). The last is what ``auto`` now uses from 50,000 rows on; the cross-fitted
``auto`` stack with the defaults gave 0.1344 on this fold.

    .venv/bin/python benchmarks/mp_e_form_probe.py

About 300 CPU-s for the defaults, 1,100 for the larger model and 370 without mat2vec (2 threads).
Prints one JSON line per variant.
"""

from __future__ import annotations

import json
import time

import numpy as np

from matforge.models.presets import LARGE_LGBM

#: name -> (drop mat2vec, LightGBM settings)
VARIANTS = {
    "default": (False, {}),
    "big": (False, LARGE_LGBM),
    "big_no_mat2vec": (True, LARGE_LGBM),
}


def fold0_features(task: str, target: str):
    """Official fold 0 of ``task``: ``(y, train, test, X, keep)``, ``X`` the auto features
    (float32) of every row and ``keep`` the mask of the columns that are not mat2vec."""
    from matforge.datasets import load_dataset, matbench_folds
    from matforge.models.pipeline import build_featurizer
    from matforge.models.presets import AUTO_FEATURIZER

    df = load_dataset(task)
    train, test = matbench_folds(task)[0]
    fs = build_featurizer(list(AUTO_FEATURIZER))
    X = fs.featurize_many(df["formula"].astype(str).tolist()).astype(np.float32)
    keep = np.array([not label.startswith("mat2vec") for label in fs.feature_labels()])
    return df[target].to_numpy(float), train, test, X, keep


def main() -> None:
    from matforge.models.presets import _huber, lgbm_regressor

    y, train, test, X, keep = fold0_features("matbench_mp_e_form", "e_form")
    for name, (no_mat2vec, params) in VARIANTS.items():
        Xv = X[:, keep] if no_mat2vec else X
        t0 = time.process_time()
        model = lgbm_regressor(0, **_huber(y[train]), n_jobs=2, **params).fit(Xv[train], y[train])
        mae = float(np.mean(np.abs(model.predict(Xv[test]) - y[test])))
        print(json.dumps({"variant": name, **params, "mae": mae,
                          "cpu_s": time.process_time() - t0}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
