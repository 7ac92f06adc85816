"""Gradient-boosted (LightGBM) estimators with uncertainty.

:class:`BoostedEnsembleUQ` bags ``n_members`` LightGBM regressors, each trained with its own seed
on a subsample of the rows. The held-out rows of the members are spread evenly (with
``n_members=5, subsample=0.8`` they form a 5-fold partition), so every row gets an out-of-fold
prediction. The standard deviation is

``std = max(std_scale_ · noise(x), member_spread(x))``

where ``noise`` is a :class:`~matforge.models.recalibration.NoiseForest` of the absolute
out-of-fold residuals and ``std_scale_`` is fitted on those residuals; the spread of the members
(an estimate of the variance of the mean, small for boosted trees) is a floor, as the jackknife
term is for :class:`~matforge.models.forest.RandomForestUQ`.

:class:`BoostedClassifier` is a LightGBM classifier behind the scikit-learn contract.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from matforge.models.forest import _STD_FLOOR, _seeds
from matforge.models.recalibration import NoiseForest, fit_std_scale, resolve_recalibrate

__all__ = ["BoostedClassifier", "BoostedEnsembleUQ"]


def _lgbm_threads(n_jobs) -> int:
    # sklearn convention (None = 1) rather than LightGBM's (None = every core): the machines
    # matforge runs on are often shared, and OpenMP threads on busy cores crawl.
    return 1 if n_jobs is None else int(n_jobs)


def _held_out_sets(n: int, n_members: int, subsample: float, rng) -> list[np.ndarray]:
    """Row indices each member leaves out: consecutive blocks of one random permutation.

    Block ``m`` is rows ``perm[m·h : (m+1)·h]`` (wrapping around), ``h = n - round(subsample·n)``,
    so when ``n_members · h >= n`` every row is held out by at least one member.
    """
    h = n - int(round(subsample * n))
    if subsample < 1.0:
        h = min(max(h, 1), n - 1)
    perm = rng.permutation(n)
    return [perm[np.arange(m * h, (m + 1) * h) % n] for m in range(n_members)]


class BoostedEnsembleUQ(RegressorMixin, BaseEstimator):
    """Bag of LightGBM regressors with a calibrated predictive standard deviation.

    Parameters
    ----------
    n_members : int, default=5
        Number of LightGBM models.
    n_estimators, learning_rate, num_leaves, min_child_samples, colsample_bytree, reg_lambda
        Passed to each :class:`lightgbm.LGBMRegressor`. The noise forest gets
        ``min(n_estimators, 100)`` trees.
    subsample : float, default=0.8
        Fraction of the rows each member trains on (chosen by this class, not LightGBM's per-tree
        bagging); the rest give out-of-fold residuals. Must be < 1 when ``recalibrate``.
    random_state : int, RandomState or None
    n_jobs : int or None
        Members fitted in parallel threads (None = 1, -1 = all cores); each member uses one
        LightGBM thread.
    recalibrate : bool or {"rmv", "z", "coverage68"}, default=True
        Fit ``std_scale_`` on out-of-fold residuals (True = "rmv").

    Attributes
    ----------
    members_ : list of fitted LGBMRegressor
    noise_ : NoiseForest of the out-of-fold absolute residuals
    oof_prediction_ : (n_samples,) out-of-fold mean (NaN where no member held the row out)
    std_scale_ : float
    n_features_in_ : int
    """

    def __init__(
        self,
        n_members: int = 5,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 0.0,
        random_state=None,
        n_jobs=None,
        recalibrate=True,
    ):
        self.n_members = n_members
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.recalibrate = recalibrate

    def fit(self, X, y):
        """Fit the members, the noise forest and the scale factor on ``X`` (n × d) and ``y``."""
        from joblib import Parallel, delayed
        from lightgbm import LGBMRegressor
        from sklearn.utils import check_random_state

        method = resolve_recalibrate(self.recalibrate)
        if not 0.0 < self.subsample <= 1.0:
            raise ValueError(f"subsample must lie in (0, 1], got {self.subsample!r}")
        if method is not None and self.subsample >= 1.0:
            raise ValueError(
                "recalibrate needs held-out rows: set subsample < 1 or recalibrate=False"
            )
        if self.n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {self.n_members!r}")
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)
        y = y.astype(np.float64)
        n = X.shape[0]
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_members + 1)
        held_out = _held_out_sets(n, self.n_members, self.subsample, rng)

        def fit_member(seed, held):
            train = np.ones(n, dtype=bool)
            train[held] = False
            return LGBMRegressor(
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                num_leaves=self.num_leaves,
                min_child_samples=self.min_child_samples,
                colsample_bytree=self.colsample_bytree,
                reg_lambda=self.reg_lambda,
                random_state=int(seed),
                n_jobs=1,
                verbose=-1,
            ).fit(X[train], y[train])

        # Members train in parallel threads with one LightGBM thread each: on shared or busy
        # machines LightGBM's own OpenMP threads slow down badly when cores are oversubscribed.
        self.members_ = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(fit_member)(seed, held) for seed, held in zip(seeds[:-1], held_out, strict=True)
        )
        oof_sum, oof_count = np.zeros(n), np.zeros(n)
        for member, held in zip(self.members_, held_out, strict=True):
            if held.size:
                oof_sum[held] += member.predict(X[held])
                oof_count[held] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            mu_oof = np.where(oof_count > 0, oof_sum / oof_count, np.nan)
        resid = y - mu_oof
        has_oof = np.isfinite(resid)
        abs_resid = (
            np.where(has_oof, np.abs(resid), np.nanmedian(np.abs(resid)))
            if has_oof.any()
            else np.zeros(n)
        )
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        self.noise_ = NoiseForest(
            n_estimators=min(self.n_estimators, 100),
            random_state=int(seeds[-1]),
            n_jobs=self.n_jobs,
        ).fit(X32, abs_resid)
        usable = has_oof & np.isfinite(self.noise_.oob_std_)
        if method is None:
            self.std_scale_ = 1.0
        elif usable.sum() < 2:
            warnings.warn(
                f"BoostedEnsembleUQ: only {usable.sum()} rows have out-of-fold uncertainty; "
                "std_scale_ left at 1.0 (uncalibrated)",
                UserWarning,
                stacklevel=2,
            )
            self.std_scale_ = 1.0
        else:
            self.std_scale_ = fit_std_scale(resid[usable], self.noise_.oob_std_[usable], method)
        self.y_scale_ = float(np.std(y)) or 1.0
        self.oof_prediction_ = mu_oof
        return self

    def predict(self, X, return_std: bool = False):
        """Mean prediction; with ``return_std=True`` the pair ``(mean, std)`` in target units."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        P = np.stack([m.predict(X) for m in self.members_])
        mean = P.mean(axis=0)
        if not return_std:
            return mean
        spread = P.std(axis=0, ddof=1) if P.shape[0] > 1 else np.zeros(X.shape[0])
        noise = self.noise_.predict_std(np.ascontiguousarray(X, dtype=np.float32))
        std = np.maximum(self.std_scale_ * noise, spread)
        return mean, np.maximum(std, _STD_FLOOR * self.y_scale_)


class BoostedClassifier(ClassifierMixin, BaseEstimator):
    """LightGBM gradient-boosted classifier behind the scikit-learn contract.

    Labels may be any hashable values (encoded internally); binary and multiclass targets are
    supported. Parameters are passed to :class:`lightgbm.LGBMClassifier`; ``n_jobs=None`` means
    one thread.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 0.0,
        class_weight=None,
        random_state=None,
        n_jobs=None,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Fit on ``X`` (n × d) and class labels ``y``."""
        from lightgbm import LGBMClassifier
        from sklearn.utils.multiclass import check_classification_targets

        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(
                f"BoostedClassifier needs at least 2 classes, got 1 class: {self.classes_[0]!r}"
            )
        class_weight = self.class_weight
        if isinstance(class_weight, dict):  # keyed by the user's labels; LightGBM sees codes
            index = {c: i for i, c in enumerate(self.classes_.tolist())}
            class_weight = {index[c]: w for c, w in class_weight.items() if c in index}
        self.model_ = LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1.0 else 0,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            class_weight=class_weight,
            random_state=int(_seeds(self.random_state, 1)[0]),
            n_jobs=_lgbm_threads(self.n_jobs),
            verbose=-1,
        ).fit(X, y_enc)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, ``n × n_classes`` in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.model_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """Most probable class."""
        proba = self.predict_proba(X)  # first: raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]
