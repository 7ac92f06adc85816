"""Hurdle (classify-then-regress) model for targets with a point mass at zero.

Experimental band gaps are the textbook case: about half the compounds are metals with a gap of
exactly 0 eV, the rest spread over 0.1–10 eV. One regressor fitted to both has to bend its
trees around the spike and is poor at both. :class:`HurdleRegressorUQ` fits

* a classifier of ``y <= zero`` (is the target at the point mass?), and
* regressors on the rows with ``y > zero`` only,

with one round of ``cv``-fold cross-fitting. On the out-of-fold (OOF) predictions it chooses the
probability threshold ``t`` that minimises the OOF mean absolute error of the rule
``y_hat = zero if p(zero) > t else regression``. Only the training rows passed to ``fit`` are
used for all of these choices.

The predictive standard deviation follows the two-part model: with probability ``p`` the target
is at the point mass, else ``N(r, sigma_r²)`` where ``sigma_r`` comes from a
:class:`~matforge.models.recalibration.NoiseForest` of the regression's OOF residuals (fitted on
the positive rows). The std is the root mean squared error of the rule's prediction under that
mixture — a row predicted as a metal with ``p = 0.9`` keeps the error it would have if it were
an insulator, weighted by 0.1 — times ``std_scale_`` fitted on the OOF residuals. The
calibration curve of such predictions cannot be diagonal: the rows exactly at the point mass
that are predicted there have zero error and are "covered" at every level.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from matforge.models.recalibration import NoiseForest, fit_std_scale, resolve_recalibrate
from matforge.models.stacking import cross_fit, fold_counter, kfold_indices, nnls_weights

__all__ = ["HurdleRegressorUQ"]

_STD_FLOOR = 1e-6


class HurdleRegressorUQ(RegressorMixin, BaseEstimator):
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
    noise_ : NoiseForest of the regression's absolute OOF residuals (positive rows)
    platt_ : (slope, intercept) of the Platt scaling of p(zero) used in the mixture std
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

    def fit(self, X, y, on_fold: Callable[[int, int], None] | None = None):
        """Cross-fit the classifier and regressors on ``X`` (n × d) and ``y``.

        ``on_fold(done, total)`` is called after each fitted fold model (progress reports).
        """
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
        step = fold_counter(on_fold, (1 + len(self.regressors)) * self.cv)
        self.classifiers_, proba = cross_fit(
            self.classifier,
            X,
            at_zero.astype(int),
            folds,
            method="predict_proba",
            n_jobs=self.n_jobs,
            on_fold=step,
        )
        self.oof_proba_ = proba[:, 1]
        self.regressors_, cols = {}, []
        for name, est in self.regressors:
            models, oof = cross_fit(
                est, X, y, folds, fit_mask=~at_zero, n_jobs=self.n_jobs, on_fold=step
            )
            self.regressors_[name] = models
            cols.append(oof)
        R = np.column_stack(cols)
        self.weights_ = nnls_weights(R[~at_zero], y[~at_zero])
        r = R @ self.weights_
        grid = np.arange(0.2, 0.8001, 0.025) if self.thresholds is None else self.thresholds
        maes = [np.mean(np.abs(self._rule(self.oof_proba_, r, t) - y)) for t in grid]
        self.threshold_ = float(grid[int(np.argmin(maes))])
        self.oof_prediction_ = self._rule(self.oof_proba_, r, self.threshold_)
        # Noise model of the regression part, on the rows it is meant for (y > zero); at the
        # other rows its predictions are out of sample anyway.
        seed = int(rng.randint(np.iinfo(np.int32).max))
        pos = ~at_zero
        self.noise_ = NoiseForest(
            n_estimators=self.noise_trees,
            min_samples_leaf=10,
            max_features=self.noise_max_features,
            random_state=seed,
            n_jobs=self.n_jobs,
        ).fit(np.ascontiguousarray(X[pos], dtype=np.float32), np.abs(y[pos] - r[pos]))
        sigma_r = self.noise_.predict_std(np.ascontiguousarray(X, dtype=np.float32))
        oob = self.noise_.oob_std_
        sigma_r[pos] = np.where(np.isfinite(oob), oob, sigma_r[pos])
        # Platt scaling of the OOF probabilities, for the mixture weights only (the rule's
        # threshold is chosen on the raw ones): boosted classifiers put many rows at p = 0.999,
        # and a metal call with that p would claim an error bar of almost nothing.
        from sklearn.linear_model import LogisticRegression

        platt = LogisticRegression(C=100.0).fit(_logit(self.oof_proba_)[:, None], at_zero)
        self.platt_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        raw = self._mixture_std(self.oof_proba_, r, sigma_r)
        resid = y - self.oof_prediction_
        method = resolve_recalibrate(self.recalibrate)
        self.std_scale_ = 1.0 if method is None else fit_std_scale(resid, raw, method)
        self.oof_std_ = self.std_scale_ * raw
        self.y_scale_ = float(np.std(y)) or 1.0
        return self

    def _mixture_std(self, p: np.ndarray, r: np.ndarray, sigma_r: np.ndarray) -> np.ndarray:
        """Root mean squared error of the rule's prediction under the two-part model.

        With probability ``p`` the target is ``zero``, else ``N(r, sigma_r²)``. Predicting
        ``zero`` (p > t) errs by the regression value when the row is not at the point mass;
        predicting ``r`` errs by ``r - zero`` when it is.
        """
        r = np.maximum(r, self.zero) - self.zero
        at_mass = p > self.threshold_
        a, b = self.platt_
        q = np.clip(1.0 / (1.0 + np.exp(-(a * _logit(p) + b))), 1e-3, 1.0 - 1e-3)
        mse = np.where(
            at_mass,
            (1.0 - q) * (r**2 + sigma_r**2),
            q * r**2 + (1.0 - q) * sigma_r**2,
        )
        return np.sqrt(mse)

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
        r = F.mean(axis=0)
        sigma_r = self.noise_.predict_std(np.ascontiguousarray(X, dtype=np.float32))
        # the fold-to-fold spread (variance of the mean) is a floor under the regression's noise
        if F.shape[0] > 1:
            sigma_r = np.maximum(sigma_r, F.std(axis=0, ddof=1) / math.sqrt(F.shape[0]))
        std = self.std_scale_ * self._mixture_std(p, r, sigma_r)
        return mean, np.maximum(std, _STD_FLOOR * self.y_scale_)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
