"""Measurements keep the formula as ingested and a data-quality flag.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

``measurements.formula_as_ingested``: the formula string as the row wrote it (two rows may write
``Fe2O3`` and ``O3Fe2`` for one material, so it belongs to the measurement, not the material).
``measurements.flag``: the codes of the physical ranges a value breaks when it was stored with
``allow_unphysical``. Both nullable: rows written before this revision have neither (NULL), and
adding a nullable column without a default rewrites no row on SQLite or PostgreSQL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("measurements", sa.Column("formula_as_ingested", sa.Text, nullable=True))
    op.add_column("measurements", sa.Column("flag", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("measurements", "flag")
    op.drop_column("measurements", "formula_as_ingested")
