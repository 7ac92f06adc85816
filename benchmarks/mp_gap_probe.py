"""Would the large-data LightGBM help ``matbench_mp_gap`` too? A probe of the hurdle's two parts.

``auto`` fits band gaps with a hurdle: a LightGBM classifier of ``gap == 0`` gating a Huber-loss
LightGBM regressor of ``log(1 + gap)`` on the positive rows. From 50,000 rows on, ``auto`` gives
both parts larger trees without the mat2vec statistics (``LARGE_LGBM``, ``LARGE_FEATURIZER``; see
``mp_e_form_probe.py``), on the strength of this probe. It fits both parts once on all training
rows of official fold 0, with the small-data defaults and with the large-data settings, and
prints per variant:

- the classifier's test ROC-AUC and accuracy (threshold 0.5) for ``gap == 0``;
- the regressor's test MAE (eV) on the test rows with a positive gap;
- the MAE (eV) of the combined prediction (0 where the classifier says metal, else the
  regressor), a stand-in for the hurdle, whose threshold comes from out-of-fold predictions.

    .venv/bin/python benchmarks/mp_gap_probe.py

About 1,000 CPU-s on 2 threads. Prints one JSON line per variant.
"""

from __future__ import annotations

import json
import time

import numpy as np


def main() -> None:
    from mp_e_form_probe import fold0_features  # the script's folder is on sys.path
    from sklearn.metrics import roc_auc_score

    from matforge.models.presets import LARGE_LGBM, _huber, lgbm_classifier, lgbm_regressor

    y, train, test, X, keep = fold0_features("matbench_mp_gap", "gap_pbe")
    pos_train = train[y[train] > 0]
    yt = np.log1p(y[pos_train])
    variants = {"default": (X, {}), "large_no_mat2vec": (X[:, keep], LARGE_LGBM)}
    for name, (Xv, params) in variants.items():
        t0 = time.process_time()
        clf = lgbm_classifier(0, n_jobs=2, **params).fit(Xv[train], y[train] == 0)
        p_metal = clf.predict_proba(Xv[test])[:, 1]
        reg = lgbm_regressor(0, **_huber(yt), n_jobs=2, **params).fit(Xv[pos_train], yt)
        gap = np.clip(np.expm1(reg.predict(Xv[test])), 0, None)
        positive = y[test] > 0
        combined = np.where(p_metal > 0.5, 0.0, gap)
        row = {
            "variant": name,
            "metal_roc_auc": float(roc_auc_score(y[test] == 0, p_metal)),
            "metal_accuracy": float(np.mean((p_metal > 0.5) == (y[test] == 0))),
            "positive_mae": float(np.mean(np.abs(gap[positive] - y[test][positive]))),
            "combined_mae": float(np.mean(np.abs(combined - y[test]))),
            "cpu_s": time.process_time() - t0,
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
