"""Repositories: the only code that queries the store's tables (issue #19 §1).

One module per aggregate, each owning the SQL of its tables:

``visibility``    who may read which project (the filter every read below takes);
``measurements``  measurements, the materials they are of and the properties they measure;
``accounts``      users and API tokens;
``jobs``          background jobs and the projects they read;
``models``        the server's trained models;
``projects``      projects, their members and visibility, their datasets;
``settings``      the server's settings row (the public-id key);
``systems``       the chemical systems the store holds;
``optimade``      the OPTIMADE index and its filters.

The store's older modules keep the statements of what they define: :mod:`matforge.store.audit`
(deletions, and the log's listing), :mod:`matforge.store.structures` (crystal structures),
:mod:`matforge.store.campaigns` (campaign state); :class:`~matforge.store.Store` keeps its
bulk-ingest write path (COPY on PostgreSQL, one prepared statement on SQLite) and reads
through the repositories here.

The layout is the same everywhere: a function takes an open :data:`Connection` first (the caller
chooses the transaction: ``engine.connect()`` to read, :func:`~matforge.store.database.write_transaction`
to write, several calls in one when they must be atomic) and returns plain values, rows or a
statement to execute (for the paged and streamed reads). Visibility is a first-class filter:
every read of measurements, materials or properties made for a user takes ``project_ids``, the
ids :func:`visibility.roles` gives that user, and reads nothing outside them; ``None`` (the
local :class:`~matforge.store.Store`, whose user owns the file) reads everything.

Code outside ``matforge.store`` imports these modules, never SQLAlchemy or the tables
(``tests/test_architecture.py`` checks it); :data:`Connection` and :data:`Engine` are the
types to annotate with.
"""

from __future__ import annotations

import sqlalchemy as _sa

#: An open connection to a store (``engine.connect()``, ``write_transaction(engine)``).
Connection = _sa.Connection
#: A store's engine (``Store.engine``).
Engine = _sa.Engine
#: A row of a result: attributes named like the columns.
Row = _sa.Row
#: A write that broke a unique constraint (a concurrent writer made the same row).
IntegrityError = _sa.exc.IntegrityError


def is_in_memory(engine: Engine) -> bool:
    """Whether ``engine`` is an in-memory SQLite database (one connection, one thread)."""
    return isinstance(engine.pool, _sa.pool.StaticPool)


def backend(url: str) -> tuple[str, str | None]:
    """``(backend name, database)`` of a store URL (``("sqlite", "/data/lab.db")``)."""
    u = _sa.make_url(url)
    return u.get_backend_name(), u.database


def display_url(url: str) -> str:
    """``url`` with its password hidden, to show."""
    return _sa.make_url(url).render_as_string(hide_password=True)
