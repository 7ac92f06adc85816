"""Is the ``auto`` LightGBM too small for ``matbench_mp_e_form``? A probe on official fold 0.

Fits one Huber-loss LightGBM (``auto``'s loss and features, no stacking, no uncertainty) on all
106,201 training rows of fold 0 and prints the test MAE (eV/atom), for matforge's defaults
(600 trees of 31 leaves, learning rate 0.04) and for a larger model (2,000 trees of 63 leaves,
learning rate 0.08). For comparison, ``matforge benchmark matbench --task matbench_mp_e_form``
(the cross-fitted ``auto`` stack) gives 0.1344 on this fold.

    .venv/bin/python benchmarks/mp_e_form_probe.py

About 300 CPU-s for the defaults and several times that for the larger model (2 threads).
Prints one JSON line per variant.
"""

from __future__ import annotations

import json
import time

import numpy as np

VARIANTS = {
    "default": {},
    "big": dict(n_estimators=2000, learning_rate=0.08, num_leaves=63),
}


def main() -> None:
    from matforge.datasets import load_dataset, matbench_folds
    from matforge.models.pipeline import build_featurizer
    from matforge.models.presets import AUTO_FEATURIZER, _huber, lgbm_regressor

    df = load_dataset("matbench_mp_e_form")
    y = df["e_form"].to_numpy(float)
    train, test = matbench_folds("matbench_mp_e_form")[0]
    X = build_featurizer(list(AUTO_FEATURIZER)).featurize_many(df["formula"].astype(str).tolist())
    X = X.astype(np.float32)
    for name, params in VARIANTS.items():
        t0 = time.process_time()
        model = lgbm_regressor(0, **_huber(y[train]), n_jobs=2, **params).fit(X[train], y[train])
        mae = float(np.mean(np.abs(model.predict(X[test]) - y[test])))
        print(json.dumps({"variant": name, **params, "mae": mae,
                          "cpu_s": time.process_time() - t0}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
