"""Surrogates for campaign candidates that the model layer does not offer: a Gaussian process
whose hyperparameters are fitted with priors suited to small data.

:class:`PriorGP` follows BoTorch's current single-task GP defaults (Hvarfner, Hellsten and
Nardi, "Vanilla Bayesian optimization performs great in high dimensions", ICML 2024; BoTorch
≥ 0.12): inputs scaled to the unit cube of the training data, outputs standardised, an RBF
kernel with one length scale per input and unit output scale, and hyperparameters found by
*maximum a posteriori* instead of maximum likelihood, under

* ``log ℓ_i ~ Normal(√2 + ½ log d, √3)`` — a log-normal length-scale prior whose median grows
  with the dimension ``d`` (a fixed-scale prior makes high-dimensional functions look rougher
  than a handful of points can support);
* ``log σ²_noise ~ Normal(−4, 1)`` — little noise, but not none.

With 10–30 observations maximum likelihood often drives a length scale to its bound (a feature
"does not matter" or "matters at every step"); the priors keep the fit near plausible values.
The MAP fit is sklearn's :class:`~sklearn.gaussian_process.GaussianProcessRegressor` with an
optimizer that adds the log prior (and its gradient) to the log marginal likelihood.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["PriorGP", "lengthscale_prior"]

#: log-normal noise-variance prior (location, scale of log σ²) on standardised outputs
NOISE_PRIOR = (-4.0, 1.0)


def lengthscale_prior(d: int) -> tuple[float, float]:
    """Location and scale of the normal prior on ``log ℓ`` for ``d`` inputs (unit-cube units)."""
    return math.sqrt(2.0) + 0.5 * math.log(max(int(d), 1)), math.sqrt(3.0)


class PriorGP(RegressorMixin, BaseEstimator):
    """Gaussian process with ARD RBF kernel and BoTorch-style hyperparameter priors (MAP fit).

    Parameters
    ----------
    n_restarts_optimizer : int, default=0
        Extra optimiser starts (drawn uniformly in the log-bounds) after the one from the
        prior's mode.
    random_state : int or None
        Seeds those starts.

    Attributes
    ----------
    gp_ : the fitted :class:`~sklearn.gaussian_process.GaussianProcessRegressor`
    x_min_, x_range_, y_mean_, y_scale_ : input and output scaling
    lengthscales_ : (d,) fitted length scales, unit-cube units
    noise_ : fitted noise variance, standardised-output units
    """

    def __init__(self, n_restarts_optimizer: int = 0, random_state=None):
        self.n_restarts_optimizer = n_restarts_optimizer
        self.random_state = random_state

    def fit(self, X, y):
        """MAP fit of the length scales and noise on ``X`` (n × d) and ``y``."""
        from scipy.optimize import minimize
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)
        n, d = X.shape
        self.x_min_ = X.min(axis=0)
        span = X.max(axis=0) - self.x_min_
        self.x_range_ = np.where(span > 0, span, 1.0)
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) or 1.0
        Xs = (X - self.x_min_) / self.x_range_
        ys = (y - self.y_mean_) / self.y_scale_
        mu, sigma = lengthscale_prior(d)
        n_mu, n_sigma = NOISE_PRIOR
        prior_mu = np.r_[np.full(d, mu), n_mu]
        prior_var = np.r_[np.full(d, sigma**2), n_sigma**2]

        def optimizer(obj_func, initial_theta, bounds):
            # obj_func returns (−log marginal likelihood, its gradient) in log-hyperparameters
            def f(theta):
                nll, grad = obj_func(theta, eval_gradient=True)
                diff = theta - prior_mu
                return (nll + 0.5 * float(np.sum(diff**2 / prior_var)), grad + diff / prior_var)

            # the first start is the kernel's initial value, the prior's mode
            res = minimize(f, initial_theta, jac=True, method="L-BFGS-B", bounds=bounds)
            return res.x, res.fun

        kernel = ConstantKernel(1.0, "fixed") * RBF(
            length_scale=np.full(d, math.exp(mu)), length_scale_bounds=(1e-3, 1e3)
        ) + WhiteKernel(math.exp(n_mu), (1e-8, 1.0))
        self.gp_ = GaussianProcessRegressor(
            kernel=kernel,
            alpha=1e-8,
            optimizer=optimizer,
            normalize_y=False,
            n_restarts_optimizer=self.n_restarts_optimizer,
            random_state=self.random_state,
        ).fit(Xs, ys)
        params = self.gp_.kernel_.get_params()
        self.lengthscales_ = np.atleast_1d(params["k1__k2__length_scale"]).astype(float)
        self.noise_ = float(params["k2__noise_level"])
        return self

    def predict(self, X, return_std: bool = False):
        """Mean prediction; with ``return_std=True`` the pair ``(mean, std)`` in target units
        (the std of a new measurement: the fitted noise included)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Xs = (X - self.x_min_) / self.x_range_
        if not return_std:
            return self.gp_.predict(Xs) * self.y_scale_ + self.y_mean_
        mean, std = self.gp_.predict(Xs, return_std=True)
        return mean * self.y_scale_ + self.y_mean_, np.maximum(std, 1e-9) * self.y_scale_
