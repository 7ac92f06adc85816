"""Tables of the store (SQLAlchemy Core), identical on SQLite and PostgreSQL.

The migrations in ``migrations/versions`` create exactly these tables; a test compares them.
Change both together, with a new migration, never one alone.

``materials.elements`` holds the sorted element symbols between dashes, ``-Fe-Ni-O-``, so
"contains Fe and O" is ``elements LIKE '%-Fe-%' AND elements LIKE '%-O-%'`` (the dashes keep
``O`` from matching ``Os``), answered from the index on ``elements`` alone, and "exactly the
Fe-O system" is an indexed equality, on both engines.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

METHODS = ("experiment", "computation", "prediction")

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite. SQL NULL, not JSON null,
# when a row has no conditions or structure.
JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# 64-bit ids where rows may number billions; SQLite needs plain INTEGER for its rowid alias.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

properties = sa.Table(
    "properties",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    # A pint unit string; every measurement of the property is stored in it.
    sa.Column("canonical_unit", sa.String(100), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("source", sa.Text, nullable=True),
    # sha256 of the ingested file, so a second ingest of the same file can be recognised.
    sa.Column("checksum", sa.String(64), nullable=True),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)

materials = sa.Table(
    "materials",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    # Identity: the normalised formula, plus a digest of the structure when there is one, so
    # polymorphs of one formula are distinct materials.
    sa.Column("key", sa.String(600), nullable=False, unique=True),
    sa.Column("formula", sa.String(500), nullable=False),
    sa.Column("reduced_formula", sa.String(500), nullable=False, index=True),
    sa.Column("elements", sa.String(500), nullable=False, index=True),
    sa.Column("nelements", sa.Integer, nullable=False),
    sa.Column("structure", JSONType, nullable=True),
)

measurements = sa.Table(
    "measurements",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("material_id", BigId, sa.ForeignKey("materials.id"), nullable=False, index=True),
    sa.Column(
        "property_id", sa.Integer, sa.ForeignKey("properties.id"), nullable=False, index=True
    ),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False, index=True),
    # value and uncertainty in the property's canonical unit (repeated in `unit` so a row
    # read on its own is never ambiguous); the value and unit as received in raw_*.
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("unit", sa.String(100), nullable=False),
    sa.Column("uncertainty", sa.Float, nullable=True),
    sa.Column("raw_value", sa.Float, nullable=False),
    sa.Column("raw_unit", sa.String(100), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("conditions", JSONType, nullable=True),
    sa.Column("source", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    # The formula as the row wrote it ("O3Fe2", "Fe₂O₃"): the material has one normalised
    # formula, each measurement keeps its own spelling. NULL before revision 0005, and for a
    # formula given as a pymatgen Composition.
    sa.Column("formula_as_ingested", sa.Text, nullable=True),
    # ';'-joined codes of the physical ranges (matforge.store.ranges) the value breaks, stored
    # anyway with allow_unphysical; NULL for a value inside them.
    sa.Column("flag", sa.String(200), nullable=True),
    sa.CheckConstraint("method IN ('experiment', 'computation', 'prediction')", name="method"),
)

# Tables of later migrations live in their own modules but on this metadata, so that the
# declared schema and the migrated one are the same (tests/test_store.py checks it).
from matforge.store import accounts as _accounts  # noqa: E402,F401  (server: users, tokens, jobs)
from matforge.store import audit as _audit  # noqa: E402,F401  (deletions, with who and when)
from matforge.store import campaigns as _campaigns  # noqa: E402,F401  (campaign state)
from matforge.store import structures as _structures  # noqa: E402,F401  (crystal structures)
