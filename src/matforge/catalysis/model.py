"""Adsorption-energy models with calibrated uncertainty that know when they extrapolate.

:class:`LinearResidualForest` is a scikit-learn regressor: a ridge regression on the
standardised descriptors (the part of a d-band model that extrapolates: binding strengthens
as the d-band centre rises, Hammer & Nørskov) plus a :class:`~matforge.models.RandomForestUQ` on
its residuals (the non-linear rest, with the forest's calibrated std). Trees alone cannot
extrapolate to a top-layer metal they have not seen (leave-one-metal-out RMSE 0.47 eV for a
forest on Ma's descriptors vs 0.21 eV for this model; ``benchmarks/catalysis_cv.py``).

Its uncertainty has two regimes:

* inside the training groups (a top-layer metal seen in training): the mean is the plain,
  equal-weight average of this model, of a forest fitted on the energies directly, of a
  LightGBM ensemble (:class:`~matforge.models.BoostedEnsembleUQ`) and of a Gaussian process
  with an ARD Matérn-5/2 + white-noise kernel on the standardised descriptors
  (:class:`~matforge.models.GaussianProcessUQ`), both fitted on the energies too — the direct
  members interpolate better, and they err differently: trees are piecewise constant, the GP
  is smooth (5-fold CV × 5 on Ma's descriptors: 0.106 eV alone, 0.101 for the direct forest,
  0.105 for LightGBM, 0.1000 for the average of the first three, 0.1013 when their weights
  are learned by inner 5-fold CV instead; the weights are therefore fixed, not fitted, and the
  GP joined with the same equal weight, chosen before it was scored: 0.095 eV with it,
  ``docs/benchmarks.md``); the std is the root mean of the members' calibrated variances,
  scaled by a factor fitted on the training rows' held-out predictions (``recalibrate``);
* outside (``groups`` at ``predict`` holds a label not seen in ``fit``): ``sqrt(std² + τ²)``,
  where ``τ`` is fitted at ``fit`` time on an inner leave-one-group-out over the training
  groups, so that the extrapolation residuals have the predicted variance on average. The
  model thus never extrapolates silently: such rows are flagged, and their intervals widen.

:class:`AdsorptionModel` wraps it for surfaces: it builds the descriptors (Ma's 13 from a
table, or the DFT-free ones from the notation alone), uses the adsorption-site metal as the
group, adds an applicability-domain distance (:class:`~matforge.screen.DomainModel`), and
saves/loads through the model registry.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from matforge.errors import CatalysisError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "AdsorptionModel",
    "LinearResidualForest",
    "cross_validate",
    "leave_one_group_out",
]

#: domain distance (see :class:`~matforge.screen.DomainModel`) above which a surface is flagged
DOMAIN_DISTANCE_LIMIT = 2.5

TARGET = "binding_energy_of_adsorbed"


class LinearResidualForest(RegressorMixin, BaseEstimator):
    """Ridge baseline + random forest on its residuals, with group-aware uncertainty.

    Parameters
    ----------
    alphas : sequence of float
        Ridge penalties tried by efficient leave-one-out CV (on standardised features).
    n_estimators, max_features, min_samples_leaf : forest parameters
        (:class:`~matforge.models.RandomForestUQ`).
    level_columns : sequence of int or None, default=None
        Columns of ``X`` for a first-stage least-squares *level* term fitted before the ridge:
        ``y ≈ level(X[:, level_columns]) + ridge(X) + forest(X)``. Meant for one or two
        per-group physical descriptors that carry the group's overall level (for surfaces: a
        cohesion proxy of the adsorption-site metal), which a ridge over many correlated
        columns would dilute when it extrapolates to a new group.
    boosting : bool, default=True
        Add a LightGBM ensemble to the in-group average (see the module docstring).
    gaussian_process : bool, default=True
        Add a Gaussian process (ARD Matérn-5/2 + white noise on the standardised features) to
        the in-group average (see the module docstring).
    recalibrate : bool, default=True
        Scale the in-group std by a factor fitted at ``fit`` on the training rows' held-out
        predictions (inner 5-fold CV of the other members, fewer trees; the GP's closed-form
        leave-one-out), so that their root mean variance equals their RMSE: the average of
        members that err differently is more accurate than the members, and the root mean of
        their variances overstates its error.
    extrapolation_std : {"fit", "none"} or float, default="fit"
        ``τ`` (target units) added in quadrature to the std of rows from unseen groups:
        ``"fit"`` estimates it by an inner leave-one-group-out at ``fit`` (needs ``groups``
        with at least 3 labels, else 0); a float fixes it.
    random_state : int or None

    Attributes
    ----------
    level_ : fitted ``LinearRegression`` on ``X[:, level_columns]`` (None without them)
    ridge_ : fitted ``Pipeline(StandardScaler, RidgeCV)`` on what the level leaves
    forest_ : fitted RandomForestUQ on the residuals of level + ridge
    direct_forest_ : fitted RandomForestUQ on ``y`` (used inside the training groups)
    boosted_ : fitted BoostedEnsembleUQ on ``y`` (inside the training groups; None when
        ``boosting=False``)
    gp_ : fitted GaussianProcessUQ on ``y`` (inside the training groups; None when
        ``gaussian_process=False``)
    groups_ : set of training group labels (empty without groups)
    extrapolation_std_ : float, τ
    in_group_std_scale_ : float, the factor of ``recalibrate`` (1.0 without it)
    """

    def __init__(
        self,
        alphas: Sequence[float] = tuple(np.logspace(-3, 3, 13)),
        n_estimators: int = 300,
        max_features=1 / 3,
        min_samples_leaf: int = 1,
        level_columns=None,
        boosting: bool = True,
        gaussian_process: bool = True,
        recalibrate: bool = True,
        extrapolation_std="fit",
        random_state=None,
    ):
        self.alphas = alphas
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.level_columns = level_columns
        self.boosting = boosting
        self.gaussian_process = gaussian_process
        self.recalibrate = recalibrate
        self.extrapolation_std = extrapolation_std
        self.random_state = random_state

    def _level_columns(self, n_features: int) -> list[int]:
        cols = [] if self.level_columns is None else [int(c) for c in self.level_columns]
        bad = [c for c in cols if not 0 <= c < n_features]
        if bad:
            raise CatalysisError(f"level_columns {bad} outside the {n_features} columns of X")
        return cols

    def _fit_core(self, X, y, n_estimators: int | None = None):
        """(level, ridge, forest) fitted on ``X``, ``y``; level is None without level columns."""
        from sklearn.linear_model import LinearRegression, RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from matforge.models import RandomForestUQ

        cols = self._level_columns(X.shape[1])
        level = LinearRegression().fit(X[:, cols], y) if cols else None
        rest = y - level.predict(X[:, cols]) if cols else y
        ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=list(self.alphas))).fit(X, rest)
        forest = RandomForestUQ(
            n_estimators=n_estimators or self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.random_state,
        ).fit(X, rest - ridge.predict(X))
        return level, ridge, forest

    def _baseline(self, X, level, ridge) -> np.ndarray:
        """The extrapolating part: level term (if any) + ridge."""
        base = ridge.predict(X)
        if level is not None:
            base = base + level.predict(X[:, self._level_columns(X.shape[1])])
        return base

    def fit(self, X, y, groups=None):
        """Fit on ``X`` (n × d) and ``y``; ``groups`` (n labels, e.g. the top-layer metal)
        enable the extrapolation std."""
        from sklearn.exceptions import ConvergenceWarning

        from matforge.models import BoostedEnsembleUQ, GaussianProcessUQ, RandomForestUQ

        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=5)
        self.level_, self.ridge_, self.forest_ = self._fit_core(X, y)
        self.direct_forest_ = RandomForestUQ(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.random_state,
        ).fit(X, y)
        self.boosted_ = None
        if self.boosting:
            # min_child_samples=5: a few hundred rows, leaves of 20 would be too coarse
            self.boosted_ = BoostedEnsembleUQ(n_estimators=300, min_child_samples=5,
                                              random_state=self.random_state,
                                              n_jobs=1).fit(X, y)
        self.gp_ = None
        if self.gaussian_process:
            # one optimiser start, from length scales sqrt(d): a few hundred rows, 14
            # hyperparameters; length scales of irrelevant descriptors running to their upper
            # bound is ARD switching them off, not a failure
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.gp_ = GaussianProcessUQ(n_restarts_optimizer=0,
                                             random_state=self.random_state).fit(X, y)
        self.in_group_std_scale_ = self._inner_std_scale(X, y) if self.recalibrate else 1.0
        self.groups_ = set()
        tau = 0.0
        if groups is not None:
            groups = np.asarray(groups)
            if len(groups) != len(y):
                raise CatalysisError(f"{len(groups)} group labels for {len(y)} rows")
            self.groups_ = set(groups.tolist())
            if self.extrapolation_std == "fit" and len(self.groups_) >= 3:
                r2, s2 = [], []
                for g in sorted(self.groups_):
                    out = groups == g
                    # fewer trees: tau is one number averaged over every held-out row
                    level, ridge, forest = self._fit_core(X[~out], y[~out],
                                                          min(self.n_estimators, 100))
                    mu, sd = forest.predict(X[out], return_std=True)
                    r2.append((y[out] - self._baseline(X[out], level, ridge) - mu) ** 2)
                    s2.append(sd**2)
                r2, s2 = np.concatenate(r2), np.concatenate(s2)
                tau = float(np.sqrt(max(r2.mean() - s2.mean(), 0.0)))
        if self.extrapolation_std not in ("fit", "none"):
            tau = float(self.extrapolation_std)
        self.extrapolation_std_ = tau
        return self

    def _inner_std_scale(self, X, y) -> float:
        """Factor on the in-group std from held-out predictions of the training rows."""
        from sklearn.model_selection import KFold

        from matforge.models import BoostedEnsembleUQ, RandomForestUQ
        from matforge.models.recalibration import fit_std_scale

        n_trees = min(self.n_estimators, 100)  # as for tau: one number over every row
        mus, variances = [], []
        for name in ("linear", "direct", "boosted"):
            if name == "boosted" and not self.boosting:
                continue
            mu, var = np.empty(len(y)), np.empty(len(y))
            for tr, te in KFold(5, shuffle=True, random_state=self.random_state).split(X):
                if name == "linear":
                    level, ridge, forest = self._fit_core(X[tr], y[tr], n_trees)
                    m, sd = forest.predict(X[te], return_std=True)
                    m = m + self._baseline(X[te], level, ridge)
                elif name == "direct":
                    m, sd = RandomForestUQ(
                        n_estimators=n_trees, max_features=self.max_features,
                        min_samples_leaf=self.min_samples_leaf, random_state=self.random_state,
                    ).fit(X[tr], y[tr]).predict(X[te], return_std=True)
                else:
                    m, sd = BoostedEnsembleUQ(
                        n_estimators=300, min_child_samples=5, random_state=self.random_state,
                        n_jobs=1).fit(X[tr], y[tr]).predict(X[te], return_std=True)
                mu[te], var[te] = m, sd**2
            mus.append(mu)
            variances.append(var)
        if self.gp_ is not None:
            # closed-form leave-one-out at the fitted kernel: no refit needed
            mus.append(self.gp_.loo_prediction_)
            variances.append(self.gp_.loo_std_**2)
        return fit_std_scale(y - np.mean(mus, axis=0), np.sqrt(np.mean(variances, axis=0)))

    def predict(self, X, return_std: bool = False, groups=None):
        """Mean (and std with ``return_std``); rows whose ``groups`` label was not seen in
        ``fit`` get the extrapolation std added in quadrature."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        mu, sd = self.forest_.predict(X, return_std=True)
        extrapolated = self._baseline(X, self.level_, self.ridge_) + mu
        direct, sd_direct = self.direct_forest_.predict(X, return_std=True)
        inside_mu, inside_var = [extrapolated, direct], [sd**2, sd_direct**2]
        if self.boosted_ is not None:
            b, sd_b = self.boosted_.predict(X, return_std=True)
            inside_mu.append(b)
            inside_var.append(sd_b**2)
        if self.gp_ is not None:
            g, sd_g = self.gp_.predict(X, return_std=True)
            inside_mu.append(g)
            inside_var.append(sd_g**2)
        unseen = np.zeros(len(X), dtype=bool) if groups is None else self.unseen(groups)
        if len(unseen) != len(X):
            raise CatalysisError(f"{len(unseen)} group labels for {len(X)} rows")
        mean = np.where(unseen, extrapolated, np.mean(inside_mu, axis=0))
        if not return_std:
            return mean
        sd = np.where(unseen, np.hypot(sd, self.extrapolation_std_),
                      self.in_group_std_scale_ * np.sqrt(np.mean(inside_var, axis=0)))
        return mean, sd

    def unseen(self, groups) -> np.ndarray:
        """Boolean mask: which ``groups`` labels were absent from the training data."""
        check_is_fitted(self)
        return np.array([g not in self.groups_ for g in np.asarray(groups).tolist()], dtype=bool)


# -----------------------------------------------------------------------------------------------
# Surfaces
# -----------------------------------------------------------------------------------------------

DESCRIPTOR_SETS = ("ma2015", "dft_free")
ESTIMATORS = ("linear_forest", "rf", "gp", "boosted")


#: Descriptors of each set that carry the adsorption-site metal's overall binding level, fitted
#: as the first-stage level term of :class:`LinearResidualForest`. For the DFT-free set: the
#: elemental ground-state energy per atom (OQMD, in matforge's element table), a proxy for the
#: cohesive energy — cohesion and chemisorption both come from the d-band bonding of the metal
#: (Friedel's and the Hammer–Nørskov d-band models); across the six site metals it orders the
#: pure-metal CO binding energies exactly (Spearman 1.0). Ma's 13 descriptors carry the level
#: in their DFT d-band centre and need none.
LEVEL_DESCRIPTORS: dict[str, tuple[str, ...]] = {
    "dft_free": ("site_GSenergy_pa",),
    "ma2015": (),
}


def _make_estimator(name: str, random_state, level_columns=None):
    if name == "linear_forest":
        return LinearResidualForest(level_columns=level_columns or None,
                                    random_state=random_state)
    if name == "rf":
        from matforge.models import RandomForestUQ

        return RandomForestUQ(n_estimators=300, random_state=random_state)
    if name == "gp":
        from matforge.models import GaussianProcessUQ

        return GaussianProcessUQ(n_restarts_optimizer=0, random_state=random_state)
    if name == "boosted":
        from matforge.models import BoostedEnsembleUQ

        return BoostedEnsembleUQ(n_estimators=300, min_child_samples=5, random_state=random_state)
    raise CatalysisError(f"unknown estimator {name!r}; use one of {ESTIMATORS}")


def surface_features(data, descriptors: str = "dft_free") -> tuple[np.ndarray, list[str], list]:
    """(X, column names, surfaces) for ``data``: a list of surfaces/notations, or a DataFrame
    with a ``surface`` column (and, for ``"ma2015"``, the 13 descriptor columns)."""
    import pandas as pd

    from matforge.catalysis.descriptors import (
        MA_DESCRIPTORS,
        as_surfaces,
        dft_free_descriptors,
    )

    if descriptors not in DESCRIPTOR_SETS:
        raise CatalysisError(f"unknown descriptor set {descriptors!r}; use one of {DESCRIPTOR_SETS}")
    if isinstance(data, pd.DataFrame):
        if "surface" not in data.columns:
            raise CatalysisError(f"the table needs a 'surface' column; it has {list(data.columns)}")
        surfaces = as_surfaces(data["surface"].tolist())
    else:
        surfaces = as_surfaces(data)
    if descriptors == "ma2015":
        if not isinstance(data, pd.DataFrame):
            raise CatalysisError(
                "the 'ma2015' descriptors come from DFT: pass a table with the 13 columns "
                f"{list(MA_DESCRIPTORS)}, or use descriptors='dft_free' for surfaces alone"
            )
        missing = [c for c in MA_DESCRIPTORS if c not in data.columns]
        if missing:
            raise CatalysisError(f"the table lacks the Ma et al. descriptor columns {missing}")
        X = data[list(MA_DESCRIPTORS)].to_numpy(dtype=float)
        if not np.isfinite(X).all():
            rows = np.flatnonzero(~np.isfinite(X).all(axis=1))[:5].tolist()
            raise CatalysisError(f"missing descriptor values in rows {rows}")
        return X, list(MA_DESCRIPTORS), surfaces
    F = dft_free_descriptors(surfaces)
    return F.to_numpy(dtype=float), list(F.columns), surfaces


def site_metals(surfaces) -> list[str]:
    """The adsorption-site metal of each surface (the group used for extrapolation)."""
    return [s.guest if s.surface_type == "single_atom" else s.top for s in surfaces]


class AdsorptionModel:
    """Predicts an adsorption energy (eV) of bimetallic surfaces, with std and a domain flag.

    >>> from matforge.catalysis import AdsorptionModel, load_ma2015
    >>> m = AdsorptionModel("dft_free").fit(load_ma2015())
    >>> m.predict_frame(["Pd1Cu", "Cu-Ti@Cu"])      # mean, std, distance, in_domain

    ``descriptors``: ``"dft_free"`` (default; works for any surface) or ``"ma2015"`` (the 13 DFT
    descriptors; tables only). ``estimator``: ``"linear_forest"`` (default,
    :class:`LinearResidualForest`), ``"rf"``, ``"gp"`` or ``"boosted"`` (matforge estimators;
    these have no extrapolation std). ``target``: the energy column of a training table.
    """

    def __init__(self, descriptors: str = "dft_free", estimator: str = "linear_forest",
                 target: str = TARGET, random_state: int | None = 0):
        if descriptors not in DESCRIPTOR_SETS:
            raise CatalysisError(
                f"unknown descriptor set {descriptors!r}; use one of {DESCRIPTOR_SETS}")
        if estimator not in ESTIMATORS:
            raise CatalysisError(f"unknown estimator {estimator!r}; use one of {ESTIMATORS}")
        self.descriptors = descriptors
        self.estimator = estimator
        self.target = target
        self.random_state = random_state

    def __repr__(self) -> str:
        return (f"AdsorptionModel(descriptors={self.descriptors!r}, "
                f"estimator={self.estimator!r}, target={self.target!r})")

    def fit(self, data: pd.DataFrame, y=None) -> AdsorptionModel:
        """Fit on a table with ``surface`` and ``target`` columns (or surfaces and ``y``)."""
        import pandas as pd

        from matforge.screen.domain import DomainModel

        X, names, surfaces = surface_features(data, self.descriptors)
        if y is None:
            if not isinstance(data, pd.DataFrame) or self.target not in data.columns:
                raise CatalysisError(f"no target: pass y or a table with a {self.target!r} column")
            y = data[self.target].to_numpy(dtype=float)
        y = np.asarray(y, dtype=float)
        if len(y) != len(X):
            raise CatalysisError(f"{len(y)} energies for {len(X)} surfaces")
        if not np.isfinite(y).all():
            raise CatalysisError(f"non-finite energies in rows {np.flatnonzero(~np.isfinite(y))[:5].tolist()}")
        groups = site_metals(surfaces)
        level = [names.index(c) for c in LEVEL_DESCRIPTORS[self.descriptors]]
        est = _make_estimator(self.estimator, self.random_state, level)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GP hyperparameters at their bounds
            if isinstance(est, LinearResidualForest):
                est.fit(X, y, groups=groups)
            else:
                est.fit(X, y)
        self.model_ = est
        self.feature_names_ = names
        self.site_metals_ = sorted(set(groups))
        self.domain_ = DomainModel(n_neighbors=5, n_components=min(10, X.shape[1])).fit(X)
        self.n_train_ = len(y)
        return self

    def _check(self):
        if not hasattr(self, "model_"):
            raise CatalysisError("this AdsorptionModel is not fitted yet: call fit() first")

    def predict(self, data, return_std: bool = False):
        """Energies (eV) of ``data`` (surfaces, notations, or a table); with ``return_std``
        the pair (mean, std)."""
        out = self.predict_frame(data)
        mean = out["mean"].to_numpy()
        return (mean, out["std"].to_numpy()) if return_std else mean

    def predict_frame(self, data) -> pd.DataFrame:
        """DataFrame: ``surface``, ``surface_type``, ``site_metal``, ``mean`` and ``std`` (eV),
        ``distance`` (applicability domain, ~1 = as close as training rows are to each
        other), ``known_site_metal`` and ``in_domain`` (a seen site metal and distance
        ≤ :data:`DOMAIN_DISTANCE_LIMIT`)."""
        import pandas as pd

        self._check()
        X, _, surfaces = surface_features(data, self.descriptors)
        groups = site_metals(surfaces)
        if isinstance(self.model_, LinearResidualForest):
            mean, std = self.model_.predict(X, return_std=True, groups=groups)
        else:
            mean, std = self.model_.predict(X, return_std=True)
        dist = self.domain_.distance(X)
        known = np.array([g in self.site_metals_ for g in groups], dtype=bool)
        return pd.DataFrame({
            "surface": [s.notation for s in surfaces],
            "surface_type": [s.surface_type for s in surfaces],
            "site_metal": groups,
            "mean": mean,
            "std": std,
            "distance": dist,
            "known_site_metal": known,
            "in_domain": known & (dist <= DOMAIN_DISTANCE_LIMIT),
        })


# -----------------------------------------------------------------------------------------------
# Evaluation
# -----------------------------------------------------------------------------------------------


def _metrics(y, mu, sd) -> dict:
    from matforge.models.calibration import coverage

    err = mu - y
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "coverage_95": float(coverage(y, mu, sd, 0.95)),
        "coverage_68": float(coverage(y, mu, sd, 0.68)),
        "n": int(len(y)),
    }


def cross_validate(data: pd.DataFrame, *, descriptors: str = "dft_free",
                   estimator: str = "linear_forest", n_splits: int = 5, n_repeats: int = 5,
                   seed: int = 0, target: str = TARGET) -> dict:
    """Repeated K-fold CV of :class:`AdsorptionModel` on a table: per-repeat RMSE, MAE and
    95 %/68 % interval coverage, and their mean ± std over repeats."""
    from sklearn.model_selection import KFold

    y = data[target].to_numpy(dtype=float)
    repeats = []
    for r in range(n_repeats):
        mu, sd = np.empty(len(y)), np.empty(len(y))
        for train, test in KFold(n_splits, shuffle=True, random_state=seed + r).split(y):
            m = AdsorptionModel(descriptors, estimator, target, random_state=seed + r)
            m.fit(data.iloc[train])
            mu[test], sd[test] = m.predict(data.iloc[test], return_std=True)
        repeats.append(_metrics(y, mu, sd))
    out = {"protocol": f"{n_splits}-fold CV x {n_repeats} repeats", "repeats": repeats}
    for k in ("rmse", "mae", "coverage_95", "coverage_68"):
        v = np.array([r[k] for r in repeats])
        out[k] = float(v.mean())
        out[k + "_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return out


def leave_one_group_out(data: pd.DataFrame, *, group: str = "top_layer",
                        descriptors: str = "dft_free", estimator: str = "linear_forest",
                        seed: int = 0, target: str = TARGET) -> dict:
    """Leave one ``group`` (default: top-layer metal) out at a time: pooled RMSE, MAE and
    coverage over every held-out row, and the same per held-out group."""
    y = data[target].to_numpy(dtype=float)
    labels = data[group].to_numpy()
    mu, sd = np.empty(len(y)), np.empty(len(y))
    per = {}
    for g in sorted(set(labels.tolist())):
        out = labels == g
        m = AdsorptionModel(descriptors, estimator, target, random_state=seed)
        m.fit(data[~out])
        mu[out], sd[out] = m.predict(data[out], return_std=True)
        per[g] = _metrics(y[out], mu[out], sd[out])
    res = {"protocol": f"leave one {group} out", **_metrics(y, mu, sd), "per_group": per}
    return res


def out_of_fold(data: pd.DataFrame, *, descriptors: str = "dft_free",
                estimator: str = "linear_forest", n_splits: int = 5, seed: int = 0,
                target: str = TARGET) -> pd.DataFrame:
    """Out-of-fold predictions of one K-fold split: ``surface``, ``dft`` (the target), ``mean``
    and ``std`` (eV), for parity plots."""
    import pandas as pd
    from sklearn.model_selection import KFold

    y = data[target].to_numpy(dtype=float)
    mu, sd = np.empty(len(y)), np.empty(len(y))
    for train, test in KFold(n_splits, shuffle=True, random_state=seed).split(y):
        m = AdsorptionModel(descriptors, estimator, target, random_state=seed)
        mu[test], sd[test] = m.fit(data.iloc[train]).predict(data.iloc[test], return_std=True)
    return pd.DataFrame({"surface": data["surface"].to_numpy(), "dft": y, "mean": mu, "std": sd})
