"""Failed experiments: the probability that a candidate experiment works at all.

A lab's experiment can fail without a result: the film did not form, the alloy cracked, the
reaction gave nothing to measure. Such a failure says nothing about the objective, but a lot
about where not to go. :func:`fit_feasibility` learns it: a classifier of success (1) against
failure (0) on every experiment tried, whose ``predict_proba`` is the probability that a
candidate succeeds. :func:`~matforge.design.strategy.propose` multiplies the acquisition by it
(like an unknown constraint, Gardner et al. 2014; Gelbart et al. 2014), so proposals steer
away from regions that failed and stay free where nothing failed.

The classifier follows the surrogate's size rule (:func:`~matforge.design.strategy.resolve_model`):

* small problems (``"gp"``): a Gaussian-process classifier (Laplace approximation) with a
  constant × Matérn-5/2 kernel with one length scale per feature, on standardised features:
  far from every experiment the probability returns to the base rate, near a failure it drops;
* larger ones: a random forest classifier of 200 trees with leaves of at least 2 rows (so no
  probability is a hard 0 or 1 from one row), its votes shrunk towards the base rate by one
  pseudo-experiment of each outcome per leaf.
"""

from __future__ import annotations

import warnings

import numpy as np

from matforge.errors import DesignSpaceError

__all__ = ["FeasibilityModel", "fit_feasibility"]


class FeasibilityModel:
    """A fitted probability-of-success model (see the module docstring).

    ``predict_proba(X)`` returns (n, 2) probabilities of (failure, success), like a scikit-learn
    classifier; :meth:`p_success` the success column.
    """

    def __init__(self, kind: str = "gp", seed: int = 0):
        if kind not in ("gp", "rf", "lgbm", "boosted"):  # a surrogate's recipe names
            raise DesignSpaceError(f"unknown feasibility classifier {kind!r}")
        self.kind = kind
        self.seed = seed

    def fit(self, X, succeeded) -> FeasibilityModel:
        """Fit on features ``X`` (n, d) of the experiments tried and whether each succeeded."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(succeeded, dtype=bool)
        if X.ndim != 2 or len(X) != len(y):
            raise DesignSpaceError(f"feasibility: X {X.shape} and succeeded {y.shape} differ")
        if not np.isfinite(X).all():
            raise DesignSpaceError("feasibility: non-finite features")
        self.n_failed_ = int((~y).sum())
        self.n_succeeded_ = int(y.sum())
        self.base_rate_ = (self.n_succeeded_ + 1) / (len(y) + 2)  # Laplace's rule of succession
        if self.n_failed_ == 0 or self.n_succeeded_ == 0:
            self.model_ = None  # one outcome only: nothing to tell candidates apart
            return self
        self.x_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.x_scale_ = np.where(scale > 0, scale, 1.0)
        Xs = (X - self.x_mean_) / self.x_scale_
        if self.kind == "gp":
            from sklearn.gaussian_process import GaussianProcessClassifier
            from sklearn.gaussian_process.kernels import ConstantKernel, Matern

            d = X.shape[1]
            kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
                length_scale=np.ones(d), length_scale_bounds=(1e-2, 1e2), nu=2.5
            )
            self.model_ = GaussianProcessClassifier(
                kernel, n_restarts_optimizer=0, random_state=self.seed
            )
        else:
            from sklearn.ensemble import RandomForestClassifier

            self.model_ = RandomForestClassifier(
                n_estimators=200, min_samples_leaf=2, random_state=self.seed, n_jobs=1
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # length scales at their bounds on a few points
            self.model_.fit(Xs, y.astype(int))
        return self

    def p_success(self, X) -> np.ndarray:
        """(n,) probability that each candidate's experiment succeeds."""
        X = np.asarray(X, dtype=float)
        if self.model_ is None:
            return np.full(len(X), self.base_rate_ if self.n_succeeded_ == 0 else 1.0)
        Xs = (X - self.x_mean_) / self.x_scale_
        p = self.model_.predict_proba(Xs)[:, list(self.model_.classes_).index(1)]
        if self.kind != "gp":  # shrink the forest's votes towards the base rate
            n_tried = self.n_failed_ + self.n_succeeded_
            w = n_tried / (n_tried + 2.0)
            p = w * p + (1 - w) * self.base_rate_
        return np.clip(p, 0.0, 1.0)

    def predict_proba(self, X) -> np.ndarray:
        p = self.p_success(X)
        return np.column_stack([1.0 - p, p])

    def describe(self) -> dict:
        """JSON-able summary for a batch's model record."""
        name = "none (one outcome only)" if self.model_ is None else type(self.model_).__name__
        return {"class": name, "n_failed": self.n_failed_, "n_succeeded": self.n_succeeded_}


def fit_feasibility(X, failed, kind: str = "gp", seed: int = 0) -> FeasibilityModel | None:
    """A :class:`FeasibilityModel` fitted on experiments ``X`` of which ``failed`` ones gave no
    result, or None when none failed (the acquisition is then left as it is)."""
    failed = np.asarray(failed, dtype=bool)
    if not failed.any():
        return None
    return FeasibilityModel(kind, seed).fit(X, ~failed)
