"""Server tables: users, API tokens, project access and members, jobs, models, OPTIMADE indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Types are written out here rather than imported from ``matforge.store.accounts``: a migration
must keep creating what it created on the day it was written.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_api_tokens_user_id_users"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "project_access",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("owner_id", sa.Integer, nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("project_id", name="pk_project_access"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_project_access_project_id_projects"
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_project_access_owner_id_users"
        ),
        sa.CheckConstraint(
            "visibility IN ('private', 'shared', 'public')", name="ck_project_access_visibility"
        ),
    )
    op.create_index("ix_project_access_owner_id", "project_access", ["owner_id"])
    op.create_table(
        "project_members",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "user_id", name="pk_project_members"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_project_members_project_id_projects"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_project_members_user_id_users"),
        sa.CheckConstraint("role IN ('viewer', 'editor', 'owner')", name="ck_project_members_role"),
    )
    op.create_index("ix_project_members_user_id", "project_members", ["user_id"])
    op.create_table(
        "jobs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("params", JSONType, nullable=True),
        sa.Column("result", JSONType, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("started_at", Timestamp, nullable=True),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.Column("heartbeat_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_jobs_owner_id_users"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name="ck_jobs_status",
        ),
    )
    op.create_index("ix_jobs_owner_id", "jobs", ["owner_id"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("owner_id", sa.Integer, nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("job_id", BigId, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("property", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(100), nullable=False),
        sa.Column("params", JSONType, nullable=True),
        sa.Column("artifact", sa.String(500), nullable=True),
        sa.Column("info", JSONType, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_models_owner_id_users"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_models_project_id_projects"
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_models_job_id_jobs"),
    )
    op.create_index("ix_models_owner_id", "models", ["owner_id"])
    op.create_index("ix_models_project_id", "models", ["project_id"])
    op.create_table(
        "optimade_structures",
        sa.Column("material_id", BigId, nullable=False),
        sa.Column("public_id", sa.String(64), nullable=False),
        sa.Column("chemical_formula_reduced", sa.String(500), nullable=False),
        sa.Column("chemical_formula_anonymous", sa.String(500), nullable=False),
        sa.Column("nsites", sa.Integer, nullable=True),
        sa.Column("nperiodic_dimensions", sa.Integer, nullable=True),
        sa.Column("structure_features", sa.String(100), nullable=False, server_default="-"),
        sa.Column("species_names", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("material_id", name="pk_optimade_structures"),
        sa.UniqueConstraint("public_id", name="uq_optimade_structures_public_id"),
        sa.ForeignKeyConstraint(
            ["material_id"], ["materials.id"], name="fk_optimade_structures_material_id_materials"
        ),
    )
    op.create_index(
        "ix_optimade_structures_chemical_formula_reduced",
        "optimade_structures",
        ["chemical_formula_reduced"],
    )
    op.create_table(
        "optimade_references",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("public_id", sa.String(64), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("doi", sa.String(500), nullable=True),
        sa.Column("url", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_optimade_references"),
        sa.UniqueConstraint("public_id", name="uq_optimade_references_public_id"),
        sa.UniqueConstraint("source_sha256", name="uq_optimade_references_source_sha256"),
    )
    op.create_table(
        "server_settings",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_server_settings"),
    )


def downgrade() -> None:
    for table in (
        "server_settings",
        "optimade_references",
        "optimade_structures",
        "models",
        "jobs",
        "project_members",
        "project_access",
        "api_tokens",
        "users",
    ):
        op.drop_table(table)
