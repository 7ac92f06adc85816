"""Composition → features → estimator, as one object that learns from formula strings.

>>> from matforge.models.pipeline import CompositionModel
>>> model = CompositionModel(estimator, featurizer=["magpie", "stoichiometry"])
>>> model.fit(["Fe2O3", "NaCl", ...], y)
>>> mean, std = model.predict(["TiO2"], return_std=True)

The featurizer is described by a *spec*, a list of strings (JSON-serialisable, so a saved model
rebuilds it instead of storing feature tables):

=====================  ===========================================================
``magpie``             Magpie element-property statistics (132)
``stoichiometry``      p-norms of the fractions (6)
``valence_orbital``    valence-orbital occupation (8)
``ion_property``       ionic character, charge balance (3)
``element_fraction``   atomic fraction of every element (118)
``mat2vec`` …          element-embedding statistics: ``mat2vec``, ``oliynyk``, ``jarvis``,
                       ``magpie_embedding``; statistics chosen with ``name:stat+stat``
                       (e.g. ``jarvis:mean+range+var``; default mean+sum+range+var+min+max)
``element_tokens``     (Z, fraction) pairs of the most abundant elements, for the
                       attention network (``element_tokens:k`` keeps k, default 16)
=====================  ===========================================================

What the model does beyond ``featurize → estimator.fit``:

* **duplicates**: rows with the same composition (same atomic fractions to 1e-6, so ``Fe2O3``
  and ``Fe4O6`` match) are merged before fitting, their targets averaged (polymorphs) or, for
  classification, put to the majority label — otherwise a cross-validation fold can hold one
  polymorph while training on its twin;
* **target transform**: ``target_transform="log1p"`` fits ``log(1 + y)`` and maps mean and std
  back (delta method);
* **calibration in target units**: from the out-of-fold (OOF) predictions of the training rows
  (taken from the estimator when it keeps them, else from a ``cv``-fold cross-validation) a
  final factor ``std_scale_`` minimises the miscalibration area of the Gaussian intervals in the
  units the user sees; the OOF predictions are kept (``oof_``) for reports and CV metrics;
* **applicability domain**: a distance-only :class:`~matforge.models.domain.DomainModel` of the
  training compositions (``domain_``; in the model's own features, or Magpie + stoichiometry
  for ``element_tokens`` models, whose atomic numbers are no descriptor space). A formula's
  ``domain_distance`` is its mean distance to the 5 nearest training compositions (in the
  standardised features: their 10 principal components and the length of the rest) over the
  median of the same for the training rows (~1 = as close as they are to each other); it is
  ``in_domain`` up to ``domain_.threshold_``, the 99th percentile of the training rows' own
  (leave-one-out) distances. :meth:`CompositionModel.predict_frame` reports both with every
  prediction;
* **progress**: ``fit(X, y, progress=callback)`` reports its stages (featurizing, each
  cross-validation fold, calibration, domain) as ``callback(stage, done, total)``;
* **bad formulas**: ``fit`` refuses them (naming the rows); ``predict`` returns NaN for them,
  and with ``return_errors=True`` also their ``(row, message)`` list;
* **pure prediction**: ``predict``, ``predict_frame`` and ``predict_features`` write nothing to
  the model (its featurizers included): everything they use is built by ``fit`` or by
  :func:`~matforge.models.registry.load_model`, so one model serves several threads at once.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from matforge.errors import InvalidFormula, MatforgeError

__all__ = [
    "DEFAULT_FEATURIZER",
    "CompositionModel",
    "build_featurizer",
    "composition_groups",
    "domain_featurizer_spec",
    "metric_unit",
    "training_sha256",
]

#: ``progress(stage, done, total)``: what :meth:`CompositionModel.fit` reports as it goes
FitProgress = Callable[[str, int, int], None]

DEFAULT_FEATURIZER: tuple[str, ...] = (
    "magpie",
    "stoichiometry",
    "valence_orbital",
    "ion_property",
    "mat2vec",
)
TARGET_TRANSFORMS = (None, "log1p")
_EMBEDDINGS = {
    "mat2vec": "mat2vec",
    "oliynyk": "oliynyk",
    "jarvis": "jarvis",
    "magpie_embedding": "magpie",
}
# Domains learned for models saved without one (registry format 1.0): kept beside each model,
# not on it, since predicting must not write to the model; learned once per model object.
_LEARNED_DOMAINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LEARNED_DOMAINS_LOCK = threading.Lock()


def build_featurizer(spec: Sequence[str]):
    """A :class:`~matforge.features.FeatureSet` from a featurizer spec (see module docstring)."""
    from matforge.features import (
        ElementEmbeddingFeaturizer,
        ElementFraction,
        FeatureSet,
        IonProperty,
        MagpieFeaturizer,
        Stoichiometry,
        ValenceOrbital,
    )

    simple = {
        "magpie": MagpieFeaturizer,
        "stoichiometry": Stoichiometry,
        "valence_orbital": ValenceOrbital,
        "ion_property": IonProperty,
        "element_fraction": ElementFraction,
    }
    if isinstance(spec, str) or not spec:
        raise MatforgeError(f"featurizer spec must be a non-empty list of names, got {spec!r}")
    parts = []
    for entry in spec:
        name, _, stats = str(entry).partition(":")
        if name in simple and not stats:
            parts.append(simple[name]())
        elif name == "element_tokens":
            from matforge.models.transformer import ElementTokens

            try:
                parts.append(ElementTokens(int(stats)) if stats else ElementTokens())
            except ValueError as exc:
                raise MatforgeError(f"featurizer spec entry {entry!r}: {exc}") from None
        elif name in _EMBEDDINGS:
            kwargs = {"stats": tuple(stats.split("+"))} if stats else {}
            try:
                parts.append(ElementEmbeddingFeaturizer(_EMBEDDINGS[name], **kwargs))
            except ValueError as exc:
                raise MatforgeError(f"featurizer spec entry {entry!r}: {exc}") from None
        else:
            known = sorted([*simple, *_EMBEDDINGS, "element_tokens"])
            raise MatforgeError(f"unknown featurizer {entry!r} in spec; known: {', '.join(known)}")
    return FeatureSet(parts)


def domain_featurizer_spec(spec: Sequence[str]) -> list[str]:
    """Featurizer spec the applicability domain of a model with featurizer ``spec`` is measured
    in: the model's own without ``element_tokens`` (atomic numbers and fractions are no
    descriptor space: (NH4)2SO4 sits among steels there); Magpie + stoichiometry where nothing
    else is left."""
    rest = [entry for entry in spec if str(entry).partition(":")[0] != "element_tokens"]
    if len(rest) < len(spec):
        return rest or ["magpie", "stoichiometry"]
    return list(spec)


def composition_groups(fractions) -> np.ndarray:
    """Group id per row of a CSR fraction matrix; equal ids = equal composition (to 1e-6).

    Vectorised: each row's rounded fractions are projected on two fixed random vectors and the
    pairs are ``np.unique``-d (a false match needs two float64 projections to collide).
    """
    F = fractions.tocsr(copy=True)
    F.sort_indices()
    F.data = np.round(F.data, 6)
    R = np.random.default_rng(12345).random((F.shape[1], 2)) + 0.5
    keys = np.asarray(F @ R)
    _, inverse = np.unique(np.round(keys, 9), axis=0, return_inverse=True)
    return inverse.ravel()


def training_sha256(formulas: Sequence[str], y) -> str:
    """SHA-256 of the training data (formula strings and targets, in order)."""
    h = hashlib.sha256()
    for f in formulas:
        h.update(str(f).encode("utf-8"))
        h.update(b"\0")
    h.update(np.ascontiguousarray(np.asarray(y, dtype=np.float64)).tobytes())
    return h.hexdigest()


class CompositionModel(BaseEstimator):
    """Formula strings in, predictions with calibrated uncertainty out.

    Parameters
    ----------
    estimator : scikit-learn estimator
        A regressor with ``predict(X, return_std=True)`` (``task="regression"``) or a
        classifier with ``predict_proba`` (``task="classification"``, binary).
    featurizer : list of str
        Featurizer spec (module docstring).
    task : {"regression", "classification"}
    target_transform : {None, "log1p"}
        Fit the estimator on ``log(1 + y)``; predictions are mapped back to target units.
    dedupe : bool, default=True
        Merge rows with the same composition before fitting.
    impute : bool, default=False
        Replace missing feature values (e.g. an element an embedding table lacks) by the
        training medians; needed for estimators that reject NaN (random forests, GPs).
    recalibrate : bool, default=True
        Fit ``std_scale_`` on the OOF predictions in target units (regression only).
    cv : int, default=5
        Folds of the cross-validation run for OOF predictions when the estimator keeps none.
    target, unit : str or None
        Name and unit of the target, carried into saved models and reports.
    random_state : int or None
        Seeds the fallback cross-validation.

    Attributes
    ----------
    estimator_ : the fitted estimator
    featurizer_ : FeatureSet built from ``featurizer``
    feature_labels_ : list of str
    medians_ : (n_features,) training medians used by ``impute``
    std_scale_ : float, factor on the std in target units (1.0 for classification)
    oof_ : dict of arrays ``formula``, ``y``, ``mean``, ``std`` (regression) or ``proba``
        (classification) for the de-duplicated training rows
    cv_metrics_ : dict of the OOF metrics (MAE/RMSE/R² and calibration, or ROC-AUC/accuracy)
    classes_ : class labels (classification)
    threshold_ : float, probability of ``classes_[1]`` above which :meth:`predict_label`
        returns ``classes_[1]`` (classification; 0.5 for regression)
    n_train_ : rows used for fitting after de-duplication
    training_sha256_ : :func:`training_sha256` of the rows given to ``fit``
    domain_ : distance-only :class:`~matforge.models.domain.DomainModel` of the training
        compositions (see :meth:`applicability_domain`)
    domain_featurizer_ : FeatureSet the domain is measured in (:func:`domain_featurizer_spec`;
        ``featurizer_`` itself for most models)

    Prediction reports the formulas it could not parse per call (``return_errors=True``),
    never on the model: the model is not changed by predicting.
    """

    def __init__(
        self,
        estimator,
        featurizer: Sequence[str] = DEFAULT_FEATURIZER,
        task: str = "regression",
        target_transform: str | None = None,
        dedupe: bool = True,
        impute: bool = False,
        recalibrate: bool = True,
        cv: int = 5,
        target: str | None = None,
        unit: str | None = None,
        random_state=None,
    ):
        self.estimator = estimator
        self.featurizer = featurizer
        self.task = task
        self.target_transform = target_transform
        self.dedupe = dedupe
        self.impute = impute
        self.recalibrate = recalibrate
        self.cv = cv
        self.target = target
        self.unit = unit
        self.random_state = random_state

    # -- features ------------------------------------------------------------------------
    def _features(self, formulas: list, *, strict: bool):
        featurizer = getattr(self, "featurizer_", None)
        if featurizer is None:  # a model assembled by hand: built for this call, not kept
            featurizer = build_featurizer(self.featurizer)
        # featurize_with_errors leaves the (shared) featurizer as it was: no errors_ on it
        X, errors = featurizer.featurize_with_errors(formulas)
        if strict and errors:
            rows = ", ".join(str(r) for r, _ in errors[:5])
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise InvalidFormula(
                f"{len(errors)} training formula(s) could not be parsed, rows {rows}{more}; "
                f"first: {errors[0][1]}"
            )
        return X, errors

    def _impute(self, X: np.ndarray) -> np.ndarray:
        if not self.impute:
            return X
        bad = np.isnan(X)
        if bad.any():
            X = np.where(bad, self.medians_[None, :], X)
        return X

    # -- target transform ----------------------------------------------------------------
    def _forward(self, y: np.ndarray) -> np.ndarray:
        if self.target_transform == "log1p":
            if np.any(y <= -1):
                raise MatforgeError("target_transform='log1p' needs targets > -1")
            return np.log1p(y)
        return y

    def _inverse(self, mu: np.ndarray, sigma: np.ndarray | None = None):
        if self.target_transform == "log1p":
            mean = np.expm1(mu)
            return mean, (None if sigma is None else (1.0 + mean) * sigma)
        return mu, sigma

    # -- fitting -------------------------------------------------------------------------
    def fit(self, X, y, progress: FitProgress | None = None):
        """Fit on formula strings (or pymatgen Compositions) ``X`` and targets ``y``.

        ``progress(stage, done, total)``, if given, is called as the fit goes: featurizing,
        each cross-validation fold, the final fit, calibration and the applicability domain.
        """
        from matforge.chem import CompositionBatch

        report = progress or (lambda stage, done, total: None)

        if self.task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {self.task!r}")
        if self.target_transform not in TARGET_TRANSFORMS:
            raise ValueError(
                f"target_transform must be one of {TARGET_TRANSFORMS}, got {self.target_transform!r}"
            )
        formulas = _as_list(X)
        y = np.asarray(y)
        if y.shape[0] != len(formulas):
            raise ValueError(f"{len(formulas)} formulas but {y.shape[0]} targets")
        self.featurizer_ = build_featurizer(self.featurizer)
        self.feature_labels_ = self.featurizer_.feature_labels()
        report("featurizing", 0, 1)
        F, _ = self._features(formulas, strict=True)
        report("featurizing", 1, 1)
        if self.task == "regression":
            y = y.astype(np.float64)
            bad = np.flatnonzero(~np.isfinite(y))
            if bad.size:
                raise MatforgeError(
                    f"{bad.size} target value(s) are not finite, first at row {bad[0]}"
                )
        self.training_sha256_ = training_sha256(
            formulas, y if self.task == "regression" else np.unique(y, return_inverse=True)[1]
        )
        keep = np.arange(len(formulas))
        if self.dedupe:
            groups = composition_groups(
                CompositionBatch.from_formulas(
                    [f if isinstance(f, str) else str(f) for f in _formula_strings(formulas)],
                    errors="collect",
                ).fractions
            )
            keep, y = _merge_duplicates(groups, y, self.task)
        F = F[keep]
        train_formulas = [
            str(f) for f in np.asarray(_formula_strings(formulas), dtype=object)[keep]
        ]
        raw = F  # the domain imputes missing features itself, with the same training medians
        self.medians_ = (
            np.nanmedian(np.where(np.isfinite(F), F, np.nan), axis=0)
            if self.impute
            else np.zeros(F.shape[1])
        )
        self.medians_ = np.nan_to_num(self.medians_)
        F = self._impute(F)
        self.n_train_ = int(F.shape[0])
        if self.task == "classification":
            self._fit_classifier(F, y, train_formulas, report)
        else:
            self._fit_regressor(F, y, train_formulas, report)
        report("applicability domain", 0, 1)
        self.domain_featurizer_ = self._new_domain_featurizer()
        if self.domain_featurizer_ is not self.featurizer_:
            cols = self._domain_columns(self.domain_featurizer_)
            if cols is not None:
                raw = raw[:, cols]
            else:
                raw, _ = self.domain_featurizer_.featurize_with_errors(train_formulas)
        self.domain_ = _fit_domain(raw)
        report("applicability domain", 1, 1)
        return self

    def _fit_estimator(self, F: np.ndarray, y: np.ndarray, report: FitProgress):
        """A fitted clone of ``estimator``; its folds reported when its ``fit`` takes
        ``on_fold`` (the stacks and the hurdle model cross-fit inside)."""
        from matforge.models.stacking import reports_folds

        est = clone(self.estimator)
        name = type(est).__name__
        if reports_folds(est):
            return est.fit(F, y, on_fold=lambda d, t: report(f"fitting {name}", d, t))
        report(f"fitting {name}", 0, 1)
        est.fit(F, y)
        report(f"fitting {name}", 1, 1)
        return est

    def _fit_regressor(
        self, F: np.ndarray, y: np.ndarray, formulas: list[str], report: FitProgress
    ) -> None:
        from matforge.models.calibration import calibration_report

        yt = self._forward(y)
        self.estimator_ = self._fit_estimator(F, yt, report)
        mu, sigma = self._oof_regression(F, yt, report)
        mean, std = self._inverse(mu, sigma)
        report("calibrating", 0, 1)
        self.std_scale_ = _best_scale(y, mean, std) if self.recalibrate else 1.0
        std = std * self.std_scale_
        self.oof_ = {
            "formula": np.asarray(formulas, dtype=object),
            "y": y,
            "mean": mean,
            "std": std,
        }
        self.cv_metrics_ = {
            **regression_metrics(y, mean),
            **_calibration(y, mean, std, calibration_report),
        }
        report("calibrating", 1, 1)

    def _oof_regression(
        self, F: np.ndarray, yt: np.ndarray, report: FitProgress
    ) -> tuple[np.ndarray, np.ndarray]:
        # Held-out predictions the estimator made while fitting: cross-fit (stacks), out-of-bag
        # (forests) or leave-one-out (GPs). They save a cross-validation.
        est = self.estimator_
        mu = sigma = None
        for kind in ("oof", "oob", "loo"):
            mu = getattr(est, f"{kind}_prediction_", None)
            sigma = getattr(est, f"{kind}_std_", None)
            if mu is not None and sigma is not None:
                break
        if mu is not None and sigma is not None:
            mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)
            ok = np.isfinite(mu) & np.isfinite(sigma)
            if ok.all():
                return mu, sigma
        from matforge.models.stacking import kfold_indices

        mu, sigma = np.empty(len(yt)), np.empty(len(yt))
        folds = kfold_indices(len(yt), self.cv, self.random_state)
        report("cross-validation", 0, len(folds))
        for k, held in enumerate(folds, 1):
            train = np.ones(len(yt), dtype=bool)
            train[held] = False
            m, s = clone(self.estimator).fit(F[train], yt[train]).predict(F[held], return_std=True)
            mu[held], sigma[held] = m, s
            report("cross-validation", k, len(folds))
        return mu, sigma

    def _fit_classifier(
        self, F: np.ndarray, y: np.ndarray, formulas: list[str], report: FitProgress
    ) -> None:
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if self.classes_.size != 2:
            raise MatforgeError(
                f"classification needs 2 classes, got {self.classes_.size}: {self.classes_.tolist()}"
            )
        self.estimator_ = self._fit_estimator(F, y_enc, report)
        proba = getattr(self.estimator_, "oof_proba_", None)
        if proba is None:
            from matforge.models.stacking import kfold_indices

            proba = np.empty(len(y_enc))
            folds = kfold_indices(len(y_enc), self.cv, self.random_state, stratify=y_enc)
            report("cross-validation", 0, len(folds))
            for k, held in enumerate(folds, 1):
                train = np.ones(len(y_enc), dtype=bool)
                train[held] = False
                est = clone(self.estimator).fit(F[train], y_enc[train])
                proba[held] = est.predict_proba(F[held])[:, 1]
                report("cross-validation", k, len(folds))
        self.std_scale_ = 1.0
        self.threshold_ = best_threshold(y_enc, proba)
        self.oof_ = {
            "formula": np.asarray(formulas, dtype=object),
            "y": y_enc.astype(float),
            "proba": np.asarray(proba, float),
        }
        self.cv_metrics_ = classification_metrics(y_enc, proba, self.threshold_)

    # -- prediction ----------------------------------------------------------------------
    def _formula_features(self, X) -> tuple[list, np.ndarray, np.ndarray, list]:
        """``(formulas, F, valid, errors)``: the formulas of ``X``, their features, which rows
        parsed, ``(row, message)`` of the others. Writes nothing to the model."""
        check_is_fitted(self, "estimator_")
        formulas = _as_list(X)
        F, errors = self._features(formulas, strict=False)
        valid = np.ones(len(formulas), dtype=bool)
        valid[[r for r, _ in errors]] = False
        return formulas, F, valid, list(errors)

    def predict(self, X, return_std: bool = False, return_errors: bool = False):
        """Predicted target (target units) per formula; NaN for formulas that do not parse.

        With ``return_std=True`` returns ``(mean, std)``. For classification ``mean`` is the
        probability of ``classes_[1]`` and ``std`` its Bernoulli std ``sqrt(p(1 - p))``; use
        :meth:`predict_label` for labels. With ``return_errors=True`` the ``(row, message)``
        list of the formulas that did not parse comes last: ``(mean, errors)`` or
        ``(mean, std, errors)``. The model is not changed (safe from several threads).
        """
        _, F, valid, errors = self._formula_features(X)
        n = F.shape[0]
        mean, std = np.full(n, np.nan), np.full(n, np.nan)
        if valid.any():
            mean[valid], std[valid] = self.predict_features(F[valid], return_std=True)
        out = (mean, std) if return_std else (mean,)
        if return_errors:
            return (*out, errors)
        return out if return_std else mean

    def predict_features(self, F, return_std: bool = False):
        """Like :meth:`predict`, from rows of ``featurizer_`` features instead of formulas.

        For callers that featurize once and reuse the matrix (screening): applies the
        imputation, the estimator, the inverse target transform and ``std_scale_``, exactly as
        :meth:`predict` does after featurizing. ``F`` is ``(n, len(feature_labels_))``.
        """
        check_is_fitted(self, "estimator_")
        F = self._impute(np.asarray(F, dtype=np.float64))
        if self.task == "classification":
            p = self.estimator_.predict_proba(F)[:, 1]
            return (p, np.sqrt(p * (1.0 - p))) if return_std else p
        mu, sigma = self.estimator_.predict(F, return_std=True)
        m, s = self._inverse(np.asarray(mu, float), np.asarray(sigma, float))
        return (m, s * self.std_scale_) if return_std else m

    def predict_frame(self, X, return_errors: bool = False):
        """One row per formula: ``mean``, ``std`` (as :meth:`predict` with ``return_std``),
        ``domain_distance``, ``in_domain`` (see :meth:`applicability_domain`) and ``error``
        ("" or why the formula has no prediction; those rows have NaN and ``in_domain`` NA).

        A pandas DataFrame in the order of ``X``; with ``return_errors=True`` the pair
        ``(frame, errors)``, ``errors`` the ``(row, message)`` list of the formulas that did
        not parse, as :meth:`predict` returns it. The model is not changed.
        """
        import pandas as pd

        formulas, F, valid, errors = self._formula_features(X)
        domain = self.applicability_domain()
        n = F.shape[0]
        mean, std, dist = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        if valid.any():
            mean[valid], std[valid] = self.predict_features(F[valid], return_std=True)
            D = self._domain_matrix(F[valid], [formulas[i] for i in np.flatnonzero(valid)])
            dist[valid] = domain.distance(np.asarray(D, dtype=np.float64))
        inside = pd.array(domain.in_domain(dist), dtype="boolean")
        inside[~valid] = pd.NA
        error = [""] * n
        for row, msg in errors:
            error[row] = msg
        frame = pd.DataFrame(
            {"mean": mean, "std": std, "domain_distance": dist, "in_domain": inside, "error": error}
        )
        return (frame, errors) if return_errors else frame

    def applicability_domain(self):
        """The fitted distance-only :class:`~matforge.models.domain.DomainModel` of the training
        compositions (``domain_``), in :attr:`domain_featurizer_` features.

        ``threshold_`` is the 99th percentile of the training rows' leave-one-out distances; a
        formula farther than that is out of domain. Models fitted before matforge stored the
        domain (saved in registry format 1.0) learn it here from their training formulas
        (``oof_["formula"]``), which gives the same domain a new fit would. It is learned on
        the first call and kept beside the model, not on it (``domain_`` stays None: predicting
        never writes to the model); saving such a model again stores its domain.
        """
        check_is_fitted(self, "estimator_")
        domain = getattr(self, "domain_", None)
        if domain is not None:
            return domain
        with _LEARNED_DOMAINS_LOCK:  # one thread learns it, the others wait for it
            domain = _LEARNED_DOMAINS.get(self)
            if domain is None:
                domain = _LEARNED_DOMAINS[self] = self._learn_domain()
        return domain

    def _learn_domain(self):
        """The domain a fit would have learned, from the stored training formulas."""
        train = [str(f) for f in getattr(self, "oof_", {}).get("formula", [])]
        if len(train) < 2:
            raise MatforgeError(
                "this model keeps no training formulas to learn its applicability domain "
                "from; train it again"
            )
        F, _ = self._domain_featurizer().featurize_with_errors(train)
        return _fit_domain(F)

    def domain_distance_features(self, F) -> np.ndarray:
        """Distance to the training compositions (``domain_distance``) of rows of
        :attr:`domain_featurizer_` features (for callers that featurize once: screens)."""
        return self.applicability_domain().distance(np.asarray(F, dtype=np.float64))

    def _domain_featurizer(self):
        """``domain_featurizer_`` (set by ``fit`` and ``load_model``), or for a model without
        it one built for the caller (see :meth:`_new_domain_featurizer`), not kept."""
        existing = getattr(self, "domain_featurizer_", None)
        if existing is not None:
            return existing
        return self._new_domain_featurizer()

    def _new_domain_featurizer(self, featurizer=None):
        """The model's own featurizer (``featurizer``, else ``featurizer_``, else a new one of
        its spec), or a new FeatureSet of :func:`domain_featurizer_spec` where that differs."""
        spec = domain_featurizer_spec(self.featurizer)
        if spec != list(self.featurizer):
            return build_featurizer(spec)
        own = featurizer if featurizer is not None else getattr(self, "featurizer_", None)
        return own if own is not None else build_featurizer(self.featurizer)

    def _domain_matrix(self, F: np.ndarray, formulas: list) -> np.ndarray:
        featurizer = self._domain_featurizer()
        if featurizer is getattr(self, "featurizer_", None):
            return F
        cols = self._domain_columns(featurizer)
        if cols is not None:
            return F[:, cols]
        return featurizer.featurize_with_errors(formulas)[0]

    def _domain_columns(self, featurizer) -> np.ndarray | None:
        """Where ``featurizer``'s columns sit among the model's own (the domain's features are
        the model's without the element tokens), so they need no second featurization; None
        when they are not all there."""
        labels = list(getattr(self, "feature_labels_", []))
        index = {label: i for i, label in enumerate(labels)}
        want = featurizer.feature_labels()
        if len(index) != len(labels) or not all(label in index for label in want):
            return None
        return np.array([index[label] for label in want], dtype=np.intp)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, 2) in the order of ``classes_``; NaN rows for bad formulas."""
        if self.task != "classification":
            raise MatforgeError("predict_proba is only defined for classification models")
        p = self.predict(X)
        return np.column_stack([1.0 - p, p])

    def predict_label(self, X) -> np.ndarray:
        """Class label per formula (None for formulas that do not parse): ``classes_[1]`` where its
        probability exceeds ``threshold_``, chosen on the OOF predictions to maximise the
        balanced accuracy."""
        p = self.predict_proba(X)[:, 1]
        labels = np.empty(p.shape[0], dtype=object)
        ok = np.isfinite(p)
        labels[ok] = self.classes_[(p[ok] > self.threshold_).astype(int)]
        return labels


def _fit_domain(F: np.ndarray):
    from matforge.models.domain import DomainModel

    return DomainModel(embedding=None, residual=True, random_state=0).fit(F)


# -- metrics --------------------------------------------------------------------------------
#: unit of each metric in ``cv_metrics_``: "target" for the target's own unit
_METRIC_UNITS = {
    "mae": "target",
    "rmse": "target",
    "r2": "",
    "coverage_68": "fraction",
    "coverage_95": "fraction",
    "miscalibration_area": "",
    "spearman_error_std": "",
    "nll": "nats",
    "roc_auc": "",
    "roc_auc_proba": "",
    "accuracy": "fraction",
    "balanced_accuracy": "fraction",
    "f1": "",
    "log_loss": "nats",
}


def metric_unit(name: str, unit: str | None) -> str | None:
    """Unit of the metric ``name`` of a model whose target is in ``unit``: the target's unit
    for errors (MAE, RMSE; "target units" when it has none), "fraction" for coverages and
    accuracies, "nats" for the mean negative log-likelihoods (NLL, log-loss), "" for
    dimensionless scores (R², ROC-AUC, F1, miscalibration area, Spearman ρ); None for a
    metric this table does not know."""
    kind = _METRIC_UNITS.get(name)
    if kind == "target":
        return unit or "target units"
    return kind


def regression_metrics(y, mean) -> dict[str, float]:
    """MAE, RMSE and R² of point predictions (target units; R² dimensionless)."""
    y, mean = np.asarray(y, float), np.asarray(mean, float)
    err = y - mean
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": float(1.0 - np.sum(err**2) / ss_tot) if ss_tot > 0 else float("nan"),
    }


def classification_metrics(y_true, proba, threshold: float = 0.5) -> dict[str, float]:
    """Binary-classification metrics of probabilities ``proba`` of the positive class.

    ``roc_auc`` is computed as Matbench scores it, on the *labels* ``proba > threshold``
    (for hard labels it equals the balanced accuracy); ``roc_auc_proba`` is the usual ROC-AUC
    of the probabilities. Also accuracy, balanced accuracy, F1 and log-loss (nats).
    """
    from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss, roc_auc_score

    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, float)
    pred = (proba > threshold).astype(int)
    both = np.unique(y_true).size == 2
    nan = float("nan")
    return {
        "roc_auc": float(roc_auc_score(y_true, pred)) if both else nan,
        "roc_auc_proba": float(roc_auc_score(y_true, proba)) if both else nan,
        "accuracy": float(np.mean(pred == y_true)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, pred)) if both else nan,
        "f1": float(f1_score(y_true, pred, zero_division=0)),
        "log_loss": float(log_loss(y_true, np.clip(proba, 1e-12, 1 - 1e-12), labels=[0, 1])),
    }


def best_threshold(y_true, proba) -> float:
    """Probability threshold maximising the balanced accuracy (Youden's J) of ``proba``.

    Chosen on held-out (out-of-fold) probabilities; with calibrated probabilities it lies near
    the positive-class prevalence, not at 0.5, when the classes are unbalanced.
    """
    from sklearn.metrics import roc_curve

    y_true = np.asarray(y_true).astype(int)
    if np.unique(y_true).size < 2:
        return 0.5
    fpr, tpr, thr = roc_curve(y_true, proba)
    best = int(np.argmax((tpr - fpr)[1:])) + 1  # thr[0] is +inf
    # roc_curve's threshold t labels ``proba >= t`` positive; step just below it for ``>``
    return float(np.nextafter(thr[best], -np.inf))


def _calibration(y, mean, std, calibration_report) -> dict[str, float]:
    rep = calibration_report(y, mean, std)
    return {
        k: rep[k]
        for k in ("coverage_68", "coverage_95", "miscalibration_area", "spearman_error_std", "nll")
    }


def _best_scale(
    y: np.ndarray, mean: np.ndarray, std: np.ndarray, band: tuple[float, float] = (0.94, 0.96)
) -> float:
    """Factor on ``std`` calibrating held-out predictions: 95% intervals first, then the curve.

    Among the factors for which the central 95% intervals cover a fraction within ``band`` of
    the held-out rows (an interval of factors, since coverage grows with the factor), returns
    the one with the smallest miscalibration area. Minimising the area alone is not enough:
    with a point mass of exactly-predicted rows (metals at 0 eV, always "covered") or heavy
    tails, the area's optimum can leave the 95% intervals covering only ~80%.
    """
    from scipy import stats

    from matforge.models.calibration import miscalibration_area

    ok = np.isfinite(y) & np.isfinite(mean) & np.isfinite(std) & (std > 0)
    if ok.sum() < 10:
        return 1.0
    y, mean, std = y[ok], mean[ok], std[ok]
    z = np.abs(y - mean) / std
    z95 = stats.norm.ppf(0.975)
    lo, hi = (float(np.quantile(z, b)) / z95 for b in band)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= 0:
        return 1.0
    lo = max(lo, 1e-6 * hi)
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 21))
    areas = [miscalibration_area(y, mean, s * std) for s in grid]
    return float(grid[int(np.argmin(areas))])


# -- helpers --------------------------------------------------------------------------------
def _as_list(X) -> list:
    if isinstance(X, str):
        raise TypeError("pass a sequence of formulas, not one string")
    if hasattr(X, "columns"):  # a DataFrame: its formula column
        if "formula" not in X.columns:
            raise MatforgeError(f"DataFrame input needs a 'formula' column; got {list(X.columns)}")
        X = X["formula"]
    if hasattr(X, "ndim") and getattr(X, "ndim", 1) == 2:
        X = np.asarray(X).ravel()
    return list(X)


def _formula_strings(formulas: list) -> list:
    from matforge.features.base import _as_formula

    return [_as_formula(f) for f in formulas]


def _merge_duplicates(groups: np.ndarray, y: np.ndarray, task: str) -> tuple[np.ndarray, Any]:
    """First row of each composition group and the group's mean (regression) or majority label."""
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    first = order[starts]
    if starts.size == groups.size:
        return np.arange(groups.size), y
    if task == "regression":
        sums = np.add.reduceat(y[order], starts)
        counts = np.diff(np.r_[starts, groups.size])
        merged = sums / counts
    else:
        classes, codes = np.unique(y, return_inverse=True)
        votes = np.zeros((starts.size, classes.size))
        np.add.at(
            votes,
            (np.repeat(np.arange(starts.size), np.diff(np.r_[starts, groups.size])), codes[order]),
            1,
        )
        merged = classes[np.argmax(votes, axis=1)]
    # keep the original row order of first occurrences
    back = np.argsort(first, kind="stable")
    return first[back], merged[back]
