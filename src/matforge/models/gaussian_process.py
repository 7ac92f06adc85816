"""Gaussian-process regression with calibrated uncertainty, for small data sets.

Features and target are standardised; the kernel is ``C · Matérn(ν, ARD length scales) + White``
with hyperparameters fitted by maximising the marginal likelihood. The predictive std includes
the fitted noise, so it describes where a new *measurement* will fall.

Recalibration uses the closed-form leave-one-out residuals of the fitted GP (Rasmussen &
Williams 2006, eq. 5.12): with ``K`` the training covariance including noise,
``y_i − μ_{−i} = [K⁻¹y]_i / [K⁻¹]_ii`` and ``σ²_{−i} = 1 / [K⁻¹]_ii`` — no refitting. (The
hyperparameters were fitted on all rows, so these residuals are slightly optimistic.)
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from matforge.models.forest import _STD_FLOOR
from matforge.models.recalibration import fit_std_scale, resolve_recalibrate

__all__ = ["GaussianProcessUQ"]

# Above this many rows the O(n³) fit takes minutes and O(n²) memory; tree ensembles fit better.
LARGE_DATA_ROWS = 3000


class GaussianProcessUQ(RegressorMixin, BaseEstimator):
    """GP regressor, ARD Matérn + white-noise kernel on standardised data (small data only).

    Parameters
    ----------
    nu : float, default=2.5
        Matérn smoothness (0.5, 1.5, 2.5 or inf are the cheap ones).
    n_restarts_optimizer : int, default=2
        Extra random restarts of the marginal-likelihood optimiser.
    random_state : int, RandomState or None
        Seeds the optimiser restarts.
    recalibrate : bool or {"rmv", "z", "coverage68"}, default=True
        Fit ``std_scale_`` on the closed-form leave-one-out residuals (True = "rmv").

    Attributes
    ----------
    gp_ : sklearn.gaussian_process.GaussianProcessRegressor (on standardised data)
    x_mean_, x_scale_, y_mean_, y_scale_ : standardisation constants
    loo_prediction_, loo_std_ : (n_samples,) leave-one-out mean and calibrated std
    std_scale_ : float
    n_features_in_ : int

    Warns with a UserWarning when fitted on more than 3,000 rows.
    """

    def __init__(
        self, nu: float = 2.5, n_restarts_optimizer: int = 2, random_state=None, recalibrate=True
    ):
        self.nu = nu
        self.n_restarts_optimizer = n_restarts_optimizer
        self.random_state = random_state
        self.recalibrate = recalibrate

    def fit(self, X, y):
        """Fit kernel hyperparameters and the scale factor on ``X`` (n × d) and ``y``."""
        from scipy.linalg import cho_solve
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        method = resolve_recalibrate(self.recalibrate)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)
        y = y.astype(np.float64)
        n, d = X.shape
        if n > LARGE_DATA_ROWS:
            warnings.warn(
                f"GaussianProcessUQ on {n} rows: fitting costs O(n³) time and O(n²) memory; "
                f"above {LARGE_DATA_ROWS} rows prefer RandomForestUQ or BoostedEnsembleUQ",
                UserWarning,
                stacklevel=2,
            )
        self.x_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.x_scale_ = np.where(scale > 0, scale, 1.0)
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) or 1.0
        Xs = (X - self.x_mean_) / self.x_scale_
        ys = (y - self.y_mean_) / self.y_scale_

        # Length scales start at sqrt(d), the typical distance between standardised rows:
        # the optimiser then needs fewer steps than from 1.
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            length_scale=np.full(d, np.sqrt(d)), length_scale_bounds=(1e-2, 1e3), nu=self.nu
        ) + WhiteKernel(1e-2, (1e-6, 1e1))
        self.gp_ = GaussianProcessRegressor(
            kernel=kernel,
            alpha=1e-8,
            normalize_y=False,
            n_restarts_optimizer=self.n_restarts_optimizer,
            random_state=self.random_state,
        ).fit(Xs, ys)

        # Leave-one-out from the fitted Cholesky factor of K (noise and alpha included).
        K_inv = cho_solve((self.gp_.L_, True), np.eye(n))
        diag = np.diag(K_inv)
        loo_resid = self.gp_.alpha_.ravel() / diag * self.y_scale_
        loo_std = np.sqrt(1.0 / diag) * self.y_scale_
        self.std_scale_ = 1.0 if method is None else fit_std_scale(loo_resid, loo_std, method)
        self.loo_prediction_ = y - loo_resid
        self.loo_std_ = self.std_scale_ * loo_std
        return self

    def predict(self, X, return_std: bool = False):
        """Mean prediction; with ``return_std=True`` the pair ``(mean, std)`` in target units."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Xs = (X - self.x_mean_) / self.x_scale_
        if not return_std:
            return self.gp_.predict(Xs) * self.y_scale_ + self.y_mean_
        mean, std = self.gp_.predict(Xs, return_std=True)
        std = np.maximum(self.std_scale_ * std * self.y_scale_, _STD_FLOOR * self.y_scale_)
        return mean * self.y_scale_ + self.y_mean_, std
