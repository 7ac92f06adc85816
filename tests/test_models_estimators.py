"""Behaviour of the matforge.models estimators that users rely on (beyond sklearn's checks)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.model_selection import train_test_split

from matforge.models import (
    AutoRegressor,
    BoostedEnsembleUQ,
    GaussianProcessUQ,
    RandomForestUQ,
    calibration_report,
    jackknife,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module", autouse=True)
def _single_threaded_blas():
    """One BLAS thread: the GP's small Cholesky factorisations crawl when two OpenBLAS threads
    compete for busy cores (CI runners, shared machines); they gain nothing from threads."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def friedman():
    X, y = make_friedman1(240, noise=1.0, random_state=0)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def _small(cls, **kw):
    if cls is RandomForestUQ:
        return RandomForestUQ(n_estimators=60, random_state=0, **kw)
    if cls is BoostedEnsembleUQ:
        return BoostedEnsembleUQ(n_estimators=60, random_state=0, **kw)
    return GaussianProcessUQ(n_restarts_optimizer=0, random_state=0, **kw)


REGRESSORS = [RandomForestUQ, BoostedEnsembleUQ, GaussianProcessUQ]


@pytest.mark.parametrize("cls", REGRESSORS)
def test_predict_with_and_without_std(cls, friedman):
    Xtr, Xte, ytr, _ = friedman
    model = _small(cls).fit(Xtr, ytr)
    mean, std = model.predict(Xte, return_std=True)
    assert mean.shape == std.shape == (Xte.shape[0],)
    np.testing.assert_allclose(mean, model.predict(Xte))
    assert np.all(std > 0) and np.all(np.isfinite(std))
    assert model.std_scale_ > 0


@pytest.mark.parametrize("cls", REGRESSORS)
def test_std_is_in_target_units(cls, friedman):
    """Measuring the target in units 1024× smaller scales mean and std by 1024.

    (A power of two, so that the rescaled targets are exact in floating point: sklearn's tree
    splitter breaks near-ties differently after an inexact rescaling.)
    """
    Xtr, Xte, ytr, _ = friedman
    mean, std = _small(cls).fit(Xtr, ytr).predict(Xte, return_std=True)
    mean_k, std_k = _small(cls).fit(Xtr, 1024 * ytr).predict(Xte, return_std=True)
    np.testing.assert_allclose(mean_k, 1024 * mean, rtol=1e-4)
    np.testing.assert_allclose(std_k, 1024 * std, rtol=1e-3)


@pytest.mark.parametrize("cls", REGRESSORS)
def test_recalibrate_options(cls, friedman):
    Xtr, Xte, ytr, _ = friedman
    assert _small(cls, recalibrate=False).fit(Xtr, ytr).std_scale_ == 1.0
    z = _small(cls, recalibrate="z").fit(Xtr, ytr)
    assert z.std_scale_ != 1.0
    with pytest.raises(ValueError, match="recalibrate must be"):
        clone(z).set_params(recalibrate="sometimes").fit(Xtr, ytr)


@pytest.mark.parametrize("cls", REGRESSORS)
def test_same_seed_same_model(cls, friedman):
    Xtr, Xte, ytr, _ = friedman
    a = _small(cls).fit(Xtr, ytr).predict(Xte, return_std=True)
    b = clone(_small(cls)).fit(Xtr, ytr).predict(Xte, return_std=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_forest_predicts_in_bounded_chunks(friedman, monkeypatch):
    Xtr, Xte, ytr, _ = friedman
    model = _small(RandomForestUQ).fit(Xtr, ytr)
    whole = model.predict(Xte, return_std=True)
    monkeypatch.setattr(jackknife, "_CHUNK_ELEMENTS", 7 * 60)  # 60 trees × 7 rows at a time
    chunked = model.predict(Xte, return_std=True)
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-12)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=1e-12)


def test_forest_mean_is_the_sklearn_forest(friedman):
    Xtr, Xte, ytr, _ = friedman
    model = _small(RandomForestUQ).fit(Xtr, ytr)
    np.testing.assert_allclose(model.predict(Xte), model.forest_.predict(Xte), rtol=1e-10)
    assert model.inbag_.shape == (Xtr.shape[0], 60)
    oob = np.isfinite(model.oob_prediction_)
    assert oob.mean() > 0.99  # (1 - 1/e)^60: essentially every row is out of bag somewhere
    # OOB predictions are honest: worse than in-sample, close to the held-out error
    in_sample = np.mean((model.predict(Xtr) - ytr) ** 2)
    assert np.mean((model.oob_prediction_[oob] - ytr[oob]) ** 2) > 2 * in_sample


def test_forest_std_floor_is_jackknife_where_trees_disagree(friedman):
    Xtr, Xte, ytr, _ = friedman
    model = _small(RandomForestUQ).fit(Xtr, ytr)
    _, std = model.predict(Xte, return_std=True)
    T = jackknife.tree_predictions(model.forest_.estimators_, Xte.astype(np.float32))
    v = np.maximum(jackknife.jackknife_variance(model.inbag_, T), 0)
    assert np.all(std >= np.sqrt(v) - 1e-12)


def test_boosted_members_hold_out_a_partition(friedman):
    Xtr, _, ytr, _ = friedman
    model = BoostedEnsembleUQ(n_members=5, subsample=0.8, n_estimators=30, random_state=1)
    model.fit(Xtr, ytr)
    assert len(model.members_) == 5
    assert np.isfinite(model.oof_prediction_).all()  # 5 × 20% held out covers every row
    with pytest.raises(ValueError, match="subsample < 1"):
        clone(model).set_params(subsample=1.0).fit(Xtr, ytr)
    assert clone(model).set_params(subsample=1.0, recalibrate=False).fit(Xtr, ytr).std_scale_ == 1


def test_gp_leave_one_out_matches_refitting():
    """The closed-form LOO residuals equal refitting the GP (same kernel) without each row."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:80, :4], y[:80]
    model = GaussianProcessUQ(n_restarts_optimizer=0, random_state=0, recalibrate=False)
    model.fit(X, y)
    Xs = (X - model.x_mean_) / model.x_scale_
    ys = (y - model.y_mean_) / model.y_scale_
    for i in (0, 17, 79):
        keep = np.arange(80) != i
        gp = GaussianProcessRegressor(model.gp_.kernel_, alpha=1e-8, optimizer=None)
        mu, sd = gp.fit(Xs[keep], ys[keep]).predict(Xs[i : i + 1], return_std=True)
        assert model.loo_prediction_[i] == pytest.approx(mu[0] * model.y_scale_ + model.y_mean_)
        assert model.loo_std_[i] == pytest.approx(sd[0] * model.y_scale_, rel=1e-5)


def test_gp_calibrated_on_held_out_diabetes():
    X, y = load_diabetes(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.33, random_state=0)
    model = GaussianProcessUQ(n_restarts_optimizer=0, random_state=0).fit(Xtr, ytr)
    report = calibration_report(yte, *model.predict(Xte, return_std=True))
    assert 0.88 <= report["coverage_95"] <= 0.99
    assert report["miscalibration_area"] < 0.1


def test_gp_warns_on_large_data(monkeypatch):
    from matforge.models import gaussian_process

    monkeypatch.setattr(gaussian_process, "LARGE_DATA_ROWS", 50)
    X, y = make_friedman1(60, random_state=0)
    with pytest.warns(UserWarning, match="60 rows"):
        GaussianProcessUQ(n_restarts_optimizer=0).fit(X, y)


def test_import_is_lazy():
    """``import matforge.models`` must not pull in scikit-learn or LightGBM."""
    code = (
        "import sys, matforge.models as m; "
        "assert 'sklearn' not in sys.modules and 'lightgbm' not in sys.modules; "
        "assert 'RandomForestUQ' in dir(m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class _SlowMean(RegressorMixin, BaseEstimator):
    """Predicts the training mean ± training std after sleeping ``delay`` seconds in fit;
    ``fits`` counts the fits of every instance (clones included)."""

    fits = 0

    def __init__(self, delay: float = 0.0):
        self.delay = delay

    def fit(self, X, y):
        type(self).fits += 1
        time.sleep(self.delay)
        self.mean_, self.std_ = float(np.mean(y)), float(np.std(y)) or 1.0
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X, return_std=False):
        mean = np.full(len(X), self.mean_)
        return (mean, np.full(len(X), self.std_)) if return_std else mean


def test_auto_picks_the_best_held_out_model(friedman):
    Xtr, Xte, ytr, _ = friedman
    auto = AutoRegressor(
        candidates=[_SlowMean(), _small(RandomForestUQ)], cv=3, time_budget_s=120, random_state=0
    ).fit(Xtr, ytr)
    assert [r["status"] for r in auto.cv_results_] == ["done", "done"]
    assert all(len(r["fold_scores"]) == 3 for r in auto.cv_results_)
    assert auto.cv_results_[1]["mean_score"] < auto.cv_results_[0]["mean_score"]  # NLL
    assert auto.best_index_ == 1 and isinstance(auto.best_estimator_, RandomForestUQ)
    mean, std = auto.predict(Xte, return_std=True)
    np.testing.assert_allclose(mean, auto.best_estimator_.predict(Xte))
    assert np.all(std > 0)


def test_auto_respects_the_time_budget(friedman):
    Xtr, _, ytr, _ = friedman
    auto = AutoRegressor(
        candidates=[_SlowMean(delay=0.3), _SlowMean(delay=0.3), _SlowMean()],
        cv=5,
        time_budget_s=0.5,
    )
    _SlowMean.fits = 0
    with pytest.warns(UserWarning, match="no candidate finished"):
        auto.fit(Xtr, ytr)
    # the first fold (0.3 s) shows that 4 more cannot fit in the 0.2 s left: stop there
    assert auto.cv_results_[0]["status"] == "over budget"
    assert len(auto.cv_results_[0]["fold_scores"]) == 1
    assert auto.cv_results_[1]["status"] in ("over budget", "not started")
    assert auto.cv_results_[2]["status"] == "not started"
    assert auto.best_index_ == 0
    # 1-2 folds and the refit, not 15 fits (counted, not timed: a busy machine is slow)
    assert 2 <= _SlowMean.fits <= 3


def test_auto_rejects_bad_settings(friedman):
    Xtr, _, ytr, _ = friedman
    with pytest.raises(ValueError, match="scoring"):
        AutoRegressor(candidates=[_SlowMean()], scoring="r2").fit(Xtr, ytr)
    with pytest.raises(ValueError, match="time_budget_s"):
        AutoRegressor(candidates=[_SlowMean()], time_budget_s=0).fit(Xtr, ytr)
