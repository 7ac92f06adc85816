"""scikit-learn's estimator checks on every matforge.models estimator."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

pytest.importorskip("lightgbm")

from matforge.models import (  # noqa: E402
    AutoRegressor,
    BoostedClassifier,
    BoostedEnsembleUQ,
    GaussianProcessUQ,
    RandomForestClassifierUQ,
    RandomForestUQ,
)

# Small ensembles: the checks fit each estimator dozens of times on toy data.
ESTIMATORS = [
    RandomForestUQ(n_estimators=20, random_state=0),
    BoostedEnsembleUQ(n_members=3, n_estimators=30, random_state=0),
    GaussianProcessUQ(n_restarts_optimizer=0, random_state=0),
    RandomForestClassifierUQ(n_estimators=20, cv=3, random_state=0),
    BoostedClassifier(n_estimators=30, random_state=0),
    AutoRegressor(
        candidates=[
            RandomForestUQ(n_estimators=10, random_state=0),
            BoostedEnsembleUQ(n_members=2, n_estimators=20, learning_rate=0.3, random_state=0),
        ],
        cv=2,
        random_state=0,
    ),
]


@pytest.fixture(scope="module", autouse=True)
def _single_threaded_blas():
    """One BLAS thread: the GP's small Cholesky factorisations crawl when two OpenBLAS threads
    compete for busy cores; they gain nothing from threads."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_contract(estimator, check):
    check(estimator)


# -- the attention model ------------------------------------------------------------------
# On a plain numeric matrix (``inputs="features"``: every column a token), since the checks
# generate feature matrices, not compositions; small and few epochs, yet enough to reach the
# R² > 0.5 that check_regressors_train asks for.
def _transformer():
    from matforge.models.transformer import CompositionTransformer

    return CompositionTransformer(
        inputs="features",
        n_members=2,
        d_model=16,
        n_heads=2,
        n_layers=1,
        d_ff=32,
        dropout=0.0,
        learning_rate=1e-2,
        batch_size=16,
        max_epochs=10,
        patience=5,
        n_threads=1,
        random_state=0,
    )


def _transformer_expected_failures(estimator) -> dict[str, str]:
    return {
        "check_estimators_pickle": "by design the network weights never enter a pickle or skops "
        "file: the model registry saves them as state_dict arrays (torch_state.npz); "
        "test_models_transformer.py checks that round trip",
    }


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("torch") is None, reason="needs torch (deep extra)"
)
@parametrize_with_checks([_transformer()], expected_failed_checks=_transformer_expected_failures)
def test_transformer_sklearn_contract(estimator, check):
    check(estimator)


def _transformer_classifier():
    from matforge.models.transformer import CompositionTransformerClassifier

    return CompositionTransformerClassifier(**_transformer().get_params())


def _classifier_expected_failures(estimator) -> dict[str, str]:
    return _transformer_expected_failures(estimator)


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("torch") is None, reason="needs torch (deep extra)"
)
@parametrize_with_checks(
    [_transformer_classifier()], expected_failed_checks=_classifier_expected_failures
)
def test_transformer_classifier_sklearn_contract(estimator, check):
    check(estimator)
