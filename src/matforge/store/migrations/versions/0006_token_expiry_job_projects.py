"""Tokens expire and record their last use; jobs record the projects they read.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

``api_tokens.expires_at`` (NULL: never) and ``api_tokens.last_used_at`` (NULL: not recorded):
nullable columns without a default, so adding them rewrites no row.

``job_projects`` (job, project): the projects a job reads. A job's status and result are
readable by its owner only while the owner can read every one of them, so that a project made
private again, or a member removed, also hides the results computed from it. Jobs queued before
this revision get their projects back from what they name: a ``train_model`` job through the
model it trains, ``screen`` and ``generate_design`` through ``params.model_id``, and
``campaign_suggest`` through ``params.campaign_id``; ``generate_sample`` reads no project.

Tables are written out here rather than imported from ``matforge.store.accounts``: a migration
must keep creating what it created on the day it was written.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)
JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("expires_at", Timestamp, nullable=True))
    op.add_column("api_tokens", sa.Column("last_used_at", Timestamp, nullable=True))
    job_projects = op.create_table(
        "job_projects",
        sa.Column("job_id", BigId, nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "project_id", name="pk_job_projects"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_job_projects_job_id_jobs"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_job_projects_project_id_projects"
        ),
    )
    op.create_index("ix_job_projects_project_id", "job_projects", ["project_id"])
    _backfill(op.get_bind(), job_projects)


def _backfill(conn: sa.Connection, job_projects: sa.Table) -> None:
    jobs = sa.table(
        "jobs", sa.column("id", BigId), sa.column("kind", sa.String), sa.column("params", JSONType)
    )
    models = sa.table("models", sa.column("id"), sa.column("job_id"), sa.column("project_id"))
    campaigns = sa.table("campaigns", sa.column("id"), sa.column("project_id"))
    model_project = dict(conn.execute(sa.select(models.c.id, models.c.project_id)).all())
    campaign_project = dict(conn.execute(sa.select(campaigns.c.id, campaigns.c.project_id)).all())
    pairs = {tuple(r) for r in conn.execute(sa.select(models.c.job_id, models.c.project_id))}
    for job_id, kind, params in conn.execute(sa.select(jobs.c.id, jobs.c.kind, jobs.c.params)):
        params = params if isinstance(params, dict) else {}
        project = None
        if kind in ("screen", "generate_design") and "model_id" in params:
            project = model_project.get(int(params["model_id"]))
        elif kind == "campaign_suggest" and "campaign_id" in params:
            project = campaign_project.get(int(params["campaign_id"]))
        if project is not None:
            pairs.add((job_id, project))
    if pairs:
        conn.execute(
            sa.insert(job_projects), [{"job_id": j, "project_id": p} for j, p in sorted(pairs)]
        )


def downgrade() -> None:
    op.drop_index("ix_job_projects_project_id", table_name="job_projects")
    op.drop_table("job_projects")
    op.drop_column("api_tokens", "last_used_at")
    op.drop_column("api_tokens", "expires_at")
