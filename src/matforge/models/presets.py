"""The model recipes: one vocabulary of names (:data:`RECIPES`) for ``matforge train``, screens,
the server's ``train_model`` job and campaigns' surrogates.

:func:`make_model` returns an unfitted :class:`~matforge.models.pipeline.CompositionModel`. The
``auto`` spec looks only at the *training* targets it is given (never at test data):

* regression with a point mass at zero (>= 20% of the targets exactly 0, none negative: band
  gaps) → :class:`~matforge.models.hurdle.HurdleRegressorUQ` on ``log(1 + y)``: a LightGBM
  classifier of ``y == 0`` gating a Huber-loss LightGBM regressor of the positive part, with
  the probability threshold chosen on out-of-fold predictions (from :data:`LARGE_DATA` rows on,
  both with :data:`LARGE_LGBM` on :data:`LARGE_FEATURIZER`; ``matbench_mp_gap`` fold 0, the
  two parts fitted once on all training rows, gated at probability 0.5: 0.322 eV with the
  defaults, 0.234 with the large settings);
* regression with fewer than :data:`SMALL_DATA` rows → :class:`~matforge.models.stacking.
  StackedRegressorUQ` of LightGBM, extra-trees and extra-trees on the element fractions alone
  (:func:`fraction_trees_regressor`; not with a user's featurizer) (NNLS-blended on
  out-of-fold predictions, refitted on all rows) on the :data:`COMPACT_FEATURIZER` set: with a
  few hundred rows the embedding statistics add more noise than signal (steels: 94 → 90 MPa
  without them; 85.3 → 80.1 with the fraction base);
* other regression → :class:`~matforge.models.stacking.StackedRegressorUQ` of a Huber-loss
  LightGBM (:data:`HUBER_MAD_FRACTION`) cross-fitted 5 times; from :data:`LARGE_DATA` rows on,
  a larger LightGBM (:data:`LARGE_LGBM`) on :data:`LARGE_FEATURIZER`, the auto set without the
  mat2vec statistics (``matbench_mp_e_form`` fold 0, one model on all training rows: 0.1304
  eV/atom with the defaults, 0.1071 with the larger trees, 0.1001 with the larger trees and
  no mat2vec, which also takes a third of the CPU time);
* from :data:`SMALL_DATA` to :data:`ATTENTION_MAX_ROWS` rows, with torch installed, that stack
  is blended with the pretrained attention model (``transformer_pretrained``) by a
  :class:`~matforge.models.stacking.BlendedRegressorUQ`: NNLS weights on the out-of-fold
  predictions of both, so inner cross-validation decides how much the network counts
  (``auto_trees`` is the same recipe without it);
* binary classification → :class:`~matforge.models.stacking.StackedClassifier` of LightGBM,
  calibrated by logistic regression on out-of-fold logits;

on ``log(1 + y)`` for positive, right-skewed targets, and on :data:`AUTO_FEATURIZER` (Magpie,
stoichiometry, valence orbitals, ionic character, element fractions, mat2vec and Oliynyk
embedding statistics; 1,731 columns) unless stated. LightGBM runs single-threaded per model (its
OpenMP threads crawl on busy shared cores: 6x slower measured with 2 threads on 2 busy cores);
``n_jobs`` fits fold models in parallel threads instead.

``transformer`` is the :class:`~matforge.models.transformer.CompositionTransformer` (attention
network over mat2vec element embeddings, a cross-fitted deep ensemble) on the ``element_tokens``
spec, with ``auto``'s target transform; for a classification its two-class form,
:class:`~matforge.models.transformer.CompositionTransformerClassifier`. ``n_jobs`` sets its torch
threads.

A campaign's surrogate (:func:`matforge.design.strategy.make_surrogate`) is the same family of
estimator fitted on the campaign's own feature columns; there ``auto`` is
:func:`auto_surrogate`: a Gaussian process for small problems (up to :data:`GP_MAX_FEATURES`
features and :data:`GP_MAX_OBSERVATIONS` results), a random forest beyond.

The choices come from the Matbench experiments recorded in ``docs/benchmarks.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from matforge.errors import MatforgeError

if TYPE_CHECKING:  # the vocabulary stays cheap to import: campaigns read it at import time
    from matforge.models.pipeline import CompositionModel

__all__ = [
    "ALIASES",
    "ATTENTION_MAX_ROWS",
    "AUTO_FEATURIZER",
    "COMPACT_FEATURIZER",
    "GP_MAX_FEATURES",
    "GP_MAX_OBSERVATIONS",
    "LARGE_DATA",
    "LARGE_FEATURIZER",
    "LARGE_LGBM",
    "MODEL_NAMES",
    "RECIPES",
    "SURROGATE_NAMES",
    "auto_surrogate",
    "lgbm_classifier",
    "lgbm_regressor",
    "make_model",
    "recipe_name",
]

#: The model recipes by name, each in one line (the details: this module's docstring).
RECIPES: dict[str, str] = {
    "auto": "chosen from the training data: a LightGBM stack (a hurdle model for targets with "
    "many zeros) for make_model; for a campaign's surrogate, a Gaussian process on small "
    "problems and a random forest beyond (auto_surrogate)",
    "auto_trees": "auto without the attention model: the tree models alone (faster; the same "
    "as auto below 1,000 and from 20,000 training rows, and without torch)",
    "lgbm": "LightGBM with uncertainty: a cross-fitted stack for make_model, a bagged ensemble "
    "(BoostedEnsembleUQ) as a campaign's surrogate",
    "rf": "random forest with calibrated uncertainty (RandomForestUQ; Magpie features, missing "
    "values imputed, for make_model)",
    "gp": "Gaussian process with one length scale per feature (GaussianProcessUQ); regression "
    "only",
    "transformer": "attention network over mat2vec element embeddings (CompositionTransformer; "
    "two-class labels: CompositionTransformerClassifier); not a campaign surrogate",
    "transformer_pretrained": "the attention network fine-tuned from the bundled encoder, "
    "pretrained on OQMD without the Matbench compositions (matforge pretrain)",
    "small": "a small, fast LightGBM stack for tests and smoke runs; not a campaign surrogate",
}
MODEL_NAMES = tuple(RECIPES)
#: the recipes a campaign's surrogate can be (on the campaign's own feature columns)
SURROGATE_NAMES = ("auto", "rf", "gp", "lgbm")
#: older names still accepted: campaigns stored with the surrogate ``"boosted"`` keep loading
ALIASES: dict[str, str] = {"boosted": "lgbm"}

#: a campaign's ``auto`` surrogate is a Gaussian process up to this many (non-constant)
#: features ...
GP_MAX_FEATURES = 16
#: ... and this many results, a random forest beyond.
GP_MAX_OBSERVATIONS = 500


def recipe_name(
    name: str,
    names: tuple[str, ...] = MODEL_NAMES,
    *,
    what: str = "model",
    error: type[MatforgeError] = MatforgeError,
) -> str:
    """The recipe ``name`` stands for (an :data:`ALIASES` entry resolved), checked against
    ``names``; ``error`` (a :class:`~matforge.errors.MatforgeError`) lists the valid names."""
    canonical = ALIASES.get(name, name) if isinstance(name, str) else name
    if canonical not in names:
        raise error(f"unknown {what} {name!r}; choose one of {', '.join(names)}")
    return canonical


def auto_surrogate(n_features: int, n_observations: int) -> str:
    """What ``"auto"`` means for a campaign's surrogate: ``"gp"`` up to
    :data:`GP_MAX_FEATURES` features and :data:`GP_MAX_OBSERVATIONS` results, else ``"rf"``."""
    if n_features <= GP_MAX_FEATURES and n_observations <= GP_MAX_OBSERVATIONS:
        return "gp"
    return "rf"

AUTO_FEATURIZER: tuple[str, ...] = (
    "magpie",
    "stoichiometry",
    "valence_orbital",
    "ion_property",
    "element_fraction",
    "mat2vec",
    "oliynyk",
)

#: compact feature set for small data (fewer columns than rows to learn from)
COMPACT_FEATURIZER: tuple[str, ...] = (
    "magpie",
    "stoichiometry",
    "valence_orbital",
    "element_fraction",
)

#: ``auto`` regression (both parts of the hurdle too) from this many training rows on: larger
#: trees, no mat2vec (LARGE_LGBM, LARGE_FEATURIZER)
LARGE_DATA = 50_000
#: below this many training rows (and from SMALL_DATA on), ``auto`` regression blends the trees
#: with the pretrained attention model when torch is installed; beyond, the network's CPU
#: time (about 4 CPU-minutes per 10,000 rows) outgrows what it adds
ATTENTION_MAX_ROWS = 20_000

#: auto set without the 1,200 mat2vec columns: on 100,000 rows the trees learn more from the
#: other statistics, in a third of the time
LARGE_FEATURIZER: tuple[str, ...] = tuple(f for f in AUTO_FEATURIZER if f != "mat2vec")

#: LightGBM settings of ``auto`` regression from LARGE_DATA rows on
LARGE_LGBM: dict[str, Any] = dict(n_estimators=2000, learning_rate=0.08, num_leaves=63)

#: share of exact zeros from which a regression target gets the hurdle model
ZERO_MASS = 0.2
#: below this many training rows, ``auto`` uses the compact features and adds extra-trees
SMALL_DATA = 1000
#: Huber transition point of the LightGBM regressors, as a fraction of the target's median
#: absolute deviation: residuals beyond it count linearly, so a few outliers (moduli of
#: near-zero, gaps of misassigned phases) cannot pull the trees, and the mean follows the
#: conditional median that the MAE rewards.
HUBER_MAD_FRACTION = 0.4

_LGBM_DEFAULTS: dict[str, Any] = dict(
    n_estimators=600,
    learning_rate=0.04,
    num_leaves=31,
    min_child_samples=10,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.3,
    reg_lambda=1.0,
    max_bin=63,
    n_jobs=1,
    verbose=-1,
)


def lgbm_regressor(random_state=None, **overrides):
    """A LightGBM regressor with matforge's defaults (single-threaded; see module docstring)."""
    from lightgbm import LGBMRegressor

    return LGBMRegressor(**{**_LGBM_DEFAULTS, "random_state": random_state, **overrides})


def lgbm_classifier(random_state=None, **overrides):
    """A LightGBM classifier with matforge's defaults."""
    from lightgbm import LGBMClassifier

    return LGBMClassifier(**{**_LGBM_DEFAULTS, "random_state": random_state, **overrides})


def extra_trees_regressor(random_state=None, **overrides):
    """Extra-trees regressor (accepts NaN features; sklearn >= 1.6)."""
    from sklearn.ensemble import ExtraTreesRegressor

    params = dict(n_estimators=200, max_features=0.3, min_samples_leaf=1, n_jobs=1)
    return ExtraTreesRegressor(**{**params, "random_state": random_state, **overrides})


def fraction_trees_regressor(random_state=None):
    """Extra-trees on the element fractions alone: the last columns of
    :data:`COMPACT_FEATURIZER`'s matrix (``element_fraction`` comes last; a test checks the
    columns), every column tried at each split. In an alloy series the fractions are the
    variables; among 264 columns, 0.3 of them sampled per split, the 13 fractions that vary
    are seldom tried."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from matforge.features.fraction import ElementFraction

    n = len(ElementFraction().feature_labels())
    select = ColumnTransformer([("element_fraction", "passthrough", slice(-n, None))])
    trees = extra_trees_regressor(random_state, n_estimators=500, max_features=1.0)
    return Pipeline([("fractions", select), ("trees", trees)])


def extra_trees_classifier(random_state=None, **overrides):
    """Extra-trees classifier (accepts NaN features; sklearn >= 1.6)."""
    from sklearn.ensemble import ExtraTreesClassifier

    params = dict(n_estimators=300, max_features="sqrt", min_samples_leaf=1, n_jobs=1)
    return ExtraTreesClassifier(**{**params, "random_state": random_state, **overrides})


def make_model(
    name: str = "auto",
    task: str = "regression",
    y=None,
    *,
    featurizer=None,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    target: str | None = None,
    unit: str | None = None,
) -> CompositionModel:
    """Unfitted :class:`CompositionModel` for the named spec (see module docstring).

    ``y`` are the training targets (used by ``auto`` to pick the hurdle model and the target
    transform); ``featurizer`` overrides the spec's feature set.
    """
    name = recipe_name(name)
    if task not in ("regression", "classification"):
        raise MatforgeError(f"task must be 'regression' or 'classification', got {task!r}")
    common = dict(task=task, target=target, unit=unit, random_state=random_state)
    if task == "classification":
        return _classifier(name, featurizer, random_state, n_jobs, common)
    return _regressor(name, y, featurizer, random_state, n_jobs, common)


def _regressor(name, y, featurizer, rs, n_jobs, common) -> CompositionModel:
    from matforge.models.hurdle import HurdleRegressorUQ
    from matforge.models.pipeline import DEFAULT_FEATURIZER, CompositionModel
    from matforge.models.stacking import StackedRegressorUQ

    y = None if y is None else np.asarray(y, dtype=float)
    if name in ("auto", "auto_trees"):
        n = 0 if y is None else y.size
        zero_mass = n > 0 and np.all(y >= 0) and np.mean(y == 0) >= ZERO_MASS
        transform = "log1p" if n and np.all(y >= 0) and (zero_mass or _skewed(y)) else None
        yt = None if y is None else (np.log1p(y) if transform else y)
        large = LARGE_LGBM if n >= LARGE_DATA else {}
        if zero_mass:
            est = HurdleRegressorUQ(
                classifier=lgbm_classifier(rs, **large),
                regressors=[("lgbm", lgbm_regressor(rs, **_huber(yt[yt > 0]), **large))],
                cv=5,
                random_state=rs,
                n_jobs=n_jobs,
            )
            spec = LARGE_FEATURIZER if large else AUTO_FEATURIZER
        elif n < SMALL_DATA:
            est = StackedRegressorUQ(
                [
                    ("lgbm", lgbm_regressor(rs, min_child_samples=3)),
                    ("extra_trees", extra_trees_regressor(rs)),
                    *([("fraction_trees", fraction_trees_regressor(rs))] if not featurizer else []),
                ],
                cv=5,
                random_state=rs,
                n_jobs=n_jobs,
                refit=True,
            )
            spec = COMPACT_FEATURIZER
        else:
            est = StackedRegressorUQ(
                [("lgbm", lgbm_regressor(rs, **_huber(yt), **large))],
                cv=5,
                random_state=rs,
                n_jobs=n_jobs,
            )
            spec = LARGE_FEATURIZER if large else AUTO_FEATURIZER
            if name == "auto" and not featurizer and n < ATTENTION_MAX_ROWS and _torch_installed():
                est, spec = _with_attention(est, spec, rs, n_jobs)
        return CompositionModel(
            est, featurizer=list(featurizer or spec), target_transform=transform, **common
        )
    if name == "lgbm":
        est = StackedRegressorUQ(
            [("lgbm", lgbm_regressor(rs))], cv=5, random_state=rs, n_jobs=n_jobs
        )
        return CompositionModel(est, featurizer=list(featurizer or AUTO_FEATURIZER), **common)
    if name == "rf":
        from matforge.models.forest import RandomForestUQ

        est = RandomForestUQ(n_estimators=300, random_state=rs, n_jobs=n_jobs)
        return CompositionModel(
            est, featurizer=list(featurizer or DEFAULT_FEATURIZER), impute=True, **common
        )
    if name in ("transformer", "transformer_pretrained"):
        from matforge.models.transformer import CompositionTransformer

        transform = None
        if y is not None and y.size and np.all(y >= 0):
            zero_mass = np.mean(y == 0) >= ZERO_MASS
            transform = "log1p" if zero_mass or _skewed(y) else None
        est = CompositionTransformer(
            random_state=rs,
            n_threads=n_jobs,
            pretrained="bundled" if name == "transformer_pretrained" else None,
        )
        return CompositionModel(
            est,
            featurizer=list(featurizer or ["element_tokens"]),
            target_transform=transform,
            **common,
        )
    if name == "gp":
        from matforge.models.gaussian_process import GaussianProcessUQ

        est = GaussianProcessUQ(random_state=rs)
        return CompositionModel(
            est, featurizer=list(featurizer or ["magpie", "stoichiometry"]), impute=True, **common
        )
    # "small": seconds, for tests and smoke runs
    est = StackedRegressorUQ(
        [("lgbm", lgbm_regressor(rs, n_estimators=80, learning_rate=0.1, colsample_bytree=0.5))],
        cv=3,
        noise_trees=30,
        random_state=rs,
        n_jobs=n_jobs,
    )
    return CompositionModel(
        est, featurizer=list(featurizer or ["magpie", "stoichiometry"]), **common
    )


def _classifier(name, featurizer, rs, n_jobs, common) -> CompositionModel:
    from matforge.models.pipeline import DEFAULT_FEATURIZER, CompositionModel
    from matforge.models.stacking import StackedClassifier

    if name in ("auto", "auto_trees", "lgbm"):  # "auto" for a classification: the lgbm recipe
        est = StackedClassifier(
            [("lgbm", lgbm_classifier(rs))], cv=5, random_state=rs, n_jobs=n_jobs
        )
        return CompositionModel(est, featurizer=list(featurizer or AUTO_FEATURIZER), **common)
    if name == "rf":
        from matforge.models.forest import RandomForestClassifierUQ

        est = RandomForestClassifierUQ(n_estimators=300, random_state=rs, n_jobs=n_jobs)
        return CompositionModel(
            est, featurizer=list(featurizer or DEFAULT_FEATURIZER), impute=True, **common
        )
    if name in ("transformer", "transformer_pretrained"):
        from matforge.models.transformer import CompositionTransformerClassifier

        est = CompositionTransformerClassifier(
            random_state=rs,
            n_threads=n_jobs,
            pretrained="bundled" if name == "transformer_pretrained" else None,
        )
        return CompositionModel(est, featurizer=list(featurizer or ["element_tokens"]), **common)
    if name == "gp":
        raise MatforgeError(f"the {name!r} model is regression-only; use auto, lgbm or rf")
    est = StackedClassifier(
        [("lgbm", lgbm_classifier(rs, n_estimators=80, learning_rate=0.1, colsample_bytree=0.5))],
        cv=3,
        random_state=rs,
        n_jobs=n_jobs,
    )
    return CompositionModel(
        est, featurizer=list(featurizer or ["magpie", "stoichiometry"]), **common
    )


def _torch_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("torch") is not None


def _with_attention(trees, spec, rs, n_jobs) -> tuple[Any, tuple[str, ...]]:
    """``trees`` blended with the pretrained attention model (NNLS on both models' out-of-fold
    predictions, so inner cross-validation decides its weight); the element tokens go first."""
    from matforge.models.stacking import BlendedRegressorUQ
    from matforge.models.transformer import CompositionTransformer, ElementTokens

    width = len(ElementTokens().feature_labels())
    attention = CompositionTransformer(random_state=rs, n_threads=n_jobs, pretrained="bundled")
    est = BlendedRegressorUQ(
        [
            ("attention", attention, slice(0, width)),
            ("trees", trees, slice(width, None)),
        ]
    )
    return est, ("element_tokens", *spec)


def _huber(y) -> dict[str, Any]:
    """LightGBM parameters for a Huber loss scaled to the target (see HUBER_MAD_FRACTION)."""
    if y is None or np.size(y) < 10:
        return {}
    mad = float(np.median(np.abs(y - np.median(y))))
    return {"objective": "huber", "alpha": HUBER_MAD_FRACTION * mad} if mad > 0 else {}


def _skewed(y: np.ndarray) -> bool:
    """Positive target spanning more than a factor of 3 with right skew: fit on a log scale."""
    from scipy.stats import skew

    pos = y[y > 0]
    return pos.size > 10 and np.quantile(pos, 0.95) > 3 * np.quantile(pos, 0.05) and skew(y) > 0.5
