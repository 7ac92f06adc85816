"""A property's model as a screen uses it: :class:`PropertyModel` (mean and std on the screen's
feature matrix, log10 targets, an optional cheap estimator for funnels, an applicability
domain), built by hand or from a registry :class:`~matforge.models.pipeline.CompositionModel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from matforge.errors import ScreenError
from matforge.properties.propagation import Predictive

__all__ = ["PropertyModel"]


@dataclass
class PropertyModel:
    """One property's model, as a screen uses it.

    Args:
        estimator: fitted, with ``predict(X, return_std=True) -> (mean, std)`` on the screen's
            feature matrix (e.g. :class:`matforge.models.BoostedEnsembleUQ`).
        log10: the estimator predicts log10 of the property; the predictive distribution is
            then log-normal and the result columns are in the property's own units.
        unit: the property's unit (for reports), e.g. ``"GPa"``.
        lower: clip Monte Carlo samples below this (e.g. 0 for a modulus, normal models only).
        cheap: optional fast estimator with ``predict(X) -> mean`` (same features, same scale as
            ``estimator``) used by a :class:`Funnel` on every candidate.
        featurizer: this model's own featurizer, if it differs from the screen's (features are
            computed once per chunk per distinct featurizer).
        domain: the model's applicability domain (a fitted
            :class:`~matforge.models.domain.DomainModel` with ``threshold_``): adds
            ``domain_distance`` and ``in_domain`` to the results.
        domain_featurizer: the features ``domain`` is measured in, if not the model's.
    """

    estimator: Any
    log10: bool = False
    unit: str = ""
    lower: float | None = None
    cheap: Any = None
    featurizer: Any = None
    domain: Any = None
    domain_featurizer: Any = None

    @classmethod
    def from_composition_model(cls, model, *, unit: str = "", lower: float | None = None):
        """Wrap a fitted :class:`matforge.models.pipeline.CompositionModel` (e.g. from
        :func:`matforge.models.registry.load_model`): its featurizer, imputation, target
        transform and std scale are applied, predictions are in the model's target units, and
        its applicability domain gives every candidate ``domain_distance`` and ``in_domain``."""
        if getattr(model, "task", "regression") != "regression":
            raise ScreenError("only regression models can be screened on")
        # The model is only read (fit and load_model built all of this), never completed here.
        featurizer = getattr(model, "featurizer_", None)
        if featurizer is None:  # a model assembled by hand
            from matforge.models.pipeline import build_featurizer

            featurizer = build_featurizer(model.featurizer)
        domain = model.applicability_domain()
        domain_featurizer = getattr(model, "domain_featurizer_", None)
        if domain_featurizer is None:  # a model assembled by hand
            domain_featurizer = model._new_domain_featurizer(featurizer)
        return cls(
            _CompositionModelOnFeatures(model), unit=unit or getattr(model, "unit", "") or "",
            lower=lower, featurizer=featurizer, domain=domain,
            domain_featurizer=domain_featurizer,
        )  # fmt: skip

    def predictive(self, X: np.ndarray) -> Predictive:
        mean, std = self.estimator.predict(X, return_std=True)
        return Predictive(
            np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64),
            self.log10, self.lower,
        )  # fmt: skip

    def cheap_value(self, X: np.ndarray) -> np.ndarray:
        if self.cheap is None:
            raise ScreenError("a funnel needs a cheap estimator on every model")
        v = np.asarray(self.cheap.predict(X), dtype=np.float64)
        return np.power(10.0, v) if self.log10 else v


class _CompositionModelOnFeatures:
    """A CompositionModel's own feature-level prediction
    (:meth:`~matforge.models.pipeline.CompositionModel.predict_features`: imputation,
    estimator, inverse target transform, ``std_scale_``) on features its featurizer computed,
    so a screen predicts exactly what ``predict`` does."""

    def __init__(self, model):
        self.model = model

    def predict(self, X, return_std: bool = False):
        return self.model.predict_features(X, return_std=return_std)
