"""Tables of sequential-learning campaigns (:mod:`matforge.design.campaign`).

They live on :data:`matforge.store.schema.metadata` (same naming convention, same database) and
are created by migrations ``0003`` and ``0004``. A campaign's whole state is in these rows, so a
process killed at any point loses nothing that was committed, and every write below is one transaction:

* ``campaigns``: one row per campaign, of a project (made through the server) or of none
  (``project_id`` NULL: made with ``matforge campaign``); names are unique per project and among
  the campaigns without one. ``config`` holds the design space (``as_dict``), the
  objectives, constraints, model / acquisition / batch-strategy specs and the seed.
* ``campaign_batches``: one row per call of ``suggest``: the model that produced the batch (class,
  parameters, training-set size and digest, matforge version) and the acquisition used.
* ``campaign_suggestions``: every proposed experiment with its design values, its key (the id
  used to match results to it), the predictions and acquisition value it had when chosen, and
  its status: ``pending`` until a result arrives, then ``observed`` (or ``cancelled``).
* ``campaign_observations``: every measured result (property values by name), linked to the
  suggestion it answers when there is one; results from before the campaign (``--from``) and
  unplanned experiments have none.
"""

from __future__ import annotations

import sqlalchemy as sa

from matforge.store.schema import BigId, JSONType, metadata

SUGGESTION_STATUSES = ("pending", "observed", "cancelled")

Timestamp = sa.DateTime(timezone=True)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=True, index=True),
    sa.UniqueConstraint("project_id", "name"),
    # NULLs are distinct in the constraint above: campaigns without a project need their own
    sa.Index(
        "ix_campaigns_name_without_project",
        "name",
        unique=True,
        sqlite_where=sa.text("project_id IS NULL"),
        postgresql_where=sa.text("project_id IS NULL"),
    ),
)

campaign_batches = sa.Table(
    "campaign_batches",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False),
    # 1, 2, ... per campaign: the round of suggestions
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("model", JSONType, nullable=True),
    sa.Column("acquisition", JSONType, nullable=True),
    sa.Column("strategy", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("campaign_id", "number"),
)

campaign_suggestions = sa.Table(
    "campaign_suggestions",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column(
        "batch_id", BigId, sa.ForeignKey("campaign_batches.id"), nullable=False, index=True
    ),
    # order in which the batch strategy chose it (0 = first)
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("key", sa.String(1000), nullable=False),
    sa.Column("design", JSONType, nullable=False),
    # {objective property: {"mean": ..., "std": ...}} in the property's units
    sa.Column("prediction", JSONType, nullable=True),
    sa.Column("acquisition_value", sa.Float, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=True),
    sa.CheckConstraint("status IN ('pending', 'observed', 'cancelled')", name="status"),
    sa.Index("ix_campaign_suggestions_campaign_id_status", "campaign_id", "status"),
)

campaign_observations = sa.Table(
    "campaign_observations",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False, index=True),
    sa.Column(
        "suggestion_id", BigId, sa.ForeignKey("campaign_suggestions.id"), nullable=True,
        index=True,
    ),
    sa.Column("key", sa.String(1000), nullable=False),
    sa.Column("design", JSONType, nullable=False),
    # {property: value} in the property's units; a missing property is absent, not null
    sa.Column("values", JSONType, nullable=False),
    # "initial" (data the campaign started from), "observe" (results) and a file name, if any
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)
