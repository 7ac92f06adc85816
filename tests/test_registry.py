"""Model registry: portable save/load without pickles, version and trust checks."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from matforge.errors import MatforgeError, ModelRegistryError
from matforge.models.registry import (
    FORMAT_VERSION,
    TRUSTED_TYPES,
    list_models,
    load_model,
    model_dir,
    registry_root,
    save_model,
)

PICKLE_MARKERS = (b"\x80\x04\x95", b"\x80\x05\x95", b"cnumpy.core", b"c__builtin__")


@pytest.fixture(scope="module")
def steels():
    from matforge.datasets import load_dataset

    df = load_dataset("matbench_steels")
    return df["formula"].tolist(), df["yield_strength"].to_numpy()


@pytest.fixture(scope="module")
def fitted(steels):
    from matforge.models.presets import make_model

    formulas, y = steels
    model = make_model("small", "regression", y=y, target="yield_strength", unit="MPa")
    return model.fit(formulas[:200], y[:200])


@pytest.fixture(scope="module")
def fitted_clf():
    from matforge.datasets import load_dataset
    from matforge.models.presets import make_model

    df = load_dataset("matbench_expt_is_metal").iloc[:400]
    model = make_model("small", "classification", target="is_metal")
    return model.fit(df["formula"].tolist(), df["is_metal"].to_numpy())


def test_round_trip_predictions_identical(fitted, steels, tmp_path):
    formulas, _ = steels
    path = save_model(fitted, "steels-small", tmp_path)
    assert path == tmp_path / "steels-small"
    loaded = load_model("steels-small", tmp_path)
    m0, s0 = fitted.predict(formulas[200:], return_std=True)
    m1, s1 = loaded.predict(formulas[200:], return_std=True)
    np.testing.assert_array_equal(m0, m1)
    np.testing.assert_array_equal(s0, s1)
    assert loaded.target == "yield_strength" and loaded.unit == "MPa"
    assert loaded.cv_metrics_ == pytest.approx(fitted.cv_metrics_, nan_ok=True)
    np.testing.assert_array_equal(loaded.oof_["mean"], fitted.oof_["mean"])
    assert list(loaded.oof_["formula"]) == list(fitted.oof_["formula"])


def test_classifier_round_trip(fitted_clf, tmp_path):
    from matforge.datasets import load_dataset

    formulas = load_dataset("matbench_expt_is_metal")["formula"].tolist()[400:500]
    save_model(fitted_clf, "metal", tmp_path)
    loaded = load_model("metal", tmp_path)
    np.testing.assert_array_equal(fitted_clf.predict(formulas), loaded.predict(formulas))
    assert list(loaded.predict_label(formulas[:5])) == list(fitted_clf.predict_label(formulas[:5]))
    assert loaded.classes_.tolist() == fitted_clf.classes_.tolist()


def test_metadata_is_complete(fitted, tmp_path):
    save_model(fitted, "m", tmp_path, extra={"source": "matbench_steels"})
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    for key in (
        "format_version",
        "matforge_version",
        "model_class",
        "estimator_class",
        "params",
        "featurizer",
        "training_data_sha256",
        "cv_metrics",
        "created_at",
        "target",
        "unit",
    ):
        assert meta.get(key) not in (None, "", {}), key
    assert meta["format_version"] == FORMAT_VERSION
    assert len(meta["training_data_sha256"]) == 64
    assert meta["featurizer"] == ["magpie", "stoichiometry"]
    assert meta["extra"] == {"source": "matbench_steels"}
    assert np.isfinite(meta["cv_metrics"]["mae"])


def test_no_pickle_in_saved_files(fitted, tmp_path):
    path = save_model(fitted, "m", tmp_path)
    files = sorted(p.name for p in path.iterdir())
    assert files == ["estimator.skops", "metadata.json", "state.npz"]
    with zipfile.ZipFile(path / "estimator.skops") as zf:
        for member in zf.namelist():
            assert member.endswith((".json", ".npy")), member
            data = zf.read(member)
            assert not any(m in data for m in PICKLE_MARKERS), member
            if member.endswith(".npy"):  # plain arrays: loadable with pickles disabled
                import io

                np.load(io.BytesIO(data), allow_pickle=False)
    with np.load(path / "state.npz", allow_pickle=False) as npz:
        assert {"medians", "oof_mean", "oof_std", "oof_y", "oof_formula"} <= set(npz.files)


def test_future_major_version_is_refused(fitted, tmp_path):
    save_model(fitted, "m", tmp_path)
    meta_file = tmp_path / "m" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["format_version"] = "2.0"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelRegistryError, match=r"newer registry format 2\.0.*upgrade matforge"):
        load_model("m", tmp_path)
    assert issubclass(ModelRegistryError, MatforgeError)


def test_newer_minor_version_loads(fitted, tmp_path):
    save_model(fitted, "m", tmp_path)
    meta_file = tmp_path / "m" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["format_version"] = FORMAT_VERSION.split(".")[0] + ".7"
    meta_file.write_text(json.dumps(meta))
    assert load_model("m", tmp_path).task == "regression"


def test_untrusted_type_is_refused(tmp_path, monkeypatch, fitted):
    import matforge.models.registry as registry

    save_model(fitted, "m", tmp_path)
    monkeypatch.setattr(
        registry, "TRUSTED_TYPES", tuple(t for t in TRUSTED_TYPES if not t.startswith("lightgbm"))
    )
    with pytest.raises(ModelRegistryError, match="outside matforge's trusted list.*lightgbm"):
        load_model("m", tmp_path)


def test_overwrite_and_listing(fitted, tmp_path):
    assert list_models(tmp_path) == []
    save_model(fitted, "b", tmp_path)
    save_model(fitted, "a", tmp_path)
    with pytest.raises(ModelRegistryError, match="already exists"):
        save_model(fitted, "a", tmp_path)
    save_model(fitted, "a", tmp_path, overwrite=True)
    assert list_models(tmp_path) == ["a", "b"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_unknown_and_invalid_names(tmp_path, fitted):
    with pytest.raises(ModelRegistryError, match="no model 'nope'"):
        load_model("nope", tmp_path)
    for bad in ("../evil", "a/b", "", ".hidden"):
        with pytest.raises(ModelRegistryError, match="invalid model name"):
            model_dir(bad, tmp_path)


def test_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MATFORGE_HOME", str(tmp_path / "home"))
    assert registry_root() == tmp_path / "home" / "models"
    monkeypatch.delenv("MATFORGE_HOME")
    assert registry_root().parts[-2:] == (".matforge", "models")


# -- applicability domain ---------------------------------------------------------------------
def test_domain_is_saved_and_restored_without_pickles(fitted, steels, tmp_path):
    formulas, _ = steels
    path = save_model(fitted, "m", tmp_path)
    with np.load(path / "state.npz", allow_pickle=False) as npz:
        assert {"domain_components", "domain_train_z", "domain_settings"} <= set(npz.files)
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["domain"]["threshold"] == pytest.approx(fitted.domain_.threshold_)
    assert meta["domain"]["quantile"] == 0.99
    loaded = load_model("m", tmp_path)
    assert loaded.domain_ is not None  # stored, not refitted on load
    probe = [*formulas[200:230], "(NH4)2SO4", "NaCl"]
    a, b = fitted.predict_frame(probe), loaded.predict_frame(probe)
    np.testing.assert_allclose(a["domain_distance"], b["domain_distance"], rtol=1e-12)
    assert a["in_domain"].tolist() == b["in_domain"].tolist()
    assert b["in_domain"].tolist()[-2:] == [False, False]


def test_model_saved_before_the_domain_learns_it_from_its_training_formulas(
    fitted, steels, tmp_path
):
    """A format-1.0 model (no domain arrays) loads, predicts and gets the same domain."""
    formulas, _ = steels
    path = save_model(fitted, "old", tmp_path)
    with np.load(path / "state.npz", allow_pickle=False) as npz:
        state = {k: npz[k] for k in npz.files if not k.startswith("domain_")}
    np.savez(path / "state.npz", **state)
    meta = json.loads((path / "metadata.json").read_text())
    meta["format_version"] = "1.0"
    del meta["domain"]
    (path / "metadata.json").write_text(json.dumps(meta))

    old = load_model("old", tmp_path)
    assert getattr(old, "domain_", None) is None
    probe = [*formulas[200:230], "(NH4)2SO4"]
    frame = old.predict_frame(probe)
    expected = fitted.predict_frame(probe)
    np.testing.assert_allclose(frame["domain_distance"], expected["domain_distance"], rtol=1e-9)
    assert old.applicability_domain().threshold_ == pytest.approx(fitted.domain_.threshold_)
    assert not frame["in_domain"].iloc[-1]
