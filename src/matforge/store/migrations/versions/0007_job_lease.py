"""A running job holds a lease that its worker keeps renewing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

``jobs.lease_expires_at``: until when the worker that runs a job owns it. The worker's heartbeat
pushes it forward every few seconds; a ``running`` job whose lease has expired belongs to a
worker that is gone (killed, frozen, or on a machine that went away), whatever its process id
says, and is re-queued or failed. Nullable without a default, so adding it rewrites no row; a
job running when this revision is applied has no lease and is judged by ``heartbeat_at``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("jobs", sa.Column("lease_expires_at", Timestamp, nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "lease_expires_at")
