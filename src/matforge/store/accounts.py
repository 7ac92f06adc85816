"""Tables of the server's accounts, sharing, background jobs and OPTIMADE indexes.

They live on :data:`matforge.store.schema.metadata` (same naming convention, same database) and
are created by migration ``0002``. Only ``matforge serve`` and the ``matforge user`` / ``token``
commands use them; the store itself never does.

* ``users`` and ``api_tokens``: a token is shown once and stored as its SHA-256 only; it may
  expire (``expires_at``, migration ``0006``) and be revoked alone; a disabled user's tokens are
  all refused.
* ``project_access`` (one row per project the server manages: owner and visibility) and
  ``project_members`` (user, role). A project without a ``project_access`` row (one made by
  ``matforge ingest``) is served to nobody.
* ``jobs``: long work (model training, later screens and campaigns) as rows whose status and
  progress survive a restart; ``job_projects``: the projects each job reads (``0006``), whose
  current access decides who may read the job; ``models``: trained models and the job that
  trains them.
* ``optimade_structures`` / ``optimade_references``: per-material and per-source columns that
  OPTIMADE filters need and the store does not hold (alphabetical reduced formula, anonymous
  formula, number of sites, public ids), filled in lazily by the OPTIMADE endpoint.
* ``server_settings``: name/value pairs, e.g. the key of the public-id cipher.
"""

from __future__ import annotations

import sqlalchemy as sa

from matforge.store.schema import BigId, JSONType, metadata

VISIBILITIES = ("private", "shared", "public")
ROLES = ("viewer", "editor", "owner")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")

Timestamp = sa.DateTime(timezone=True)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    # hex SHA-256 of the token; the token itself is never stored.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("revoked_at", Timestamp, nullable=True),
    # NULL: never expires. Checked on every request against the server's clock.
    sa.Column("expires_at", Timestamp, nullable=True),
    # when a request last presented it, to a few minutes (written at most once per
    # LAST_USED_RESOLUTION, so that reading requests do not all become writes)
    sa.Column("last_used_at", Timestamp, nullable=True),
)

project_access = sa.Table(
    "project_access",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.CheckConstraint("visibility IN ('private', 'shared', 'public')", name="visibility"),
)

project_members = sa.Table(
    "project_members",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.CheckConstraint("role IN ('viewer', 'editor', 'owner')", name="role"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    # fraction done, 0..1, and a one-line description of the current step
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("params", JSONType, nullable=True),
    sa.Column("result", JSONType, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # "host:pid:instance" of the server process running it; with heartbeat_at, tells a job
    # of a live process from one whose process died.
    sa.Column("worker", sa.String(200), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("started_at", Timestamp, nullable=True),
    sa.Column("finished_at", Timestamp, nullable=True),
    sa.Column("heartbeat_at", Timestamp, nullable=True),
    # until when the worker owns the running job; its heartbeat renews it, and a job whose
    # lease expired is recovered whatever its pid says (``0007``)
    sa.Column("lease_expires_at", Timestamp, nullable=True),
    sa.CheckConstraint(
        "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
    ),
)

# The projects a job reads (a trained model's project, a screened model's project, a campaign's
# project): its status and result are readable only while its owner can read all of them.
job_projects = sa.Table(
    "job_projects",
    metadata,
    sa.Column("job_id", BigId, sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True, index=True),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("job_id", BigId, sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("property", sa.String(200), nullable=False),
    sa.Column("unit", sa.String(100), nullable=False),
    sa.Column("params", JSONType, nullable=True),
    # where the fitted model is kept (registry folder name), and its metrics once trained
    sa.Column("artifact", sa.String(500), nullable=True),
    sa.Column("info", JSONType, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

optimade_structures = sa.Table(
    "optimade_structures",
    metadata,
    sa.Column("material_id", BigId, sa.ForeignKey("materials.id"), primary_key=True),
    sa.Column("public_id", sa.String(64), nullable=False, unique=True),
    sa.Column("chemical_formula_reduced", sa.String(500), nullable=False, index=True),
    sa.Column("chemical_formula_anonymous", sa.String(500), nullable=False),
    sa.Column("nsites", sa.Integer, nullable=True),
    sa.Column("nperiodic_dimensions", sa.Integer, nullable=True),
    # "-disorder-" style sets (like materials.elements) so HAS is a substring test
    sa.Column("structure_features", sa.String(100), nullable=False, server_default="-"),
    sa.Column("species_names", sa.Text, nullable=True),
)

optimade_references = sa.Table(
    "optimade_references",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("public_id", sa.String(64), nullable=False, unique=True),
    sa.Column("source_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("doi", sa.String(500), nullable=True),
    sa.Column("url", sa.Text, nullable=True),
)

server_settings = sa.Table(
    "server_settings",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
