"""A local registry of trained models, in a portable format without pickles.

>>> from matforge.models.registry import save_model, load_model, list_models
>>> save_model(model, "gap-v1")              # ~/.matforge/models/gap-v1/
>>> model = load_model("gap-v1")

Root: ``$MATFORGE_HOME/models`` (default ``~/.matforge/models``), or ``root=`` explicitly.
One folder per model:

``metadata.json``
    format version, matforge version, model class and parameters, featurizer spec, target name
    and unit, SHA-256 of the training data, cross-validated metrics, creation time (UTC);
``estimator.skops``
    the fitted estimator written with :mod:`skops.io` (a zip of JSON and ``.npy`` arrays). On
    load, every type it names must be in :data:`TRUSTED_TYPES` — an explicit allow-list, not
    "whatever the file asks for" — or :class:`~matforge.errors.ModelRegistryError` is raised;
``state.npz``
    the pipeline's own arrays (imputation medians, out-of-fold predictions, the applicability
    domain as ``domain_*`` arrays, see :meth:`~matforge.models.domain.DomainModel.to_arrays`),
    read with ``allow_pickle=False``;
``torch_state.npz``
    only for estimators holding torch modules (their ``state_dict`` tensors as arrays).

A model written by a newer *major* format version cannot be read and raises
:class:`~matforge.errors.ModelRegistryError` saying which versions are involved. Format 1.1
added the applicability domain; a 1.0 model learns it from its stored training formulas
when first asked (:meth:`~matforge.models.pipeline.CompositionModel.applicability_domain`),
kept beside the model rather than on it, until it is saved again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from matforge import __version__
from matforge.errors import ModelRegistryError
from matforge.jsonable import to_jsonable

__all__ = [
    "FORMAT_VERSION",
    "TRUSTED_TYPES",
    "list_models",
    "load_model",
    "model_dir",
    "registry_root",
    "save_model",
]

#: major.minor; a reader accepts any minor of its own major (minor = additive fields only)
FORMAT_VERSION = "1.1"

#: Types (beyond skops' own defaults: numpy, scipy, scikit-learn) a saved estimator may hold.
TRUSTED_TYPES: tuple[str, ...] = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "matforge.models.boosting.BoostedClassifier",
    "matforge.models.boosting.BoostedEnsembleUQ",
    "matforge.models.forest.RandomForestClassifierUQ",
    "matforge.models.forest.RandomForestUQ",
    "matforge.models.gaussian_process.GaussianProcessUQ",
    "matforge.models.hurdle.HurdleRegressorUQ",
    "matforge.models.recalibration.NoiseForest",
    "matforge.models.stacking.BlendedRegressorUQ",
    "matforge.models.stacking.StackedClassifier",
    "matforge.models.stacking.StackedRegressorUQ",
    "matforge.models.transformer.CompositionTransformer",
    "matforge.models.transformer.CompositionTransformerClassifier",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._forest.ExtraTreesRegressor",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.gaussian_process._gpr.GaussianProcessRegressor",
    "sklearn.gaussian_process.kernels.ConstantKernel",
    "sklearn.gaussian_process.kernels.Matern",
    "sklearn.gaussian_process.kernels.Product",
    "sklearn.gaussian_process.kernels.Sum",
    "sklearn.gaussian_process.kernels.WhiteKernel",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.model_selection._split.KFold",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.calibration._SigmoidCalibration",
    "builtins.slice",
    "numpy.random.mtrand.RandomState",
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PIPELINE_PARAMS = (
    "featurizer",
    "task",
    "target_transform",
    "dedupe",
    "impute",
    "recalibrate",
    "cv",
    "target",
    "unit",
    "random_state",
)


def registry_root(root: str | os.PathLike | None = None) -> Path:
    """Folder holding the saved models: ``root``, else ``$MATFORGE_HOME/models``, else
    ``~/.matforge/models``."""
    if root is not None:
        return Path(root)
    home = os.environ.get("MATFORGE_HOME")
    return (Path(home) if home else Path.home() / ".matforge") / "models"


def model_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """Folder of model ``name`` (not checked for existence); rejects names that are not plain
    file names (letters, digits, ``.``, ``_``, ``-``)."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise ModelRegistryError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' (max 128)"
        )
    return registry_root(root) / name


def save_model(
    model,
    name: str,
    root: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a fitted :class:`~matforge.models.pipeline.CompositionModel` as ``name``.

    ``extra`` is stored under ``metadata["extra"]`` (e.g. the dataset name). Raises
    :class:`ModelRegistryError` if ``name`` exists and ``overwrite`` is False. The folder is
    written next to its final place and renamed, so a crash leaves no half-written model.
    """
    from sklearn.utils.validation import check_is_fitted

    from matforge.models.pipeline import CompositionModel, domain_featurizer_spec

    if not isinstance(model, CompositionModel):
        raise ModelRegistryError(
            f"save_model takes a fitted CompositionModel, got {type(model).__name__}"
        )
    check_is_fitted(model, "estimator_")
    target_dir = model_dir(name, root)
    if target_dir.exists() and not overwrite:
        raise ModelRegistryError(
            f"model {name!r} already exists in {target_dir.parent} (pass overwrite=True)"
        )
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target_dir.parent))
    try:
        estimator = model.estimator_
        torch_state = _torch_state(estimator)
        _skops_io().dump(estimator, tmp / "estimator.skops")
        arrays = {"medians": np.asarray(model.medians_, dtype=np.float64)}
        for key, value in model.oof_.items():
            arrays[f"oof_{key}"] = (
                np.asarray(value, dtype=str)
                if key == "formula"
                else np.asarray(value, dtype=np.float64)
            )
        domain = model.applicability_domain()
        for key, value in domain.to_arrays().items():
            arrays[f"domain_{key}"] = value
        np.savez(tmp / "state.npz", **arrays)
        if torch_state:
            np.savez(tmp / "torch_state.npz", **torch_state)
        metadata = {
            "format_version": FORMAT_VERSION,
            "matforge_version": __version__,
            "name": name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "estimator_class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
            "params": {k: to_jsonable(getattr(model, k)) for k in _PIPELINE_PARAMS},
            "estimator_params": to_jsonable(model.estimator.get_params(deep=True)),
            "featurizer": list(model.featurizer),
            "n_features": len(model.feature_labels_),
            "target": model.target,
            "unit": model.unit,
            "task": model.task,
            "classes": to_jsonable(list(getattr(model, "classes_", []))),
            "n_train": model.n_train_,
            "training_data_sha256": model.training_sha256_,
            "std_scale": model.std_scale_,
            "decision_threshold": getattr(model, "threshold_", None),
            "domain": {
                "threshold": domain.threshold_,
                "quantile": domain.quantile,
                "featurizer": domain_featurizer_spec(model.featurizer),
            },
            "cv_metrics": model.cv_metrics_,
            "files": sorted(p.name for p in tmp.iterdir()),
            "extra": to_jsonable(extra or {}),
        }
        (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", "utf-8")
        if target_dir.exists():
            shutil.rmtree(target_dir)
        tmp.rename(target_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target_dir


def read_metadata(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The ``metadata.json`` of model ``name``, after checking its format version."""
    path = model_dir(name, root)
    meta_file = path / "metadata.json"
    if not meta_file.is_file():
        known = ", ".join(list_models(root)) or "none"
        raise ModelRegistryError(f"no model {name!r} in {path.parent} (saved models: {known})")
    try:
        meta = json.loads(meta_file.read_text("utf-8"))
    except ValueError as exc:
        raise ModelRegistryError(f"{meta_file}: damaged metadata: {exc}") from None
    _check_format(meta.get("format_version"), name, meta.get("matforge_version"))
    return meta


def load_model(name: str, root: str | os.PathLike | None = None):
    """The :class:`~matforge.models.pipeline.CompositionModel` saved as ``name``.

    Raises :class:`ModelRegistryError` for an unknown name, a newer major format version, a
    damaged file, or a stored type outside :data:`TRUSTED_TYPES`.
    """
    meta = read_metadata(name, root)  # an unknown name fails here, before the heavy imports
    sio = _skops_io()

    from matforge.models.pipeline import CompositionModel

    path = model_dir(name, root)
    est_file = path / "estimator.skops"
    try:
        # One pass over the file: skops refuses anything outside its defaults + TRUSTED_TYPES.
        estimator = sio.load(est_file, trusted=list(TRUSTED_TYPES))
    except Exception:
        # Refused or damaged: the audit pass names what is wrong (a second parse, error path only).
        try:
            untrusted = sio.get_untrusted_types(file=est_file)
        except Exception as exc:
            raise ModelRegistryError(f"{est_file}: unreadable estimator file: {exc}") from None
        refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if refused:
            raise ModelRegistryError(
                f"{est_file} holds types outside matforge's trusted list: {', '.join(refused)}; "
                "refusing to load it"
            ) from None
        try:
            estimator = sio.load(est_file, trusted=list(untrusted))
        except Exception as exc:
            raise ModelRegistryError(f"{est_file}: cannot load estimator: {exc}") from None
    torch_file = path / "torch_state.npz"
    if torch_file.is_file():
        with np.load(torch_file, allow_pickle=False) as npz:
            _load_torch_state(estimator, {k: npz[k] for k in npz.files})

    params = dict(meta["params"])
    params["featurizer"] = list(params["featurizer"])
    model = CompositionModel(estimator=estimator, **params)
    try:
        with np.load(path / "state.npz", allow_pickle=False) as npz:
            state = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ModelRegistryError(f"{path / 'state.npz'}: damaged: {exc}") from None
    model.estimator_ = estimator
    model.medians_ = state["medians"]
    model.oof_ = {
        k[4:]: (v.astype(object) if k == "oof_formula" else v)
        for k, v in state.items()
        if k.startswith("oof_")
    }
    domain = {k[7:]: v for k, v in state.items() if k.startswith("domain_")}
    if domain:  # format >= 1.1; older models learn it when first asked
        from matforge.models.domain import DomainModel

        model.domain_ = DomainModel.from_arrays(domain)
    model.std_scale_ = float(meta["std_scale"])
    if meta.get("decision_threshold") is not None:
        model.threshold_ = float(meta["decision_threshold"])
    model.cv_metrics_ = dict(meta["cv_metrics"])
    model.n_train_ = int(meta["n_train"])
    model.training_sha256_ = meta["training_data_sha256"]
    if meta.get("classes"):
        model.classes_ = np.asarray(meta["classes"])
    from matforge.models.pipeline import build_featurizer

    model.featurizer_ = build_featurizer(model.featurizer)
    model.feature_labels_ = model.featurizer_.feature_labels()
    if len(model.feature_labels_) != meta["n_features"]:
        raise ModelRegistryError(
            f"model {name!r} was trained on {meta['n_features']} features but this matforge "
            f"builds {len(model.feature_labels_)} from its featurizer spec {model.featurizer}"
        )
    # built here, not on first use, so that predicting never writes to the model
    model.domain_featurizer_ = model._new_domain_featurizer()
    model.metadata_ = meta
    return model


def list_models(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the saved models (folders with a ``metadata.json``), sorted."""
    base = registry_root(root)
    if not base.is_dir():
        return []
    return sorted(
        p.name
        for p in base.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "metadata.json").is_file()
    )


# -- helpers --------------------------------------------------------------------------------
#: Sub-packages of scikit-learn's vendored array-API shims that import torch / dask / cupy.
_HEAVY_SHIMS = tuple(
    f"sklearn.externals.array_api_compat.{lib}" for lib in ("torch", "dask", "cupy")
)


def _skops_io():
    """``skops.io``, imported without importing torch and dask on the way.

    Importing ``skops.io`` builds its default trusted types from scikit-learn's
    ``all_estimators()``, whose ``pkgutil.walk_packages`` imports every sub-package it walks --
    including ``sklearn.externals.array_api_compat.torch`` (hence torch, ~1.5 s) and ``.dask``
    -- although ``all_estimators`` then ignores everything under ``externals``. While skops
    imports, those shims are empty placeholders, removed afterwards (so a later real import of
    them works); the trusted-type list is the same (``tests/test_registry.py`` checks it).
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    placeholders = {}
    for name in _HEAVY_SHIMS:
        if name not in sys.modules:
            placeholders[name] = sys.modules[name] = types.ModuleType(name)
            placeholders[name].__path__ = []  # a package with nothing inside: the walk stops
    try:
        import skops.io
    finally:
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return skops.io


def _check_format(version, name: str, written_by) -> None:
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        raise ModelRegistryError(
            f"model {name!r}: unreadable format_version {version!r} in metadata.json"
        ) from None
    ours = int(FORMAT_VERSION.split(".")[0])
    if major != ours:
        newer = "a newer" if major > ours else "an older"
        raise ModelRegistryError(
            f"model {name!r} was saved in {newer} registry format {version} (by matforge "
            f"{written_by}); this matforge {__version__} reads format {ours}.x — "
            f"{'upgrade matforge' if major > ours else 'retrain the model'} to use it"
        )


def _torch_state(estimator) -> dict[str, np.ndarray]:
    """Arrays of every torch module the estimator exposes via ``torch_modules_()``."""
    getter = getattr(estimator, "torch_modules_", None)
    if getter is None:
        return {}
    out = {}
    for prefix, module in getter().items():
        for key, tensor in module.state_dict().items():
            out[f"{prefix}/{key}"] = tensor.detach().cpu().numpy()
    return out


def _load_torch_state(estimator, arrays: dict[str, np.ndarray]) -> None:
    loader = getattr(estimator, "load_torch_state_", None)
    if loader is None:
        raise ModelRegistryError(
            f"torch_state.npz present but {type(estimator).__name__} cannot load torch weights"
        )
    loader(arrays)
