"""Persistent store of a lab's materials data: schema, validated ingest, queries, export.

SQLite (WAL mode) is the embedded default, PostgreSQL the shared-server option; both through
SQLAlchemy 2 with Alembic migrations. Typical use::

    from matforge.store import Store, ingest_csv

    store = Store()  # $MATFORGE_DB or ~/.matforge/matforge.db
    ingest_csv(store, "moduli.csv", project="alloys", property="bulk_modulus", unit="MPa")
    df = store.measurements(property="bulk_modulus", elements=["Fe", "Ni"])  # values in GPa
    store.export("alloys.parquet", project="alloys")
"""

from matforge.store.ingest import IngestReport, ingest_csv
from matforge.store.store import Store

__all__ = ["IngestReport", "Store", "ingest_csv"]
