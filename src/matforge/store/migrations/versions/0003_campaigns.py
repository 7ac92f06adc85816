"""Campaign tables: campaigns, their suggestion batches, suggestions and observations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Types are written out here rather than imported from ``matforge.store.campaigns``: a migration
must keep creating what it created on the day it was written.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )
    op.create_table(
        "campaign_batches",
        sa.Column("id", BigId, nullable=False),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("model", JSONType, nullable=True),
        sa.Column("acquisition", JSONType, nullable=True),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_batches"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_campaign_batches_campaign_id_campaigns"
        ),
        sa.UniqueConstraint(
            "campaign_id", "number", name="uq_campaign_batches_campaign_id_number"
        ),
    )
    op.create_table(
        "campaign_suggestions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("batch_id", BigId, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("key", sa.String(1000), nullable=False),
        sa.Column("design", JSONType, nullable=False),
        sa.Column("prediction", JSONType, nullable=True),
        sa.Column("acquisition_value", sa.Float, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_suggestions"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"],
            name="fk_campaign_suggestions_campaign_id_campaigns",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["campaign_batches.id"],
            name="fk_campaign_suggestions_batch_id_campaign_batches",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'observed', 'cancelled')", name="ck_campaign_suggestions_status"
        ),
    )
    op.create_index(
        "ix_campaign_suggestions_batch_id", "campaign_suggestions", ["batch_id"]
    )
    op.create_index(
        "ix_campaign_suggestions_campaign_id_status",
        "campaign_suggestions",
        ["campaign_id", "status"],
    )
    op.create_table(
        "campaign_observations",
        sa.Column("id", BigId, nullable=False),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("suggestion_id", BigId, nullable=True),
        sa.Column("key", sa.String(1000), nullable=False),
        sa.Column("design", JSONType, nullable=False),
        sa.Column("values", JSONType, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_observations"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"],
            name="fk_campaign_observations_campaign_id_campaigns",
        ),
        sa.ForeignKeyConstraint(
            ["suggestion_id"], ["campaign_suggestions.id"],
            name="fk_campaign_observations_suggestion_id_campaign_suggestions",
        ),
    )
    op.create_index(
        "ix_campaign_observations_campaign_id", "campaign_observations", ["campaign_id"]
    )
    op.create_index(
        "ix_campaign_observations_suggestion_id", "campaign_observations", ["suggestion_id"]
    )


def downgrade() -> None:
    for table in (
        "campaign_observations",
        "campaign_suggestions",
        "campaign_batches",
        "campaigns",
    ):
        op.drop_table(table)
