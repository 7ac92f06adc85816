"""BlendedRegressorUQ, and ``auto`` regression blending the trees with the attention model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from matforge.models.stacking import BlendedRegressorUQ, StackedRegressorUQ


def _trees(seed=0, n=30):
    return StackedRegressorUQ(
        [("et", ExtraTreesRegressor(n_estimators=n, min_samples_leaf=2, random_state=seed))],
        cv=3,
        noise_trees=20,
        random_state=seed,
    )


def _blend_of_two():
    return BlendedRegressorUQ(
        [("a", _trees(0), slice(0, None)), ("b", _trees(1, n=10), slice(0, None))]
    )


@parametrize_with_checks([_blend_of_two()])
def test_sklearn_contract(estimator, check):
    check(estimator)


def _data(n=400, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n, 6))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.05 * rng.normal(size=n)
    return X, y


def test_a_base_that_sees_only_noise_gets_almost_no_weight():
    X, y = _data()
    blend = BlendedRegressorUQ(
        [("signal", _trees(0), slice(0, 2)), ("noise", _trees(1), slice(2, None))]
    ).fit(X, y)
    assert blend.weights_.sum() == pytest.approx(1.0)
    assert blend.weights_[0] > 0.9
    oof_rmse = np.sqrt(np.mean((blend.oof_base_ - y[:, None]) ** 2, axis=0))
    blend_rmse = np.sqrt(np.mean((blend.oof_prediction_ - y) ** 2))
    assert blend_rmse <= oof_rmse.min() * 1.01
    # held-out rows: the blend is as good as the signal base alone, and calibrated
    Xt, yt = _data(300, seed=1)
    mean, std = blend.predict(Xt, return_std=True)
    alone = blend.estimators_["signal"].predict(Xt[:, :2])
    assert np.mean(np.abs(mean - yt)) <= 1.1 * np.mean(np.abs(alone - yt))
    assert 0.85 <= np.mean(np.abs(mean - yt) <= 1.96 * std) <= 1.0
    np.testing.assert_allclose(blend.predict(Xt), mean)


def test_two_useful_bases_share_the_weight_and_beat_each_alone():
    X, y = _data(600)
    # each base sees one of the two informative columns (plus a noise column)
    blend = BlendedRegressorUQ(
        [("first", _trees(0), [0, 1, 2]), ("second", _trees(1), [0, 1, 3])]
    ).fit(X, y)
    assert (blend.weights_ > 0.2).all()
    assert 0.0 < np.mean(np.abs(blend.oof_std_)) < np.inf


def test_bad_estimators_are_refused_with_clear_errors():
    X, y = _data(60)
    with pytest.raises(ValueError, match=r"\(name, regressor, columns\)"):
        BlendedRegressorUQ([("a", _trees())]).fit(X, y)
    with pytest.raises(ValueError, match="unique"):
        BlendedRegressorUQ([("a", _trees(), slice(None)), ("a", _trees(), slice(None))]).fit(X, y)
    with pytest.raises(ValueError, match="without '.'"):
        BlendedRegressorUQ([("a.b", _trees(), slice(None))]).fit(X, y)
    with pytest.raises(ValueError, match="no out-of-fold predictions"):
        BlendedRegressorUQ([("plain", ExtraTreesRegressor(5), slice(None))]).fit(X, y)
    with pytest.raises(ValueError, match="empty"):
        BlendedRegressorUQ([]).fit(X, y)


# -- with the attention model ---------------------------------------------------------------
@pytest.fixture(scope="module")
def kvrh(kvrh_sample):
    return kvrh_sample(1100, 200, seed=1)


def test_auto_blends_the_attention_model_in_the_middle_range(kvrh):
    pytest.importorskip("torch")
    from matforge.models.presets import ATTENTION_MAX_ROWS, SMALL_DATA, make_model
    from matforge.models.transformer import CompositionTransformer

    _, y, _, _ = kvrh
    m = make_model("auto", "regression", y=y, n_jobs=2)
    assert isinstance(m.estimator, BlendedRegressorUQ)
    assert m.featurizer[0] == "element_tokens" and "mat2vec" in m.featurizer
    (n_a, attention, cols_a), (n_t, trees, cols_t) = m.estimator.estimators
    assert (n_a, n_t) == ("attention", "trees")
    assert isinstance(attention, CompositionTransformer) and attention.pretrained == "bundled"
    assert attention.n_threads == 2
    assert (cols_a, cols_t) == (slice(0, 32), slice(32, None))
    assert isinstance(trees, StackedRegressorUQ)
    # below SMALL_DATA, from ATTENTION_MAX_ROWS on, with a featurizer of one's own, and as
    # auto_trees: the trees alone, on the same features as before
    for name, rows, featurizer in (
        ("auto", SMALL_DATA - 1, None),
        ("auto", ATTENTION_MAX_ROWS, None),
        ("auto", 2000, ["magpie"]),
        ("auto_trees", 2000, None),
    ):
        other = make_model(name, "regression", y=np.resize(y, rows), featurizer=featurizer)
        assert not isinstance(other.estimator, BlendedRegressorUQ), (name, rows)
        assert "element_tokens" not in other.featurizer
    assert make_model("auto_trees", "regression", y=y).featurizer == list(
        make_model("auto", "regression", y=y).featurizer[1:]
    )


def test_blend_with_the_attention_model_trains_saves_and_loads(kvrh, tmp_path, small_attention):
    pytest.importorskip("torch")
    from matforge.models.pipeline import CompositionModel
    from matforge.models.registry import load_model, save_model
    from matforge.models.transformer import CompositionTransformer

    f_tr, y_tr, f_te, y_te = kvrh
    tiny = {**small_attention, "n_members": 2, "d_model": 16, "d_ff": 32, "max_epochs": 6}
    est = BlendedRegressorUQ(
        [
            ("attention", CompositionTransformer(random_state=0, **tiny), slice(0, 32)),
            ("trees", _trees(0, n=60), slice(32, None)),
        ]
    )
    model = CompositionModel(
        est, featurizer=["element_tokens", "magpie", "stoichiometry"], target="log10_k_vrh"
    )
    steps = []
    model.fit(f_tr, y_tr, progress=lambda stage, done, total: steps.append((stage, done, total)))
    assert model.estimator_.weights_.sum() == pytest.approx(1.0)
    # progress: the network's 2 members, then the stack's 3 folds and its noise model
    blend_steps = [(d, t) for stage, d, t in steps if stage == "fitting BlendedRegressorUQ"]
    assert blend_steps == [(1, 3), (2, 3), (3, 6), (4, 6), (5, 6), (6, 6)]
    from matforge.models.matbench import _model_choices

    weights = _model_choices(model)["blend_weights"]  # as `matforge benchmark matbench` records
    assert set(weights) == {"attention", "trees"}
    assert model.cv_metrics_["mae"] < 0.2  # the OOF blend, no extra cross-validation
    mean, std = model.predict(f_te, return_std=True)
    assert np.mean(np.abs(mean - y_te)) < 0.8 * np.mean(np.abs(y_te - y_tr.mean()))
    assert 0.85 <= np.mean(np.abs(mean - y_te) <= 1.96 * std) <= 1.0
    # the domain is measured in the descriptors, not in the element tokens
    assert model.domain_featurizer_.feature_labels() == model.featurizer_.feature_labels()[32:]
    # ... taken from the model's own columns, equal to featurizing them anew
    F, _ = model.featurizer_.featurize_with_errors(f_te[:20])
    fresh, _ = model.domain_featurizer_.featurize_with_errors(f_te[:20])
    np.testing.assert_array_equal(model._domain_matrix(F, f_te[:20]), fresh)

    path = save_model(model, "kvrh-blend", tmp_path)
    assert json.loads((path / "metadata.json").read_text())["files"] == [
        "estimator.skops",
        "state.npz",
        "torch_state.npz",
    ]
    with np.load(path / "torch_state.npz", allow_pickle=False) as npz:
        assert any(k.startswith("attention.member_1/") for k in npz.files)
    loaded = load_model("kvrh-blend", tmp_path)
    m1, s1 = loaded.predict(f_te[:50], return_std=True)
    np.testing.assert_allclose(m1, mean[:50], rtol=1e-6)
    np.testing.assert_allclose(s1, std[:50], rtol=1e-6)


def test_blend_forwards_the_leakage_guard():
    pytest.importorskip("torch")
    from matforge.datasets import load_dataset
    from matforge.models.presets import make_model
    from matforge.models.pretrain import (
        LeakageError,
        composition_key_array,
        load_pretrained,
        pretraining_table,
        resolve,
    )

    blend = make_model("auto", "regression", y=np.linspace(1, 2, 1500)).estimator
    assert isinstance(blend, BlendedRegressorUQ)
    seen = load_pretrained(resolve("bundled"))["keys"]
    table = pretraining_table(max_rows=2000)
    leaked = table["formula"][np.isin(table["key"].to_numpy(dtype=np.uint64), seen)].iloc[0]
    assert np.isin(composition_key_array([leaked]), seen).all()
    with pytest.raises(LeakageError):
        blend.check_leakage(["NaCl", leaked])
    blend.check_leakage(load_dataset("matbench_log_kvrh")["formula"].astype(str).tolist())
