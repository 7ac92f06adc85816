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
