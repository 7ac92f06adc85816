"""Hurdle (classify-then-regress) model for targets with a point mass at zero.

Experimental band gaps are the textbook case: about half the compounds are metals with a gap of
exactly 0 eV, the rest spread over 0.1–10 eV. One regressor fitted to both has to bend its
trees around the spike and is poor at both. :class:`HurdleRegressorUQ` fits

* a classifier of ``y <= zero`` (is the target at the point mass?), and
* regressors on the rows with ``y > zero`` only,

with one round of ``cv``-fold cross-fitting. On the out-of-fold (OOF) predictions it chooses the
probability threshold ``t`` that minimises the OOF mean absolute error of the rule
``y_hat = zero if p(zero) > t else regression``, and fits a noise model of the rule's OOF
residuals for the predictive standard deviation (see
:class:`~matforge.models.stacking.StackedRegressorUQ`). Only the training rows passed to ``fit``
are used for all of these choices.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from matforge.models.stacking import _NoiseModelMixin, cross_fit, kfold_indices, nnls_weights

__all__ = ["HurdleRegressorUQ"]

_STD_FLOOR = 1e-6


class HurdleRegressorUQ(_NoiseModelMixin, RegressorMixin, BaseEstimator):
    """Classifier of ``y <= zero`` gating NNLS-blended regressors of the positive part.

    Parameters
    ----------
    classifier : classifier with ``predict_proba``
        Fitted on the label ``y <= zero`` (True = at the point mass).
    regressors : list of (name, regressor)
        Fitted on the rows with ``y > zero``; blended with NNLS weights on their OOF predictions.
    zero : float, default=0.0
        Targets at or below this value form the point mass (in the units the model sees).
    thresholds : sequence of float, default=None
        Candidate thresholds on ``p(zero)``; None = 0.20, 0.225, ..., 0.80.
    cv, noise_trees, noise_max_features, recalibrate, random_state, n_jobs
        As for :class:`~matforge.models.stacking.StackedRegressorUQ`.

    Attributes
    ----------
    classifiers_ : list of ``cv`` fold classifiers
    regressors_ : dict name -> list of ``cv`` fold regressors
    weights_ : (n_regressors,) blend weights
    threshold_ : float, the chosen threshold on p(zero)
    oof_proba_ : (n_samples,) OOF p(zero)
    oof_prediction_, oof_std_ : (n_samples,) OOF mean and calibrated std
    std_scale_ : float
    """

    def __init__(
        self,
        classifier,
        regressors,
        zero: float = 0.0,
        thresholds=None,
        cv: int = 5,
        noise_trees: int = 100,
        noise_max_features: float = 0.1,
        recalibrate=True,
        random_state=None,
        n_jobs=None,
    ):
        self.classifier = classifier
        self.regressors = regressors
        self.zero = zero
        self.thresholds = thresholds
        self.cv = cv
        self.noise_trees = noise_trees
        self.noise_max_features = noise_max_features
        self.recalibrate = recalibrate
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Cross-fit the classifier and regressors on ``X`` (n × d) and ``y``."""
        from sklearn.utils import check_random_state

        X, y = validate_data(
            self,
            X,
            y,
            dtype=np.float64,
            y_numeric=True,
            ensure_all_finite="allow-nan",
            ensure_min_samples=2 * self.cv,
        )
        y = y.astype(np.float64)
        at_zero = y <= self.zero
        if at_zero.sum() < self.cv or (~at_zero).sum() < 2 * self.cv:
            raise ValueError(
                f"HurdleRegressorUQ needs at least {self.cv} rows with y <= {self.zero} and "
                f"{2 * self.cv} above it; got {at_zero.sum()} and {(~at_zero).sum()}"
            )
        rng = check_random_state(self.random_state)
        folds = kfold_indices(X.shape[0], self.cv, rng, stratify=at_zero)
        self.classifiers_, proba = cross_fit(
            self.classifier,
            X,
            at_zero.astype(int),
            folds,
            method="predict_proba",
            n_jobs=self.n_jobs,
        )
        self.oof_proba_ = proba[:, 1]
        self.regressors_, cols = {}, []
        for name, est in self.regressors:
            models, oof = cross_fit(est, X, y, folds, fit_mask=~at_zero, n_jobs=self.n_jobs)
            self.regressors_[name] = models
            cols.append(oof)
        R = np.column_stack(cols)
        self.weights_ = nnls_weights(R[~at_zero], y[~at_zero])
        r = R @ self.weights_
        grid = np.arange(0.2, 0.8001, 0.025) if self.thresholds is None else self.thresholds
        maes = [np.mean(np.abs(self._rule(self.oof_proba_, r, t) - y)) for t in grid]
        self.threshold_ = float(grid[int(np.argmin(maes))])
        self.oof_prediction_ = self._rule(self.oof_proba_, r, self.threshold_)
        self._fit_noise(X, y - self.oof_prediction_, int(rng.randint(np.iinfo(np.int32).max)))
        self.y_scale_ = float(np.std(y)) or 1.0
        return self

    def _rule(self, p: np.ndarray, r: np.ndarray, t: float) -> np.ndarray:
        return np.where(p > t, self.zero, np.maximum(r, self.zero))

    def predict_proba_zero(self, X) -> np.ndarray:
        """Probability that the target is at the point mass (``y <= zero``)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite="allow-nan")
        return np.mean([c.predict_proba(X)[:, 1] for c in self.classifiers_], axis=0)

    def predict(self, X, return_std: bool = False):
        """Mean prediction; with ``return_std=True`` the pair ``(mean, std)`` in target units."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite="allow-nan")
        p = np.mean([c.predict_proba(X)[:, 1] for c in self.classifiers_], axis=0)
        F = 0.0
        for w, (name, _) in zip(self.weights_, self.regressors, strict=True):
            if w > 0:
                F = F + w * np.stack([m.predict(X) for m in self.regressors_[name]])
        F = np.atleast_2d(F)
        mean = self._rule(p, F.mean(axis=0), self.threshold_)
        if not return_std:
            return mean
        # Fold-to-fold spread of the regression part, only where the regression is used.
        spread = F.std(axis=0, ddof=1) / math.sqrt(F.shape[0]) if F.shape[0] > 1 else 0.0
        spread = np.where(p > self.threshold_, 0.0, spread)
        std = np.maximum(self._noise_std(X), spread)
        return mean, np.maximum(std, _STD_FLOOR * self.y_scale_)
