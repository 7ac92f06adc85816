"""CompositionTransformer: attention network over element tokens, deep-ensemble uncertainty.

Real data: 700 bulk moduli (log10 GPa) of matbench_log_kvrh, a small network and few epochs so
the module runs in seconds on one CPU thread.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from matforge.models.transformer import (  # noqa: E402
    CompositionTransformer,
    CompositionTransformerClassifier,
    ElementTokens,
)


@pytest.fixture(scope="module")
def kvrh(kvrh_sample):
    """(train formulas, train y, test formulas, test y): 500 / 200 rows of log_kvrh."""
    return kvrh_sample(500, 200, seed=0)


@pytest.fixture(scope="module")
def fitted(kvrh, small_attention):
    f_tr, y_tr, _, _ = kvrh
    return CompositionTransformer(random_state=0, **small_attention).fit(f_tr, y_tr)


def test_element_tokens_sort_by_fraction_and_pad():
    tok = ElementTokens(max_elements=3)
    T = tok.featurize_many(["Fe2O3", "NaCl", "H2"])
    assert tok.feature_labels() == [
        "token_Z_0", "token_Z_1", "token_Z_2", "token_x_0", "token_x_1", "token_x_2"
    ]  # fmt: skip
    np.testing.assert_allclose(T[0], [8, 26, 0, 0.6, 0.4, 0])
    np.testing.assert_allclose(T[1, [0, 1, 2]], [11, 17, 0])  # tie: stored (Z) order
    np.testing.assert_allclose(T[2], [1, 0, 0, 1, 0, 0])


def test_element_tokens_keep_the_most_abundant_elements():
    T = ElementTokens(max_elements=2).featurize_many(["Fe0.7Cr0.2Ni0.1"])
    np.testing.assert_allclose(T[0], [26, 24, 0.7 / 0.9, 0.2 / 0.9])


def test_beats_the_mean_predictor_with_useful_uncertainty(fitted, kvrh):
    from scipy.stats import spearmanr

    _, y_tr, f_te, y_te = kvrh
    mean, std = fitted.predict(f_te, return_std=True)
    mae = np.mean(np.abs(mean - y_te))
    mae_mean_predictor = np.mean(np.abs(y_te - y_tr.mean()))
    assert mae < 0.6 * mae_mean_predictor, (mae, mae_mean_predictor)
    assert np.all(std > 0) and np.all(np.isfinite(std))
    err = np.abs(mean - y_te)
    assert spearmanr(err, std)[0] > 0.2
    # calibrated on the out-of-fold residuals: the 95% intervals are neither tiny nor huge
    assert 0.8 <= np.mean(err <= 1.96 * std) <= 1.0
    np.testing.assert_allclose(fitted.predict(f_te), mean)


def test_cross_fitted_members_give_out_of_fold_predictions(fitted, kvrh):
    _, y_tr, _, _ = kvrh
    assert len(fitted.members_) == 3 and len(fitted.best_epochs_) == 3
    assert np.isfinite(fitted.oof_prediction_).all() and (fitted.oof_std_ > 0).all()
    oof_mae = np.mean(np.abs(fitted.oof_prediction_ - y_tr))
    in_sample = np.mean(np.abs(fitted.predict(kvrh[0]) - y_tr))
    assert in_sample < oof_mae < np.mean(np.abs(y_tr - y_tr.mean()))


def test_inputs_formulas_batch_and_tokens_agree(fitted, kvrh):
    from matforge.chem import CompositionBatch

    f_te = kvrh[2][:50]
    by_formula = fitted.predict(f_te)
    by_batch = fitted.predict(CompositionBatch.from_formulas(f_te))
    by_tokens = fitted.predict(ElementTokens(16).featurize_many(f_te))
    np.testing.assert_allclose(by_batch, by_formula, rtol=1e-6)
    np.testing.assert_allclose(by_tokens, by_formula, rtol=1e-6)
    with pytest.raises(ValueError, match="token columns"):
        fitted.predict(ElementTokens(4).featurize_many(f_te))


def test_seed_makes_it_deterministic(kvrh, small_attention):
    f_tr, y_tr, f_te, _ = kvrh
    quick = {**small_attention, "max_epochs": 3, "n_members": 2}
    a = CompositionTransformer(random_state=7, **quick).fit(f_tr[:200], y_tr[:200])
    b = CompositionTransformer(random_state=7, **quick).fit(f_tr[:200], y_tr[:200])
    c = CompositionTransformer(random_state=8, **quick).fit(f_tr[:200], y_tr[:200])
    pa, pb, pc = (m.predict(f_te[:50], return_std=True) for m in (a, b, c))
    np.testing.assert_array_equal(pa[0], pb[0])
    np.testing.assert_array_equal(pa[1], pb[1])
    assert not np.allclose(pa[0], pc[0])


def test_sklearn_params_and_clone():
    from sklearn.base import clone

    m = CompositionTransformer(n_members=2, d_model=16, random_state=3)
    params = m.get_params()
    assert params["n_members"] == 2 and params["d_model"] == 16 and params["random_state"] == 3
    assert clone(m).get_params() == params


def test_registry_round_trip_uses_state_dicts(kvrh, tmp_path, small_attention):
    from matforge.models.pipeline import CompositionModel
    from matforge.models.registry import load_model, save_model

    f_tr, y_tr, f_te, _ = kvrh
    est = CompositionTransformer(
        random_state=0, **{**small_attention, "max_epochs": 4, "n_members": 2}
    )
    model = CompositionModel(est, featurizer=["element_tokens"], target="log10_k_vrh")
    model.fit(f_tr[:300], y_tr[:300])
    # the ensemble's own out-of-fold predictions were used: no extra cross-validation fits
    assert np.isfinite(model.cv_metrics_["mae"])
    path = save_model(model, "kvrh-transformer", tmp_path)
    files = json.loads((path / "metadata.json").read_text())["files"]
    assert files == ["estimator.skops", "state.npz", "torch_state.npz"]
    with np.load(path / "torch_state.npz", allow_pickle=False) as npz:
        keys = list(npz.files)
    assert any(k.startswith("member_1/encoder.") for k in keys)
    loaded = load_model("kvrh-transformer", tmp_path)
    assert type(loaded.estimator_) is CompositionTransformer
    m0, s0 = model.predict(f_te[:40], return_std=True)
    m1, s1 = loaded.predict(f_te[:40], return_std=True)
    np.testing.assert_allclose(m1, m0, rtol=1e-6)
    np.testing.assert_allclose(s1, s0, rtol=1e-6)


def test_skops_file_alone_holds_no_weights(fitted):
    from matforge.errors import MatforgeError

    state = fitted.__getstate__()
    assert "members_" not in state
    bare = CompositionTransformer.__new__(CompositionTransformer)
    bare.__setstate__(state)
    with pytest.raises(MatforgeError, match="no network weights"):
        bare.predict(["NaCl"])


def test_model_name_transformer_in_presets():
    from matforge.errors import MatforgeError
    from matforge.models.presets import MODEL_NAMES, make_model

    assert "transformer" in MODEL_NAMES
    m = make_model("transformer", "regression", y=np.array([1.0, 2.0, 30.0]), n_jobs=2)
    assert isinstance(m.estimator, CompositionTransformer)
    assert m.featurizer == ["element_tokens"] and m.estimator.n_threads == 2
    # classification: the same ensemble with a logit output (issue #21 asks for the attention
    # model on every Matbench task, expt_is_metal included); the GP stays regression-only
    c = make_model("transformer_pretrained", "classification", n_jobs=2)
    assert isinstance(c.estimator, CompositionTransformerClassifier)
    assert c.featurizer == ["element_tokens"] and c.estimator.pretrained == "bundled"
    with pytest.raises(MatforgeError, match="regression-only"):
        make_model("gp", "classification")


@pytest.mark.slow  # the CLI trains the default-size ensemble (4 members, up to 150 epochs)
def test_cli_train_accepts_the_transformer(tmp_path):
    import typer
    from typer.testing import CliRunner

    from matforge.cli.models import register
    from matforge.datasets import load_dataset

    df = load_dataset("matbench_log_kvrh").iloc[:80][["formula", "log10_k_vrh"]]
    csv = tmp_path / "k.csv"
    df.to_csv(csv, index=False)
    app = typer.Typer()
    register(app)
    res = CliRunner().invoke(
        app,
        ["train", "--csv", str(csv), "--model", "transformer", "--name", "k",
         "--home", str(tmp_path)],
        catch_exceptions=False,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "k" / "metadata.json").read_text())
    assert meta["estimator_class"] == "matforge.models.transformer.CompositionTransformer"


def test_bucketed_batches_cover_every_row_once_with_one_element_count_each():
    from matforge.models.transformer import _bucketed_batches

    rng = np.random.RandomState(0)
    counts = rng.randint(1, 6, size=1000)
    rows = np.arange(0, 1000, 2)  # the training rows: every other one
    batches = _bucketed_batches(rows, counts, 32, rng)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), rows)
    mixed = sum(len(np.unique(counts[b])) > 1 for b in batches)
    assert mixed <= 4  # only the chunks straddling two element counts pad
    assert all(len(b) >= 2 for b in batches)
    # a new epoch draws other batches
    again = _bucketed_batches(rows, counts, 32, rng)
    assert any(not np.array_equal(a, b) for a, b in zip(batches, again, strict=False))


def test_feature_matrix_inputs_learn_a_formulation_response(small_attention):
    """inputs='features': every column a token (here the fractions of a 4-ingredient blend)."""
    rng = np.random.RandomState(0)
    X = rng.dirichlet(np.ones(4), size=300)
    y = 3.0 * X[:, 0] - 2.0 * X[:, 1] * X[:, 2] + 0.05 * rng.randn(300)
    quick = {**small_attention, "n_members": 2, "max_epochs": 30, "batch_size": 32}
    m = CompositionTransformer(inputs="features", random_state=0, **quick).fit(X[:200], y[:200])
    assert m.n_features_in_ == 4
    mean, std = m.predict(X[200:], return_std=True)
    assert np.mean(np.abs(mean - y[200:])) < 0.5 * np.mean(np.abs(y[200:] - y[:200].mean()))
    assert np.all(std > 0)
    with pytest.raises(ValueError, match="4 features"):
        m.predict(X[:5, :3])


def test_bad_inputs_raise_clear_errors(fitted):
    from matforge.errors import InvalidFormula, MatforgeError

    T = ElementTokens(16).featurize_many(["NaCl", "Fe2O3"])
    T[1, 1] = 140.0
    with pytest.raises(MatforgeError, match="row 1, column 1: 140 is no atomic number"):
        fitted.predict(T)
    with pytest.raises(InvalidFormula, match="Xq2"):
        fitted.predict(["NaCl", "Xq2"])
    with pytest.raises(TypeError, match="not one string"):
        fitted.predict("NaCl")
    with pytest.raises(ValueError, match="target y is None"):
        CompositionTransformer().fit(["NaCl"] * 20, None)
    with pytest.raises(ValueError, match="n_samples=3"):
        CompositionTransformer().fit(["NaCl", "KCl", "LiF"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="inputs must be one of"):
        CompositionTransformer(inputs="graphs").fit(["NaCl"] * 20, np.arange(20.0))
    with pytest.raises(ValueError, match="targets must be finite"):
        CompositionTransformer().fit(["NaCl"] * 20, [np.nan] + [1.0] * 19)


def test_prediction_does_not_depend_on_the_other_rows_of_the_batch(fitted, kvrh):
    f_te = kvrh[2]
    whole = fitted.predict(f_te, return_std=True)
    for part in (slice(0, 1), slice(3, 40), slice(150, 200)):
        m, s = fitted.predict(f_te[part], return_std=True)
        np.testing.assert_allclose(m, whole[0][part], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(s, whole[1][part], rtol=1e-9, atol=1e-12)


# -- the classifier -----------------------------------------------------------------------
def test_classifier_learns_metals_from_compositions(tmp_path, small_attention):
    """Real data: 900 compositions of matbench_expt_is_metal, 400 held out."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    from matforge.datasets import load_dataset
    from matforge.models.pipeline import CompositionModel
    from matforge.models.registry import load_model, save_model

    df = load_dataset("matbench_expt_is_metal")
    rows = np.random.RandomState(0).permutation(len(df))[:1300]
    f = df["formula"].astype(str).to_numpy()[rows].tolist()
    y = np.where(df["is_metal"].to_numpy()[rows], "metal", "non-metal")
    f_tr, y_tr, f_te, y_te = f[:900], y[:900], f[900:], y[900:]

    est = CompositionTransformerClassifier(random_state=0, **small_attention)
    model = CompositionModel(est, featurizer=["element_tokens"], task="classification")
    steps = []
    model.fit(f_tr, y_tr, progress=lambda stage, done, total: steps.append((stage, done, total)))
    fitted = model.estimator_
    assert model.classes_.tolist() == ["metal", "non-metal"] and fitted.classes_.tolist() == [0, 1]
    # every training row scored by the member that held it out: the pipeline used those
    # probabilities (no extra cross-validation fits) to set its decision threshold
    assert fitted.oof_proba_.shape == (900,) and np.all((0 < fitted.oof_proba_) & (fitted.oof_proba_ < 1))
    assert not any(stage == "cross-validation" for stage, _, _ in steps)
    assert 0.0 < model.threshold_ < 1.0
    assert model.cv_metrics_["roc_auc"] > 0.8

    proba = model.predict_proba(f_te)
    assert proba.shape == (400, 2) and np.allclose(proba.sum(axis=1), 1.0)
    truth = (y_te == "non-metal").astype(int)
    assert roc_auc_score(truth, proba[:, 1]) > 0.85
    labels = model.predict_label(f_te)
    assert set(labels) <= {"metal", "non-metal"}
    assert balanced_accuracy_score(y_te, labels) > 0.75

    path = save_model(model, "metal-attention", tmp_path)
    loaded = load_model("metal-attention", tmp_path)
    assert type(loaded.estimator_) is CompositionTransformerClassifier
    np.testing.assert_allclose(loaded.predict_proba(f_te[:50]), proba[:50], rtol=1e-6)
    assert (path / "torch_state.npz").exists()


def test_classifier_is_binary_with_clear_errors(small_attention):
    est = CompositionTransformerClassifier(random_state=0, **small_attention)
    formulas = ["NaCl", "Fe", "Cu", "SiO2", "MgO", "Al", "TiO2", "Ni", "ZnO", "Au", "KCl", "Ag"]
    with pytest.raises(ValueError, match="Only binary classification"):
        est.fit(formulas, [0, 1, 2] * 4)
    with pytest.raises(ValueError, match="need at least"):
        est.fit(formulas[:5], [0, 1, 0, 1, 0])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        est.predict_proba(["NaCl"])
