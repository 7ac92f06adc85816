"""Shared fixtures.

``store_url`` / ``store``: a fresh, empty store, once on SQLite and once on PostgreSQL. The
PostgreSQL run needs ``MATFORGE_TEST_PG_URL`` (``export MATFORGE_TEST_PG_URL=$(bash
scripts/ci_postgres.sh)``) and is skipped without it; each test gets its own schema there.
"""

from __future__ import annotations

import os
import uuid

import pytest

PG_URL_VAR = "MATFORGE_TEST_PG_URL"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """URL of an empty database: a SQLite file, or a fresh schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
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


@pytest.fixture
def store(store_url):
    """An open, empty :class:`matforge.store.Store` on each engine."""
    from matforge.store import Store

    with Store(store_url) as s:
        yield s
