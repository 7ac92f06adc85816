"""Shared fixtures.

``store_url`` / ``store``: a fresh, empty store, once on SQLite and once on PostgreSQL. The
PostgreSQL run needs ``MATFORGE_TEST_PG_URL`` (``export MATFORGE_TEST_PG_URL=$(bash
scripts/ci_postgres.sh)``) and is skipped without it; each test gets its own schema there.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import numpy as np
import pytest

PG_URL_VAR = "MATFORGE_TEST_PG_URL"

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One BLAS / OpenMP thread per pytest-xdist worker: two workers of two threads each on two
    # cores made the spinning BLAS threads wait for each other (a Gaussian-process fit took
    # 42 s beside a busy core with two threads, 27 s with one). Child processes inherit it.
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # the libraries loaded already (numpy's BLAS)


@contextlib.contextmanager
def _pg_schema_url():
    """URL of a fresh schema on the PostgreSQL test server, dropped afterwards (skips the test
    when ``MATFORGE_TEST_PG_URL`` is not set)."""
    base = os.environ.get(PG_URL_VAR)
    if not base:
        pytest.skip(f"{PG_URL_VAR} is not set; start a server with scripts/ci_postgres.sh")
    import sqlalchemy as sa

    from matforge.store.database import resolve_url

    url = sa.make_url(resolve_url(base))
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_schema_url():
    """``with pg_schema_url() as url:`` a fresh schema on the PostgreSQL test server, for
    fixtures of any scope."""
    return _pg_schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path, pg_schema_url):
    """URL of an empty database: a SQLite file, or a fresh schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with pg_schema_url() as url:
        yield url


@pytest.fixture
def store(store_url):
    """An open, empty :class:`matforge.store.Store` on each engine."""
    from matforge.store import Store

    with Store(store_url) as s:
        yield s


#: layer sizes of the tiny test classifiers: seconds per epoch on one CPU thread
TINY_XRD_ARCH = {"in_channels": 2, "channels": [8, 8, 16, 16, 16], "kernels": [8, 5, 3, 3, 3],
                 "strides": [4, 2, 2, 2, 2], "hidden": 32, "dropout": 0.0}  # fmt: skip


#: the attention model small enough for a test on one busy core, big enough to learn bulk moduli
SMALL_ATTENTION = dict(n_members=3, d_model=32, n_heads=2, n_layers=1, d_ff=64, batch_size=64,
                       learning_rate=3e-3, max_epochs=25, patience=8, n_threads=1)  # fmt: skip


@pytest.fixture(scope="session")
def small_attention():
    """:data:`SMALL_ATTENTION`, a copy to override (``{**small_attention, "n_members": 2}``)."""
    return dict(SMALL_ATTENTION)


@pytest.fixture(scope="session")
def kvrh_sample():
    """``sample(n_train, n_test, seed)``: random rows of matbench_log_kvrh as (train formulas,
    train log10 GPa, test formulas, test log10 GPa)."""
    from matforge.datasets import load_dataset

    df = load_dataset("matbench_log_kvrh")

    def sample(n_train: int, n_test: int, seed: int = 0):
        rows = np.random.RandomState(seed).permutation(len(df))[: n_train + n_test]
        f = df["formula"].astype(str).to_numpy()[rows]
        y = df["log10_k_vrh"].to_numpy(float)[rows]
        return list(f[:n_train]), y[:n_train], list(f[n_train:]), y[n_train:]

    return sample


@pytest.fixture(scope="session")
def xrd_small_set():
    """Four prototypes with two substituted variants each, and three random pyxtal crystals."""
    pytest.importorskip("pyxtal")
    from matforge.xrd.training_data import build_structures

    return build_structures(
        n_variants=2, n_random=1, seed=3, prototypes=[0, 17, 172, 200], spacegroups=[14, 194, 225],
        progress=False,
    )  # fmt: skip


@pytest.fixture(scope="session")
def tiny_xrd_arch():
    return dict(TINY_XRD_ARCH)


@pytest.fixture(scope="session")
def tiny_xrd_model(tmp_path_factory, xrd_small_set):
    """A tiny but real XRD classifier (trained 2 epochs on :func:`xrd_small_set`; seconds on a
    CPU), saved like the shipped one; returns its ``.pt`` path. For server tests that need a
    working ``/xrd/identify`` whether or not the shipped weights are installed."""
    pytest.importorskip("torch")
    from matforge.xrd.augment import CU_KA1
    from matforge.xrd.cnn import train_classifier
    from matforge.xrd.training_data import classifier_classes as _classes
    from matforge.xrd.training_data import generate_shards, labels_for, load_shards, make_grid
    from matforge.xrd.training_data import grid_spec as _grid_spec
    from matforge.xrd.training_data import prototype_info as _prototype_info

    tmp = tmp_path_factory.mktemp("tiny_xrd")
    grid = make_grid()
    d = load_shards(generate_shards(xrd_small_set, tmp / "shards", grid=grid, n_per_structure=3,
                                    seed=1, progress=False))  # fmt: skip
    y = labels_for(xrd_small_set, d["structure"].astype(int))
    clf = train_classifier(
        d["x"], y, d["x"], y, classes=_classes(), grid=_grid_spec(grid), wavelength=CU_KA1,
        epochs=2, batch_size=16, lr=3e-3, arch=dict(TINY_XRD_ARCH), progress=False, seed=0,
        threads=1,
    )  # fmt: skip
    clf.meta["prototypes"] = _prototype_info()  # as `matforge xrd train` records them
    pt, _ = clf.save(tmp / "model", name="tiny")
    return pt
