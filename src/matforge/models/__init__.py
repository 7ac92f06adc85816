"""Estimators with calibrated uncertainty, and calibration metrics.

Regressors follow the scikit-learn contract and add ``predict(X, return_std=True)`` returning
``(mean, std)`` in the target's units; classifiers return calibrated ``predict_proba``.

Submodules load lazily (scikit-learn and LightGBM import only when a name is first used), so
``import matforge.models`` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "RandomForestUQ": "matforge.models.forest",
    "RandomForestClassifierUQ": "matforge.models.forest",
    "BoostedEnsembleUQ": "matforge.models.boosting",
    "BoostedClassifier": "matforge.models.boosting",
    "GaussianProcessUQ": "matforge.models.gaussian_process",
    "AutoRegressor": "matforge.models.auto",
    "CompositionTransformer": "matforge.models.transformer",
    "CompositionTransformerClassifier": "matforge.models.transformer",
    "DomainModel": "matforge.models.domain",
    "calibration_report": "matforge.models.calibration",
    "coverage": "matforge.models.calibration",
    "coverage_curve": "matforge.models.calibration",
    "miscalibration_area": "matforge.models.calibration",
    "spearman_error_std": "matforge.models.calibration",
    "fit_std_scale": "matforge.models.recalibration",
    "jackknife_variance": "matforge.models.jackknife",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'matforge.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
