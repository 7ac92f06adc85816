"""Held-out calibration on real materials data: matbench ``expt_gap`` (4,604 experimental band
gaps, eV) with a fractional-composition encoding (one column per element, Z = 1…103).

The regressors must give held-out 95% intervals that cover 90–98% of the test rows and an
uncertainty that ranks the errors; the classifiers must separate metals (gap = 0) from
non-metals with calibrated probabilities.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

pytest.importorskip("lightgbm")
pytest.importorskip("pymatgen.core")

from matforge.models import (  # noqa: E402
    BoostedClassifier,
    BoostedEnsembleUQ,
    RandomForestClassifierUQ,
    RandomForestUQ,
    calibration_report,
)

N_ELEMENTS = 103


def fractional_composition(formulas) -> np.ndarray:
    """``len(formulas) × 103`` matrix of atomic fractions, column ``Z - 1`` for element ``Z``."""
    from pymatgen.core import Composition

    X = np.zeros((len(formulas), N_ELEMENTS))
    for row, formula in enumerate(formulas):
        for element, fraction in Composition(formula).fractional_composition.items():
            X[row, element.Z - 1] = fraction
    return X


@pytest.fixture(scope="module")
def expt_gap():
    """3:1 train/test split of expt_gap, fixed seed: (X_train, X_test, y_train, y_test)."""
    from matforge.datasets import load_dataset

    df = load_dataset("matbench_expt_gap")
    assert len(df) == 4604
    X = fractional_composition(df["formula"])
    np.testing.assert_allclose(X.sum(axis=1), 1.0)
    return train_test_split(X, df["gap_expt"].to_numpy(float), test_size=0.25, random_state=0)


@pytest.mark.parametrize(
    "model",
    [
        RandomForestUQ(n_estimators=100, random_state=0, n_jobs=2),
        BoostedEnsembleUQ(n_estimators=200, learning_rate=0.1, random_state=0, n_jobs=2),
    ],
    ids=["RandomForestUQ", "BoostedEnsembleUQ"],
)
def test_held_out_intervals_are_calibrated(model, expt_gap):
    Xtr, Xte, ytr, yte = expt_gap
    mean, std = model.fit(Xtr, ytr).predict(Xte, return_std=True)
    report = calibration_report(yte, mean, std)
    assert report["mae"] < 0.7  # eV; predicting the training mean gives ~1.2
    assert 0.90 <= report["coverage_95"] <= 0.98
    assert report["coverage_68"] >= 0.68
    assert report["spearman_error_std"] > 0.4
    # RMV ≈ RMSE is what the default recalibration aims for
    assert report["rmv"] == pytest.approx(report["rmse"], rel=0.25)


def test_recalibration_improves_on_raw_forest_std(expt_gap):
    """Without recalibration the tree spread over-states the error; the fitted scale fixes it."""
    Xtr, Xte, ytr, yte = expt_gap
    raw = RandomForestUQ(n_estimators=60, random_state=0, n_jobs=2, recalibrate=False)
    cal = RandomForestUQ(n_estimators=60, random_state=0, n_jobs=2)
    r_raw = calibration_report(yte, *raw.fit(Xtr, ytr).predict(Xte, return_std=True))
    r_cal = calibration_report(yte, *cal.fit(Xtr, ytr).predict(Xte, return_std=True))
    assert cal.std_scale_ < 1.0
    assert abs(r_cal["rmv"] / r_cal["rmse"] - 1) < abs(r_raw["rmv"] / r_raw["rmse"] - 1)
    assert r_cal["miscalibration_area"] < r_raw["miscalibration_area"]


def _expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    return sum(
        abs(p[which == b].mean() - y[which == b].mean()) * np.mean(which == b)
        for b in range(bins)
        if np.any(which == b)
    )


@pytest.mark.parametrize(
    "model",
    [
        RandomForestClassifierUQ(n_estimators=100, cv=3, random_state=0, n_jobs=2),
        BoostedClassifier(n_estimators=200, learning_rate=0.1, random_state=0, n_jobs=1),
    ],
    ids=["RandomForestClassifierUQ", "BoostedClassifier"],
)
def test_metal_classifier_probabilities_are_calibrated(model, expt_gap):
    from sklearn.metrics import roc_auc_score

    Xtr, Xte, ytr, yte = expt_gap
    labels = np.array(["non-metal", "metal"])
    model.fit(Xtr, labels[(ytr == 0).astype(int)])
    assert model.classes_.tolist() == ["metal", "non-metal"]
    p_metal = model.predict_proba(Xte)[:, 0]
    is_metal = (yte == 0).astype(float)
    assert roc_auc_score(is_metal, p_metal) > 0.9
    assert _expected_calibration_error(p_metal, is_metal) < 0.05
    assert np.mean(model.predict(Xte) == labels[is_metal.astype(int)]) > 0.85
