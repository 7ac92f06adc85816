"""Cross-fitted stacks of point estimators, with a calibrated predictive standard deviation.

:class:`StackedRegressorUQ` turns any scikit-learn regressors (LightGBM, random forests, ...)
into one model with uncertainty, using a single round of ``cv``-fold cross-fitting:

1. every base regressor is fitted ``cv`` times, each time on all rows but one fold, and predicts
   that fold, which gives an out-of-fold (OOF) prediction for every training row;
2. the base models' OOF predictions are blended with non-negative least-squares weights;
3. a noise model (a :class:`~matforge.models.recalibration.NoiseForest`) learns the size of the
   blend's absolute OOF residual as a function of ``x``; its out-of-bag values are scaled by
   ``std_scale_`` (fitted on the OOF residuals) so the Gaussian intervals are calibrated.

At prediction time the ``cv`` fold models of each base are averaged (cross-fit bagging; with
``refit=True`` the bases are refitted on all rows for the mean, which pays on small data),
and the spread of the fold models, an estimate of the variance of the mean, is a floor under
the noise-model std (as in :class:`~matforge.models.boosting.BoostedEnsembleUQ`).

:class:`StackedClassifier` does the same for classifiers: OOF probabilities of every base are
combined by a logistic regression on their logits, which also calibrates them.

The OOF predictions (``oof_prediction_``, ``oof_std_``) are kept: callers use them to
recalibrate in another target space and to report cross-validated metrics without refitting.
"""

from __future__ import annotations

import itertools
import math
import threading
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from matforge.models.recalibration import NoiseForest, fit_std_scale, resolve_recalibrate

__all__ = [
    "BlendedRegressorUQ",
    "StackedClassifier",
    "StackedRegressorUQ",
    "cross_fit",
    "fold_counter",
    "kfold_indices",
    "nnls_weights",
    "reports_folds",
]

_STD_FLOOR = 1e-6  # relative to the training target's std, keeps z-scores finite


def kfold_indices(n: int, cv: int, random_state=None, stratify=None) -> list[np.ndarray]:
    """Held-out row indices of ``cv`` shuffled folds (stratified when ``stratify`` is given)."""
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.utils import check_random_state

    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    if cv < 2:
        raise ValueError(f"cv must be >= 2, got {cv!r}")
    rows = np.zeros((n, 1))
    if stratify is not None:
        _, counts = np.unique(stratify, return_counts=True)
        if counts.min() >= cv:
            splitter = StratifiedKFold(cv, shuffle=True, random_state=seed)
            return [test for _, test in splitter.split(rows, stratify)]
    splitter = KFold(cv, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(rows)]


def cross_fit(
    estimator,
    X: np.ndarray,
    y: np.ndarray,
    folds: list[np.ndarray],
    method: str = "predict",
    fit_mask: np.ndarray | None = None,
    n_jobs=None,
    on_fold: Callable[[], None] | None = None,
) -> tuple[list, np.ndarray]:
    """Fit a clone of ``estimator`` per fold on the other folds; predict the held-out fold.

    ``fit_mask`` (bool, n) restricts the rows each clone trains on (e.g. only non-zero targets)
    while still predicting every held-out row. Returns ``(models, oof)``; ``oof`` has shape
    (n,) for ``method="predict"`` and (n, n_classes) for ``"predict_proba"``. ``on_fold()`` is
    called as each fold finishes (from the worker thread with ``n_jobs``).
    """
    from joblib import Parallel, delayed

    n = X.shape[0]

    def one(held):
        train = np.ones(n, dtype=bool)
        train[held] = False
        if fit_mask is not None:
            train &= fit_mask
        model = clone(estimator).fit(X[train], y[train])
        pred = getattr(model, method)(X[held])
        if on_fold is not None:
            on_fold()
        return model, pred

    results = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(one)(h) for h in folds)
    first = np.asarray(results[0][1])
    oof = np.full((n, *first.shape[1:]), np.nan)
    for (_, pred), held in zip(results, folds, strict=True):
        oof[held] = pred
    return [m for m, _ in results], oof


def fold_counter(
    on_fold: Callable[[int, int], None] | None, total: int
) -> Callable[[], None] | None:
    """A no-argument step callback (for :func:`cross_fit`) reporting ``on_fold(done, total)``
    in order, also when the steps finish in parallel threads; None for no ``on_fold``."""
    if on_fold is None:
        return None
    count = itertools.count(1)
    lock = threading.Lock()

    def step() -> None:
        with lock:
            on_fold(next(count), total)

    return step


def reports_folds(estimator) -> bool:
    """Whether ``estimator.fit`` takes an ``on_fold(done, total)`` progress callback."""
    import inspect

    return "on_fold" in inspect.signature(estimator.fit).parameters


def nnls_weights(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative blend weights of the columns of ``P`` for ``y``, normalised to sum to 1."""
    from scipy.optimize import nnls

    if P.shape[1] == 1:
        return np.ones(1)
    w, _ = nnls(P, y)
    total = w.sum()
    return w / total if total > 0 else np.full(P.shape[1], 1.0 / P.shape[1])


class _NoiseModelMixin:
    """Noise forest of OOF |residuals| + calibrated scale; shared by stacked/hurdle models."""

    def _fit_noise(self, X: np.ndarray, resid: np.ndarray, seed: int) -> None:
        method = resolve_recalibrate(self.recalibrate)
        abs_r = np.abs(resid)
        self.noise_ = NoiseForest(
            n_estimators=self.noise_trees,
            min_samples_leaf=10,
            max_features=self.noise_max_features,
            random_state=seed,
            n_jobs=self.n_jobs,
        ).fit(np.ascontiguousarray(X, dtype=np.float32), abs_r)
        oob = self.noise_.oob_std_
        usable = np.isfinite(oob)
        if method is None:
            self.std_scale_ = 1.0
        elif usable.sum() < 2:
            warnings.warn(
                f"{type(self).__name__}: only {usable.sum()} rows have an out-of-bag noise "
                "estimate; std_scale_ left at 1.0 (uncalibrated)",
                UserWarning,
                stacklevel=3,
            )
            self.std_scale_ = 1.0
        else:
            self.std_scale_ = fit_std_scale(resid[usable], oob[usable], method)
        fallback = float(np.sqrt(np.mean(resid**2))) if resid.size else 0.0
        self.oof_std_ = np.where(usable, self.std_scale_ * oob, fallback)

    def _noise_std(self, X: np.ndarray) -> np.ndarray:
        return self.std_scale_ * self.noise_.predict_std(np.ascontiguousarray(X, dtype=np.float32))


class StackedRegressorUQ(_NoiseModelMixin, RegressorMixin, BaseEstimator):
    """Cross-fitted, NNLS-blended stack of regressors with a calibrated std.

    Parameters
    ----------
    estimators : list of (name, regressor)
        Point regressors (only ``predict`` is used). NaN in ``X`` is passed through, so use
        estimators that accept it (LightGBM, scikit-learn forests >= 1.4) or impute before.
    cv : int, default=5
        Folds of the cross-fitting; each base is fitted ``cv`` times.
    noise_trees : int, default=100
        Trees of the noise forest.
    noise_max_features : float, default=0.1
        Fraction of features the noise forest considers per split (small: it is only a scale).
    recalibrate : bool or {"rmv", "z", "coverage68"}, default=True
        How ``std_scale_`` is fitted on the OOF residuals (True = "rmv").
    random_state : int, RandomState or None
    n_jobs : int or None
        Fold models fitted in parallel threads (None = 1).
    refit : bool, default=False
        Also refit every base with a non-zero weight on all rows and predict the mean with
        those models (the fold models then only give the spread). Worth its cost on small
        data, where a fold model misses a fifth of few rows; on large data the average of the
        fold models is as accurate.

    Attributes
    ----------
    models_ : dict name -> list of ``cv`` fitted fold models
    refitted_ : dict name -> base refitted on all rows (``refit=True``; empty otherwise)
    weights_ : (n_estimators,) blend weights
    oof_prediction_, oof_std_ : (n_samples,) out-of-fold mean and calibrated std
    oof_base_ : (n_samples, n_estimators) OOF predictions of every base
    std_scale_ : float
    """

    def __init__(
        self,
        estimators,
        cv: int = 5,
        noise_trees: int = 100,
        noise_max_features: float = 0.1,
        recalibrate=True,
        random_state=None,
        n_jobs=None,
        refit: bool = False,
    ):
        self.estimators = estimators
        self.cv = cv
        self.noise_trees = noise_trees
        self.noise_max_features = noise_max_features
        self.recalibrate = recalibrate
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.refit = refit

    def fit(self, X, y, on_fold: Callable[[int, int], None] | None = None):
        """Cross-fit every base on ``X`` (n × d) and ``y``; fit blend weights and noise model.

        ``on_fold(done, total)`` is called after each fitted model (folds, noise model,
        refits), for progress reports.
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
        rng = check_random_state(self.random_state)
        folds = kfold_indices(X.shape[0], self.cv, rng)
        n_est = len(self.estimators)
        step = fold_counter(on_fold, n_est * self.cv + 1 + (n_est if self.refit else 0))
        self.models_, cols = {}, []
        for name, est in self.estimators:
            models, oof = cross_fit(est, X, y, folds, n_jobs=self.n_jobs, on_fold=step)
            self.models_[name] = models
            cols.append(oof)
        self.oof_base_ = np.column_stack(cols)
        self.weights_ = nnls_weights(self.oof_base_, y)
        self.oof_prediction_ = self.oof_base_ @ self.weights_
        self._fit_noise(X, y - self.oof_prediction_, int(rng.randint(np.iinfo(np.int32).max)))
        if step is not None:
            step()
        self.refitted_ = {}
        if self.refit:
            for w, (name, est) in zip(self.weights_, self.estimators, strict=True):
                if w > 0:
                    self.refitted_[name] = clone(est).fit(X, y)
                if step is not None:
                    step()
        self.y_scale_ = float(np.std(y)) or 1.0
        return self

    def _refit_mean(self, X: np.ndarray) -> np.ndarray:
        names = [n for n, _ in self.estimators]
        return sum(
            self.weights_[names.index(name)] * model.predict(X)
            for name, model in self.refitted_.items()
        )

    def _fold_means(self, X: np.ndarray) -> np.ndarray:
        """(cv, n) blended predictions of the k-th fold model of every base."""
        out = 0.0
        for w, (name, _) in zip(self.weights_, self.estimators, strict=True):
            if w > 0:
                out = out + w * np.stack([m.predict(X) for m in self.models_[name]])
        return np.atleast_2d(out)

    def predict(self, X, return_std: bool = False):
        """Mean prediction; with ``return_std=True`` the pair ``(mean, std)`` in target units."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite="allow-nan")
        if self.refitted_ and not return_std:
            return self._refit_mean(X)
        F = self._fold_means(X)
        mean = self._refit_mean(X) if self.refitted_ else F.mean(axis=0)
        if not return_std:
            return mean
        spread = F.std(axis=0, ddof=1) / math.sqrt(F.shape[0]) if F.shape[0] > 1 else 0.0
        std = np.maximum(self._noise_std(X), spread)
        return mean, np.maximum(std, _STD_FLOOR * self.y_scale_)


class StackedClassifier(ClassifierMixin, BaseEstimator):
    """Cross-fitted stack of binary classifiers, combined by logistic regression on logits.

    Parameters
    ----------
    estimators : list of (name, classifier)
        Classifiers with ``predict_proba``.
    cv : int, default=5
        Stratified folds of the cross-fitting.
    random_state, n_jobs
        As for :class:`StackedRegressorUQ`.

    Attributes
    ----------
    models_ : dict name -> list of fold models
    meta_ : fitted LogisticRegression on the OOF logits
    oof_proba_ : (n_samples,) calibrated OOF probability of ``classes_[1]``
    classes_ : the two class labels
    """

    def __init__(self, estimators, cv: int = 5, random_state=None, n_jobs=None):
        self.estimators = estimators
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y, on_fold: Callable[[int, int], None] | None = None):
        """Cross-fit every base on ``X`` and binary labels ``y``; fit the logistic combiner.

        ``on_fold(done, total)`` is called after each fitted fold model (progress reports).
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.utils import check_random_state
        from sklearn.utils.multiclass import check_classification_targets

        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if self.classes_.size != 2:
            raise ValueError(
                f"StackedClassifier is binary; got {self.classes_.size} classes: {self.classes_!r}"
            )
        rng = check_random_state(self.random_state)
        folds = kfold_indices(X.shape[0], self.cv, rng, stratify=y_enc)
        step = fold_counter(on_fold, len(self.estimators) * self.cv)
        self.models_, cols = {}, []
        for name, est in self.estimators:
            models, oof = cross_fit(
                est, X, y_enc, folds, method="predict_proba", n_jobs=self.n_jobs, on_fold=step
            )
            self.models_[name] = models
            cols.append(_logit(oof[:, 1]))
        Z = np.column_stack(cols)
        self.meta_ = LogisticRegression(C=1.0).fit(Z, y_enc)
        self.oof_proba_ = self.meta_.predict_proba(Z)[:, 1]
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities, (n, 2) in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite="allow-nan")
        Z = np.column_stack(
            [
                _logit(np.mean([m.predict_proba(X)[:, 1] for m in self.models_[name]], axis=0))
                for name, _ in self.estimators
            ]
        )
        return self.meta_.predict_proba(Z)

    def predict(self, X) -> np.ndarray:
        """Most probable class."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class BlendedRegressorUQ(RegressorMixin, BaseEstimator):
    """NNLS blend of uncertainty-aware regressors that cross-fit themselves, each on its columns.

    Every base is fitted once, on all rows of its own columns of ``X``, and must leave
    out-of-fold predictions behind (``oof_prediction_``, ``oof_std_``), as
    :class:`StackedRegressorUQ` and the cross-fitted
    :class:`~matforge.models.transformer.CompositionTransformer` do. The blend weights are the
    non-negative least-squares weights of those OOF predictions, so a base that does not help
    on held-out rows gets weight 0: inner cross-validation decides whether it takes part. The
    std is the same blend of the bases' stds (their errors are strongly correlated, so the
    stds add rather than add in quadrature), times ``std_scale_`` fitted on the blend's OOF
    residuals.

    Parameters
    ----------
    estimators : list of (name, regressor, columns)
        ``columns`` (a ``slice`` or a list of column indices) picks the columns of ``X`` the
        base sees: e.g. the element tokens for the attention model, the descriptors for the
        trees. Names may not contain ``"."`` or ``"/"``.
    recalibrate : bool or {"rmv", "z", "coverage68"}, default=True
        How ``std_scale_`` is fitted on the OOF residuals (True = "rmv").

    Attributes
    ----------
    estimators_ : dict name -> fitted base
    weights_ : (n_estimators,) blend weights (sum 1)
    oof_prediction_, oof_std_ : (n_samples,) out-of-fold mean and calibrated std
    oof_base_ : (n_samples, n_estimators) OOF predictions of every base
    std_scale_ : float
    """

    def __init__(self, estimators, recalibrate=True):
        self.estimators = estimators
        self.recalibrate = recalibrate

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # passed through to the bases (LightGBM takes NaN)
        return tags

    def _check_estimators(self) -> list:
        bases = list(self.estimators)
        if not bases:
            raise ValueError("estimators is empty")
        names = [entry[0] for entry in bases]
        for entry in bases:
            if len(entry) != 3:
                raise ValueError(f"each estimator is (name, regressor, columns), got {entry!r}")
            if not isinstance(entry[0], str) or not entry[0] or set(entry[0]) & {".", "/"}:
                raise ValueError(f"estimator names are non-empty, without '.' or '/': {entry[0]!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"estimator names must be unique, got {names}")
        return bases

    def fit(self, X, y, on_fold: Callable[[int, int], None] | None = None):
        """Fit every base on its columns of ``X``; blend their OOF predictions.

        ``on_fold(done, total)`` reports the bases' own steps (their folds or members) where
        their ``fit`` takes ``on_fold``, else one step per base; ``total`` counts a base not
        started yet as one step, so it grows as the bases start.
        """
        bases = self._check_estimators()
        X, y = validate_data(
            self, X, y, dtype=np.float64, y_numeric=True, ensure_all_finite="allow-nan"
        )
        y = y.astype(np.float64)
        self.estimators_, means, stds = {}, [], []
        finished = 0  # steps of the finished bases
        for k, (name, est, columns) in enumerate(bases):
            model = clone(est)
            later = len(bases) - k - 1  # bases not started yet: one step each for now
            seen = {"total": 1}
            if on_fold is not None and reports_folds(model):

                def step(done, total, before=finished, later=later, seen=seen) -> None:
                    seen["total"] = total
                    on_fold(before + done, before + total + later)

                model.fit(X[:, columns], y, on_fold=step)
            else:
                model.fit(X[:, columns], y)
                if on_fold is not None:
                    on_fold(finished + 1, finished + 1 + later)
            finished += seen["total"]
            mu = getattr(model, "oof_prediction_", None)
            sigma = getattr(model, "oof_std_", None)
            if mu is None or sigma is None:
                raise ValueError(
                    f"base {name!r} ({type(est).__name__}) leaves no out-of-fold predictions "
                    "(oof_prediction_, oof_std_) to blend"
                )
            self.estimators_[name] = model
            means.append(np.asarray(mu, dtype=float))
            stds.append(np.asarray(sigma, dtype=float))
        self.oof_base_ = np.column_stack(means)
        S = np.column_stack(stds)
        ok = np.isfinite(self.oof_base_).all(axis=1) & np.isfinite(S).all(axis=1)
        if ok.sum() < 2:
            raise ValueError("fewer than 2 rows have out-of-fold predictions from every base")
        self.weights_ = nnls_weights(self.oof_base_[ok], y[ok])
        self.oof_prediction_ = self.oof_base_ @ self.weights_
        raw = S @ self.weights_
        method = resolve_recalibrate(self.recalibrate)
        self.std_scale_ = (
            1.0
            if method is None
            else fit_std_scale(y[ok] - self.oof_prediction_[ok], raw[ok], method)
        )
        self.oof_std_ = self.std_scale_ * raw
        self.y_scale_ = float(np.std(y)) or 1.0
        return self

    def predict(self, X, return_std: bool = False):
        """Blended mean; with ``return_std=True`` the pair ``(mean, std)`` in target units."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite="allow-nan")
        mean = np.zeros(X.shape[0])
        std = np.zeros(X.shape[0])
        for w, (name, _, columns) in zip(self.weights_, self.estimators, strict=True):
            if w <= 0:
                continue
            model = self.estimators_[name]
            if return_std:
                m, s = model.predict(X[:, columns], return_std=True)
                std += w * np.asarray(s, dtype=float)
            else:
                m = model.predict(X[:, columns])
            mean += w * np.asarray(m, dtype=float)
        if not return_std:
            return mean
        return mean, np.maximum(self.std_scale_ * std, _STD_FLOOR * self.y_scale_)

    def check_leakage(self, X) -> None:
        """Ask every base that was pretrained whether ``X`` (compositions) leaked into it."""
        for _, est, _ in self._check_estimators():
            check = getattr(est, "check_leakage", None)
            if check is not None:
                check(X)

    def torch_modules_(self) -> dict:
        """The torch modules of every base, keyed ``"<name>.<key>"`` (for the registry)."""
        check_is_fitted(self)
        out = {}
        for name, model in self.estimators_.items():
            getter = getattr(model, "torch_modules_", None)
            if getter is not None:
                out.update({f"{name}.{key}": module for key, module in getter().items()})
        return out

    def load_torch_state_(self, arrays: dict[str, np.ndarray]) -> None:
        """Hand each base its ``"<name>.<key>/<param>"`` arrays, as the registry saved them."""
        per_base: dict[str, dict[str, np.ndarray]] = {}
        for key, value in arrays.items():
            name, dot, rest = key.partition(".")
            if not dot or name not in self.estimators_:
                raise ValueError(f"unexpected torch state entry {key!r}")
            per_base.setdefault(name, {})[rest] = value
        for name, state in per_base.items():
            self.estimators_[name].load_torch_state_(state)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
