"""Model selection by inner cross-validation within a time budget.

:class:`AutoRegressor` scores each candidate regressor by K-fold cross-validation on the training
data, keeps the best, and refits it on all rows. The default score is the mean Gaussian negative
log-likelihood of the held-out rows, a proper scoring rule that rewards accurate means and
calibrated standard deviations together.

The time budget is honest but coarse: it is checked between fits (a running fit is never
interrupted), a candidate whose first fold shows that its remaining folds cannot finish in time
is stopped and left out of the comparison (its partial score would not be comparable), and the
final refit of the winner is not counted.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["AutoRegressor"]

SCORINGS = ("nll", "mae", "rmse")


def _default_candidates(n_samples: int, random_state) -> list:
    from matforge.models.boosting import BoostedEnsembleUQ
    from matforge.models.forest import RandomForestUQ
    from matforge.models.gaussian_process import LARGE_DATA_ROWS, GaussianProcessUQ

    candidates = [
        RandomForestUQ(n_estimators=200, random_state=random_state),
        BoostedEnsembleUQ(random_state=random_state),
    ]
    if n_samples <= LARGE_DATA_ROWS:
        candidates.append(GaussianProcessUQ(random_state=random_state))
    return candidates


def _score(scoring: str, y, mean, std) -> float:
    """Lower is better for every scoring."""
    if scoring == "mae":
        return float(np.mean(np.abs(y - mean)))
    if scoring == "rmse":
        return float(np.sqrt(np.mean((y - mean) ** 2)))
    return float(-np.mean(stats.norm.logpdf(y, loc=mean, scale=std)))


class AutoRegressor(RegressorMixin, BaseEstimator):
    """Pick the best of several uncertainty-aware regressors by inner cross-validation.

    Parameters
    ----------
    candidates : list of regressors or None
        Estimators with ``predict(X, return_std=True)``; tried in order, so put the cheap ones
        first. None: ``RandomForestUQ``, ``BoostedEnsembleUQ`` and, up to 3,000 rows,
        ``GaussianProcessUQ``.
    time_budget_s : float, default=300
        Wall-clock seconds for the cross-validation (see the module notes for what it covers).
    cv : int, default=5
        Folds of the inner cross-validation.
    scoring : {"nll", "mae", "rmse"}, default="nll"
        Held-out score to minimise; "nll" is the Gaussian negative log-likelihood per row.
    random_state : int, RandomState or None
        Seeds the folds and the default candidates.

    Attributes
    ----------
    best_estimator_ : the winning candidate refitted on all rows
    best_index_ : int, position of the winner in the candidate list
    cv_results_ : list of dict, one per candidate: ``name``, ``status`` ("done", "over budget",
        "not started", "failed: …"), ``fold_scores``, ``mean_score``, ``fit_seconds``
    n_features_in_ : int
    """

    def __init__(
        self,
        candidates=None,
        time_budget_s: float = 300.0,
        cv: int = 5,
        scoring: str = "nll",
        random_state=None,
    ):
        self.candidates = candidates
        self.time_budget_s = time_budget_s
        self.cv = cv
        self.scoring = scoring
        self.random_state = random_state

    def fit(self, X, y):
        """Cross-validate the candidates within the budget, then refit the best on all rows."""
        from sklearn.model_selection import KFold
        from sklearn.utils import check_random_state

        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        if not self.time_budget_s > 0:
            raise ValueError(f"time_budget_s must be > 0, got {self.time_budget_s!r}")
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)
        y = y.astype(np.float64)
        n = X.shape[0]
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        candidates = (
            _default_candidates(n, seed) if self.candidates is None else list(self.candidates)
        )
        if not candidates:
            raise ValueError("candidates is empty")
        folds = list(KFold(min(self.cv, n), shuffle=True, random_state=seed).split(X))

        start = time.perf_counter()
        self.cv_results_ = []
        for candidate in candidates:
            result = {
                "name": type(candidate).__name__,
                "status": "not started",
                "fold_scores": [],
                "mean_score": float("nan"),
                "fit_seconds": 0.0,
            }
            self.cv_results_.append(result)
            if time.perf_counter() - start >= self.time_budget_s:
                continue
            result["status"] = "done"
            for k, (train, test) in enumerate(folds):
                t0 = time.perf_counter()
                try:
                    model = clone(candidate).fit(X[train], y[train])
                    mean, std = model.predict(X[test], return_std=True)
                except Exception as exc:  # a candidate that cannot fit these data loses
                    result["status"] = f"failed: {type(exc).__name__}: {exc}"
                    break
                result["fold_scores"].append(_score(self.scoring, y[test], mean, std))
                result["fit_seconds"] += time.perf_counter() - t0
                left = self.time_budget_s - (time.perf_counter() - start)
                per_fold = result["fit_seconds"] / (k + 1)
                if k + 1 < len(folds) and per_fold * (len(folds) - k - 1) > left:
                    result["status"] = "over budget"
                    break
            if result["status"] == "done":
                result["mean_score"] = float(np.mean(result["fold_scores"]))

        done = [i for i, r in enumerate(self.cv_results_) if r["status"] == "done"]
        if done:
            self.best_index_ = min(done, key=lambda i: self.cv_results_[i]["mean_score"])
        else:
            self.best_index_ = 0
            warnings.warn(
                f"AutoRegressor: no candidate finished cross-validation within "
                f"{self.time_budget_s} s; using {self.cv_results_[0]['name']} unvalidated",
                UserWarning,
                stacklevel=2,
            )
        self.best_estimator_ = clone(candidates[self.best_index_]).fit(X, y)
        return self

    def predict(self, X, return_std: bool = False):
        """The best candidate's prediction; ``(mean, std)`` with ``return_std=True``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.best_estimator_.predict(X, return_std=return_std)
