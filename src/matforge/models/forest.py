"""Random forests with calibrated uncertainty.

:class:`RandomForestUQ` is a bootstrap random forest whose standard deviation combines

* the variance of the forest's mean prediction, estimated from the in-bag count matrix with the
  bias-corrected infinitesimal jackknife and jackknife-after-bootstrap (Wager, Hastie & Efron,
  JMLR 2014), averaged as Citrine's Lolo does (:func:`~matforge.models.jackknife.jackknife_variance`);
* an observational term ``sqrt(tree_spread² + noise²)``: the spread of single trees (fully grown
  trees reproduce the noise of their leaves) and a :class:`~matforge.models.recalibration.NoiseForest`
  of the out-of-bag absolute residuals, scaled by ``std_scale_`` fitted on out-of-bag residuals.

``std = max(std_scale_ · observational, sqrt(max(V_jack, 0)))``: the observational term is
calibrated on out-of-bag residuals, which already contain the variance of the mean on average,
so the jackknife term acts as a floor (it wins where the trees disagree more than the residuals
predict) instead of being added twice. With few trees compared with the training rows the
jackknife estimate is dominated by Monte-Carlo noise (Wager et al. recommend B of order n), which
only makes the floor conservative.

:class:`RandomForestClassifierUQ` is a random forest whose probabilities are calibrated by
cross-validated isotonic or sigmoid regression.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from matforge.models.jackknife import (
    chunk_size,
    inbag_counts,
    jackknife_matrix,
    jackknife_variance,
    oob_mean_std,
    tree_predictions,
)
from matforge.models.recalibration import NoiseForest, fit_std_scale, resolve_recalibrate

__all__ = ["RandomForestClassifierUQ", "RandomForestUQ"]

# Relative floor on returned stds, so z-scores stay finite: 1e-6 × std of the training target.
_STD_FLOOR = 1e-6


def _seeds(random_state, k: int) -> np.ndarray:
    """``k`` int32 seeds drawn from ``random_state``, so sub-models are distinct and reproducible."""
    from sklearn.utils import check_random_state

    return check_random_state(random_state).randint(np.iinfo(np.int32).max, size=k)


class RandomForestUQ(RegressorMixin, BaseEstimator):
    """Random forest regressor with calibrated predictive standard deviation.

    Parameters
    ----------
    n_estimators : int, default=300
        Number of bootstrap trees. The jackknife variance needs many trees to be precise
        (order of the training size); the calibrated observational term does not.
    max_features : int, float or {"sqrt", "log2"}, default=1/3
        Features considered at each split (Breiman's p/3 for regression).
    min_samples_leaf : int, default=1
        Minimum bootstrap samples per leaf.
    random_state : int, RandomState or None
        Seeds the forest and the noise forest.
    n_jobs : int or None
        Threads for fitting (sklearn convention: None = 1, -1 = all cores).
    recalibrate : bool or {"rmv", "z", "coverage68"}, default=True
        Fit ``std_scale_`` on out-of-bag residuals (True = "rmv", see
        :func:`~matforge.models.recalibration.fit_std_scale`); False leaves it at 1.

    Attributes
    ----------
    forest_ : sklearn.ensemble.RandomForestRegressor
    inbag_ : (n_samples, n_estimators) uint16 array of bootstrap counts
    jackknife_matrix_ : (n_estimators, n_estimators) array, see
        :func:`~matforge.models.jackknife.jackknife_matrix`
    noise_ : NoiseForest of the out-of-bag absolute residuals
    oob_prediction_ : (n_samples,) out-of-bag mean (NaN where a row was in every sample)
    oob_std_ : (n_samples,) calibrated out-of-bag observational std, without the jackknife
        floor (NaN where fewer than 2 trees left the row out)
    std_scale_ : float
    n_features_in_ : int
    """

    def __init__(
        self,
        n_estimators: int = 300,
        max_features=1 / 3,
        min_samples_leaf: int = 1,
        random_state=None,
        n_jobs=None,
        recalibrate=True,
    ):
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.recalibrate = recalibrate

    def fit(self, X, y):
        """Fit the forest, the noise forest and the scale factor on ``X`` (n × d) and ``y``."""
        from sklearn.ensemble import RandomForestRegressor

        method = resolve_recalibrate(self.recalibrate)
        X, y = validate_data(
            self, X, y, dtype=np.float32, y_numeric=True, ensure_min_samples=2, order="C"
        )
        y = y.astype(np.float64)
        n = X.shape[0]
        seeds = _seeds(self.random_state, 2)
        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            bootstrap=True,
            random_state=seeds[0],
            n_jobs=self.n_jobs,
        ).fit(X, y)
        self.inbag_ = inbag_counts(self.forest_, n)
        self.jackknife_matrix_ = jackknife_matrix(self.inbag_, kind="average")
        mu_oob, spread_oob, _ = oob_mean_std(
            self.inbag_, tree_predictions(self.forest_.estimators_, X)
        )
        resid = y - mu_oob
        has_oob = np.isfinite(resid)
        if has_oob.sum() < 2:
            raise ValueError(
                f"RandomForestUQ: only {has_oob.sum()} of {n} training rows are out of bag in some "
                f"tree; use more trees (n_estimators={self.n_estimators}) or more rows"
            )
        # Rows that no tree left out get the median residual so the noise forest can use them
        # without pretending they were predicted out of sample.
        abs_resid = np.where(has_oob, np.abs(resid), np.nanmedian(np.abs(resid)))
        # Leaves of >= 20 rows: a forest reproduces many targets exactly out of bag (metals with
        # a band gap of 0 eV), and small leaves of such rows gave overconfident near-zero stds
        # (on expt_gap, 5-row leaves doubled the held-out NLL; 20 cost little in ranking).
        self.noise_ = NoiseForest(
            n_estimators=min(self.n_estimators, 100),
            min_samples_leaf=max(20, self.min_samples_leaf),
            max_features=self.max_features,
            random_state=seeds[1],
            n_jobs=self.n_jobs,
        ).fit(X, abs_resid)
        obs_oob = np.hypot(spread_oob, self.noise_.oob_std_)
        usable = has_oob & np.isfinite(obs_oob)
        if method is None:
            self.std_scale_ = 1.0
        elif usable.sum() < 2:
            warnings.warn(
                f"RandomForestUQ: only {usable.sum()} rows have out-of-bag uncertainty; "
                "std_scale_ left at 1.0 (uncalibrated)",
                UserWarning,
                stacklevel=2,
            )
            self.std_scale_ = 1.0
        else:
            self.std_scale_ = fit_std_scale(resid[usable], obs_oob[usable], method)
        self.y_scale_ = float(np.std(y)) or 1.0
        self.oob_prediction_ = mu_oob
        self.oob_std_ = self.std_scale_ * obs_oob
        return self

    def predict(self, X, return_std: bool = False):
        """Mean prediction; with ``return_std=True`` the pair ``(mean, std)`` in target units."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False, order="C")
        trees = self.forest_.estimators_
        mean = np.empty(X.shape[0])
        std = np.empty(X.shape[0]) if return_std else None
        step = chunk_size(len(trees))
        for start in range(0, X.shape[0], step):
            Xc = X[start : start + step]
            T = tree_predictions(trees, Xc)
            mean[start : start + step] = T.mean(axis=0)
            if return_std:
                std[start : start + step] = self._std_from_trees(Xc, T)
        return (mean, std) if return_std else mean

    def _std_from_trees(self, X: np.ndarray, T: np.ndarray) -> np.ndarray:
        spread = T.std(axis=0, ddof=1) if T.shape[0] > 1 else np.zeros(T.shape[1])
        observational = self.std_scale_ * np.hypot(spread, self.noise_.predict_std(X))
        v_jack = jackknife_variance(self.inbag_, T, "average", matrix=self.jackknife_matrix_)
        v_mean = np.maximum(v_jack, 0.0)
        return np.maximum(np.maximum(observational, np.sqrt(v_mean)), _STD_FLOOR * self.y_scale_)


class RandomForestClassifierUQ(ClassifierMixin, BaseEstimator):
    """Random forest classifier with calibrated class probabilities.

    The forest is wrapped in :class:`sklearn.calibration.CalibratedClassifierCV`: ``cv`` forests
    are fitted on folds and their probabilities mapped through isotonic (or sigmoid) regression
    fitted on the held-out fold; ``predict_proba`` averages the calibrated folds.

    Parameters
    ----------
    n_estimators, max_features, min_samples_leaf, random_state, n_jobs
        As for :class:`sklearn.ensemble.RandomForestClassifier`.
    method : {"isotonic", "sigmoid"}, default="isotonic"
        Isotonic needs a few hundred rows per class to beat sigmoid; use "sigmoid" below that.
    cv : int, default=5
        Folds for calibration; reduced to the smallest class count when a class is rarer
        (and calibration is skipped, with a warning, when a class has a single row).

    Attributes
    ----------
    calibrated_ : CalibratedClassifierCV or RandomForestClassifier (uncalibrated fallback)
    classes_ : array of class labels
    n_features_in_ : int
    """

    def __init__(
        self,
        n_estimators: int = 300,
        max_features="sqrt",
        min_samples_leaf: int = 1,
        method: str = "isotonic",
        cv: int = 5,
        random_state=None,
        n_jobs=None,
    ):
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.method = method
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Fit the calibrated forest on ``X`` (n × d) and class labels ``y``."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.model_selection import StratifiedKFold
        from sklearn.utils.multiclass import check_classification_targets

        if self.method not in ("isotonic", "sigmoid"):
            raise ValueError(f"method must be 'isotonic' or 'sigmoid', got {self.method!r}")
        X, y = validate_data(self, X, y, dtype=np.float32, order="C")
        check_classification_targets(y)
        self.classes_, counts = np.unique(y, return_counts=True)
        if self.classes_.size < 2:
            raise ValueError(
                f"RandomForestClassifierUQ needs at least 2 classes, got 1 class: {self.classes_[0]!r}"
            )
        seeds = _seeds(self.random_state, 2)
        forest = RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            random_state=seeds[0],
            n_jobs=self.n_jobs,
        )
        folds = min(int(self.cv), int(counts.min()))
        if folds < 2:
            warnings.warn(
                f"RandomForestClassifierUQ: the rarest class has {counts.min()} row(s); "
                "probabilities are left uncalibrated",
                UserWarning,
                stacklevel=2,
            )
            self.calibrated_ = forest.fit(X, y)
        else:
            cv = StratifiedKFold(folds, shuffle=True, random_state=seeds[1])
            self.calibrated_ = CalibratedClassifierCV(forest, method=self.method, cv=cv).fit(X, y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities, ``n × n_classes`` in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False, order="C")
        return self.calibrated_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """Most probable class."""
        proba = self.predict_proba(X)  # first: raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]
