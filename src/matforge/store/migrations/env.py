"""Alembic environment of the store, driven from Python, never from an alembic.ini.

matforge opens every store through :func:`matforge.store.database.ensure_schema`, which passes
its open connection (inside a write transaction) in ``config.attributes["connection"]``.
A new revision is written with::

    from alembic import command
    from matforge.store.database import _alembic_config
    command.revision(_alembic_config(), "what changed", rev_id="0002")

then edited by hand; ``tests/test_store.py`` checks that the migrated schema equals
``matforge.store.schema.metadata``.
"""

from alembic import context

from matforge.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("matforge migrations run on a connection given by matforge.store")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables for later migrations.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
