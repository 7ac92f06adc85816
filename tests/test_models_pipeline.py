"""CompositionModel (formula → features → estimator), stacking and hurdle estimators."""

from __future__ import annotations

import numpy as np
import pytest

from matforge.errors import InvalidFormula, MatforgeError


def _small_lgbm(**kw):
    from matforge.models.presets import lgbm_regressor

    return lgbm_regressor(
        0, n_estimators=60, learning_rate=0.1, colsample_bytree=0.8, min_child_samples=5, **kw
    )


def test_featurizer_spec():
    from matforge.models.pipeline import build_featurizer

    fs = build_featurizer(["magpie", "stoichiometry", "mat2vec:mean+range"])
    assert len(fs.feature_labels()) == 132 + 6 + 2 * 200
    with pytest.raises(MatforgeError, match="unknown featurizer 'magpy'"):
        build_featurizer(["magpy"])
    with pytest.raises(MatforgeError, match="unknown statistic"):
        build_featurizer(["jarvis:median"])
    with pytest.raises(MatforgeError, match="non-empty list"):
        build_featurizer("magpie")


def test_composition_groups_match_scaled_formulas():
    from matforge.chem import CompositionBatch
    from matforge.models.pipeline import composition_groups

    g = composition_groups(
        CompositionBatch.from_formulas(
            ["Fe2O3", "Fe4O6", "FeO", "O3Fe2", "Fe2O3.0000001", "NaCl"]
        ).fractions
    )
    assert g[0] == g[1] == g[3] == g[4]
    assert len({g[0], g[2], g[5]}) == 3


def test_duplicates_are_averaged():
    from matforge.models.pipeline import CompositionModel

    formulas = [
        "Fe2O3",
        "Fe4O6",
        "NaCl",
        "KCl",
        "LiF",
        "MgO",
        "CaO",
        "SrO",
        "BaO",
        "ZnO",
        "CuO",
        "NiO",
    ]
    y = np.array([1.0, 3.0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])

    class Mean:  # records what it is fitted on
        def get_params(self, deep=True):
            return {}

        def set_params(self, **p):
            return self

        def fit(self, X, y):
            self.y_ = y
            self.oof_prediction_ = np.full(len(y), y.mean())
            self.oof_std_ = np.ones(len(y))
            return self

        def predict(self, X, return_std=False):
            m = np.full(len(X), self.y_.mean())
            return (m, np.ones(len(X))) if return_std else m

    model = CompositionModel(Mean(), featurizer=["stoichiometry"]).fit(formulas, y)
    assert model.n_train_ == 11
    assert model.estimator_.y_[0] == 2.0  # Fe2O3 and Fe4O6 merged, targets averaged
    assert list(model.oof_["formula"][:2]) == ["Fe2O3", "NaCl"]


def test_bad_formulas_fit_refuses_predict_reports():
    from matforge.models.pipeline import CompositionModel
    from matforge.models.stacking import StackedRegressorUQ

    with pytest.raises(InvalidFormula, match="rows 1"):
        CompositionModel(
            StackedRegressorUQ([("l", _small_lgbm())], cv=2), featurizer=["magpie"]
        ).fit(["NaCl", "Qq2"], [1.0, 2.0])


@pytest.fixture(scope="module")
def gap_data():
    from matforge.datasets import load_dataset

    df = load_dataset("matbench_expt_gap").sample(900, random_state=0)
    return df["formula"].tolist(), df["gap_expt"].to_numpy()


def test_hurdle_predicts_exact_zeros(gap_data):
    from matforge.models.hurdle import HurdleRegressorUQ
    from matforge.models.pipeline import CompositionModel
    from matforge.models.presets import lgbm_classifier

    formulas, y = gap_data
    est = HurdleRegressorUQ(
        lgbm_classifier(0, n_estimators=60, learning_rate=0.1),
        [("lgbm", _small_lgbm())],
        cv=3,
        noise_trees=30,
        random_state=0,
    )
    model = CompositionModel(
        est, featurizer=["magpie", "stoichiometry"], target_transform="log1p", random_state=0
    )
    model.fit(formulas[:700], y[:700])
    mean, std = model.predict(formulas[700:], return_std=True)
    assert 0.2 <= model.estimator_.threshold_ <= 0.8
    assert np.mean(mean == 0) > 0.25  # metals predicted as exactly 0 eV
    assert np.all(mean >= 0) and np.all(std > 0)
    mae = np.mean(np.abs(mean - y[700:]))
    assert mae < 0.8 * np.mean(np.abs(y[700:] - np.median(y[:700])))
    assert 0.85 <= model.cv_metrics_["coverage_95"] <= 1.0


def test_stacked_regressor_oof_and_weights():
    from sklearn.ensemble import ExtraTreesRegressor

    from matforge.models.stacking import StackedRegressorUQ

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = X[:, 0] + 0.5 * X[:, 1] ** 2 + rng.normal(scale=0.1 + 0.3 * (X[:, 2] > 0), size=400)
    est = StackedRegressorUQ(
        [("lgbm", _small_lgbm()), ("et", ExtraTreesRegressor(50, random_state=0))],
        cv=4,
        noise_trees=50,
        random_state=0,
    ).fit(X[:300], y[:300])
    assert est.weights_.sum() == pytest.approx(1.0) and np.all(est.weights_ >= 0)
    assert np.isfinite(est.oof_prediction_).all() and np.all(est.oof_std_ > 0)
    mean, std = est.predict(X[300:], return_std=True)
    assert np.mean(np.abs(mean - y[300:])) < 0.5 * np.mean(np.abs(y[300:] - y.mean()))
    # the noisier half (x2 > 0) gets larger predicted stds
    assert std[X[300:, 2] > 0].mean() > std[X[300:, 2] <= 0].mean()


def test_stacked_classifier_probabilities():
    from matforge.models.presets import lgbm_classifier
    from matforge.models.stacking import StackedClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=400) > 0, "metal", "insulator")
    clf = StackedClassifier(
        [("lgbm", lgbm_classifier(0, n_estimators=50))], cv=3, random_state=0
    ).fit(X[:300], y[:300])
    p = clf.predict_proba(X[300:])
    assert p.shape == (100, 2) and np.allclose(p.sum(axis=1), 1)
    assert np.mean(clf.predict(X[300:]) == y[300:]) > 0.8
    assert set(clf.classes_) == {"metal", "insulator"}


def test_classification_metrics_follow_matbench():
    from sklearn.metrics import balanced_accuracy_score

    from matforge.models.pipeline import best_threshold, classification_metrics

    rng = np.random.default_rng(3)
    y = rng.random(500) < 0.7
    p = np.clip(0.7 + 0.25 * np.where(y, 1, -1) + rng.normal(scale=0.2, size=500), 0, 1)
    t = best_threshold(y, p)
    m = classification_metrics(y, p, t)
    # Matbench scores boolean predictions: ROC-AUC of labels == balanced accuracy
    assert m["roc_auc"] == pytest.approx(balanced_accuracy_score(y, p > t))
    assert m["roc_auc_proba"] > m["roc_auc"]
    # the chosen threshold is the best one for balanced accuracy
    for other in (0.3, 0.5, 0.7, 0.9):
        assert balanced_accuracy_score(y, p > other) <= m["balanced_accuracy"] + 1e-12


def test_hurdle_std_is_not_overconfident_on_predicted_zeros(gap_data):
    from matforge.models.calibration import calibration_report
    from matforge.models.hurdle import HurdleRegressorUQ
    from matforge.models.pipeline import CompositionModel
    from matforge.models.presets import lgbm_classifier

    formulas, y = gap_data
    est = HurdleRegressorUQ(
        lgbm_classifier(0, n_estimators=60, learning_rate=0.1),
        [("lgbm", _small_lgbm())],
        cv=3,
        noise_trees=30,
        random_state=1,
    )
    model = CompositionModel(est, featurizer=["magpie"], target_transform="log1p").fit(
        formulas[:700], y[:700]
    )
    mean, std = model.predict(formulas[700:], return_std=True)
    zero = mean == 0
    assert zero.any() and np.all(std[zero] > 1e-3)  # a metal call keeps its (1 - p) risk
    assert calibration_report(y[700:], mean, std)["nll"] < 3.0


def test_auto_regression_spec_follows_the_training_size():
    """Few rows: compact features and extra-trees; many: larger trees without mat2vec."""
    from matforge.models.presets import (
        AUTO_FEATURIZER,
        COMPACT_FEATURIZER,
        LARGE_DATA,
        LARGE_FEATURIZER,
        LARGE_LGBM,
        SMALL_DATA,
        make_model,
    )

    rng = np.random.default_rng(0)

    def spec(n, name="auto"):
        m = make_model(name, "regression", y=rng.normal(size=n))
        est = m.estimator
        if type(est).__name__ == "BlendedRegressorUQ":  # the trees beside the attention model
            trees = {entry[0]: entry[1] for entry in est.estimators}["trees"]
            return list(m.featurizer)[1:], dict(trees.estimators)
        return list(m.featurizer), dict(est.estimators)

    feats, bases = spec(SMALL_DATA - 1)
    assert feats == list(COMPACT_FEATURIZER)
    assert set(bases) == {"lgbm", "extra_trees", "fraction_trees"}
    for name in ("auto", "auto_trees"):
        feats, bases = spec(SMALL_DATA, name)
        assert feats == list(AUTO_FEATURIZER)
        assert bases["lgbm"].get_params()["num_leaves"] == 31
    feats, bases = spec(LARGE_DATA)
    assert feats == list(LARGE_FEATURIZER) and "mat2vec" not in feats
    params = bases["lgbm"].get_params()
    assert {k: params[k] for k in LARGE_LGBM} == LARGE_LGBM
    assert params["objective"] == "huber"


def test_small_data_fraction_trees_see_the_element_fractions_alone():
    from matforge.features.fraction import ElementFraction
    from matforge.models.pipeline import build_featurizer
    from matforge.models.presets import SMALL_DATA, make_model

    formulas = ["Fe0.7Cr0.2Ni0.1", "Fe0.8C0.01Mn0.19", "Fe0.6Co0.3Mo0.1", "NaCl"]
    m = make_model("auto", "regression", y=np.arange(SMALL_DATA - 1, dtype=float))
    F = build_featurizer(m.featurizer).transform(formulas)
    select = dict(m.estimator.estimators)["fraction_trees"].named_steps["fractions"]
    np.testing.assert_array_equal(select.fit_transform(F), ElementFraction().transform(formulas))
    # with the user's own features the columns are unknown: no fraction base
    mine = make_model("auto", "regression", y=np.arange(10.0) - 5, featurizer=["magpie"])
    assert "fraction_trees" not in dict(mine.estimator.estimators)


def test_auto_hurdle_uses_the_large_settings_on_large_data():
    from matforge.models.presets import LARGE_DATA, LARGE_FEATURIZER, LARGE_LGBM, make_model

    y = np.where(np.arange(LARGE_DATA) % 2 == 0, 0.0, 1.5)
    m = make_model("auto", "regression", y=y)
    assert list(m.featurizer) == list(LARGE_FEATURIZER)
    assert m.estimator.classifier.get_params()["num_leaves"] == LARGE_LGBM["num_leaves"]
    params = dict(m.estimator.regressors)["lgbm"].get_params()
    assert params["n_estimators"] == LARGE_LGBM["n_estimators"]
    small = make_model("auto", "regression", y=y[: LARGE_DATA - 1])
    assert "mat2vec" in small.featurizer
    assert small.estimator.classifier.get_params()["num_leaves"] == 31


# -- applicability domain, progress, metric units -------------------------------------------
@pytest.fixture(scope="module")
def steels_small():
    """The "small" preset fitted on 200 rows of matbench_steels (seconds), and the data."""
    from matforge.datasets import load_dataset
    from matforge.models.presets import make_model

    df = load_dataset("matbench_steels")
    formulas, y = df["formula"].tolist(), df["yield_strength"].to_numpy()
    model = make_model("small", "regression", y=y[:200], target="yield_strength", unit="MPa")
    stages = []
    model.fit(formulas[:200], y[:200], progress=lambda *a: stages.append(a))
    return model, formulas, stages


def test_predict_frame_flags_formulas_outside_the_training_domain(steels_small):
    """A steels model still predicts ammonium sulphate, but says it is out of its domain."""
    model, formulas, _ = steels_small
    probe = ["(NH4)2SO4", formulas[250], "Xx2", formulas[3]]
    frame = model.predict_frame(probe)
    assert list(frame.columns) == ["mean", "std", "domain_distance", "in_domain", "error"]
    mean, std = model.predict(probe, return_std=True)
    np.testing.assert_array_equal(frame["mean"], mean)  # the same predictions as predict()
    np.testing.assert_array_equal(frame["std"], std)
    assert frame["in_domain"].tolist()[:2] == [False, True]  # held-out steel: in domain
    assert frame["in_domain"].iloc[3]  # a training row
    assert frame["domain_distance"].iloc[0] > 10 * model.domain_.threshold_
    assert frame["domain_distance"].iloc[3] < 2
    assert frame["in_domain"].isna().tolist() == [False, False, True, False]  # bad formula: NA
    assert np.isnan(frame["domain_distance"].iloc[2]) and "Xx" in frame["error"].iloc[2]
    assert frame["error"].iloc[[0, 1, 3]].tolist() == ["", "", ""]


def test_domain_threshold_is_the_99th_percentile_of_training_distances(steels_small):
    model, formulas, _ = steels_small
    d = model.domain_
    assert d.threshold_ == pytest.approx(np.quantile(d.train_distance_, 0.99))
    assert np.mean(d.train_distance_ <= d.threshold_) >= 0.99
    assert np.median(d.train_distance_) == pytest.approx(1.0)


def test_token_models_measure_their_domain_in_magpie_features():
    """Atomic numbers as features put (NH4)2SO4 among steels: the domain uses Magpie."""
    from matforge.models.pipeline import build_featurizer, domain_featurizer_spec

    assert domain_featurizer_spec(["magpie", "mat2vec"]) == ["magpie", "mat2vec"]
    assert domain_featurizer_spec(["element_tokens:8"]) == ["magpie", "stoichiometry"]
    from matforge.models.pipeline import CompositionModel

    model = CompositionModel(None, featurizer=["element_tokens"])
    model.featurizer_ = build_featurizer(model.featurizer)
    assert model._domain_featurizer().feature_labels() == (
        build_featurizer(["magpie", "stoichiometry"]).feature_labels()
    )


def test_fit_reports_its_stages_to_a_progress_callback(steels_small):
    _, _, stages = steels_small
    names = [s for s, _, _ in stages]
    assert names[0] == "featurizing" and names[-1] == "applicability domain"
    folds = [(d, t) for s, d, t in stages if s == "fitting StackedRegressorUQ"]
    assert folds == [(1, 4), (2, 4), (3, 4), (4, 4)]  # 3 cross-fit folds + the noise model
    assert "calibrating" in names
    assert all(0 <= d <= t for _, d, t in stages)


def test_fit_reports_the_fallback_cross_validation_folds():
    from sklearn.linear_model import BayesianRidge

    from matforge.models.pipeline import CompositionModel

    formulas = ["Fe2O3", "NiO", "ZnO", "TiO2", "MgO", "Al2O3", "Cu2O", "GaAs", "CoO", "MnO"]
    stages = []
    CompositionModel(BayesianRidge(), featurizer=["stoichiometry"], cv=5).fit(
        formulas, np.arange(10.0), progress=lambda *a: stages.append(a)
    )
    assert [(d, t) for s, d, t in stages if s == "cross-validation"] == [(k, 5) for k in range(6)]
    assert ("fitting BayesianRidge", 1, 1) in stages


def test_metric_units():
    from matforge.models.pipeline import metric_unit

    assert metric_unit("mae", "MPa") == "MPa" and metric_unit("rmse", "eV") == "eV"
    assert metric_unit("mae", None) == "target units"
    assert metric_unit("r2", "MPa") == "" and metric_unit("roc_auc", None) == ""
    assert metric_unit("coverage_95", "MPa") == "fraction"
    assert metric_unit("log_loss", None) == "nats"
    assert metric_unit("something_new", "MPa") is None


def test_domain_sees_what_the_principal_components_leave_out():
    """Ten oxides (a lab's first model): helium projects onto the middle of their principal
    components; with the length of the rest it is far, and CoO stays close."""
    from matforge.models.domain import DomainModel
    from matforge.models.pipeline import build_featurizer

    fz = build_featurizer(["magpie"])
    oxides = ["Fe2O3", "NiO", "ZnO", "TiO2", "MgO", "Al2O3", "Cu2O", "GaAs", "Fe3O4", "FeO"]
    X = fz.featurize_many(oxides)
    plain = DomainModel(embedding=None).fit(X)
    full = DomainModel(embedding=None, residual=True).fit(X)
    he, coo = full.distance(fz.featurize_many(["He", "CoO"]))
    assert plain.in_domain(plain.distance(fz.featurize_many(["He"])))[0]  # the blind spot
    assert he > 2 * full.threshold_ and coo < full.threshold_


def test_domain_ignores_round_off_spread_of_a_constant_feature():
    from matforge.models.domain import DomainModel

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=50), 0.7 + rng.normal(scale=1e-16, size=50)])
    d = DomainModel(embedding=None, residual=True).fit(X)
    far = d.distance(np.array([[0.0, 0.8]]))[0]  # a real 0.1 change of the "constant"
    assert np.isfinite(far) and far < 1e3
