"""Campaigns belong to a project: ``campaigns.project_id``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

A campaign made through the server belongs to a project (``project_id``); one made with
``matforge campaign new`` has none (NULL). Names are unique per project, and among the campaigns
without a project (a partial unique index: NULLs are distinct in a plain unique constraint).
Before this revision the server stored its campaigns as ``p<project row id>:<name>``; those rows
get their project and their plain name back.

SQLite cannot drop the old ``UNIQUE (name)`` without rebuilding the table, and the rebuild that
batch mode does (copy, drop, rename) breaks the foreign keys of the campaign tables that refer to
it while ``foreign_keys`` is on (it cannot be turned off inside the migration's transaction).
So on SQLite the table is rebuilt here by hand: keep the rows, drop the table with foreign keys
deferred to the commit, create the new one and insert the rows again, which satisfies the
deferred checks.

Types are written out here rather than imported from ``matforge.store.campaigns``: a migration
must keep creating what it created on the day it was written.
"""

import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSONType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
Timestamp = sa.DateTime(timezone=True)
NO_PROJECT = "project_id IS NULL"
_SERVER_NAME = re.compile(r"^p(\d+):(.+)$", re.DOTALL)


def _columns(with_project: bool) -> list:
    cols = [
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config", JSONType, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    ]
    if with_project:
        cols.append(sa.Column("project_id", sa.Integer, nullable=True))
    return cols


def _rows(conn) -> list[dict]:
    t = sa.table(
        "campaigns",
        *[sa.column(c.name, c.type) for c in _columns(with_project=False)],
    )
    return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def _server_projects(conn) -> set[int]:
    # projects the server manages: the only ones whose campaigns it named p<id>:<name>
    return set(conn.execute(sa.text("SELECT project_id FROM project_access")).scalars())


def _create_indexes() -> None:
    op.create_index("ix_campaigns_project_id", "campaigns", ["project_id"])
    op.create_index(
        "ix_campaigns_name_without_project",
        "campaigns",
        ["name"],
        unique=True,
        sqlite_where=sa.text(NO_PROJECT),
        postgresql_where=sa.text(NO_PROJECT),
    )


def upgrade() -> None:
    conn = op.get_bind()
    rows = _rows(conn)
    managed = _server_projects(conn)
    for r in rows:
        m = _SERVER_NAME.match(r["name"])
        if m and int(m.group(1)) in managed:
            r["project_id"], r["name"] = int(m.group(1)), m.group(2)
        else:
            r["project_id"] = None
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        op.drop_table("campaigns")
        table = op.create_table(
            "campaigns",
            *_columns(with_project=True),
            sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
            sa.ForeignKeyConstraint(
                ["project_id"], ["projects.id"], name="fk_campaigns_project_id_projects"
            ),
            sa.UniqueConstraint("project_id", "name", name="uq_campaigns_project_id_name"),
        )
        if rows:
            op.bulk_insert(table, rows)
        _create_indexes()
        return
    op.add_column("campaigns", sa.Column("project_id", sa.Integer, nullable=True))
    op.create_foreign_key(
        "fk_campaigns_project_id_projects", "campaigns", "projects", ["project_id"], ["id"]
    )
    t = sa.table("campaigns", sa.column("id"), sa.column("name"), sa.column("project_id"))
    for r in rows:
        if r["project_id"] is not None:
            conn.execute(
                sa.update(t)
                .where(t.c.id == r["id"])
                .values(name=r["name"], project_id=r["project_id"])
            )
    op.drop_constraint("uq_campaigns_name", "campaigns", type_="unique")
    op.create_unique_constraint("uq_campaigns_project_id_name", "campaigns", ["project_id", "name"])
    _create_indexes()


def downgrade() -> None:
    conn = op.get_bind()
    t = sa.table("campaigns", sa.column("id"), sa.column("name"), sa.column("project_id"))
    owned = conn.execute(sa.select(t).where(t.c.project_id.is_not(None))).all()
    op.drop_index("ix_campaigns_name_without_project", "campaigns")
    op.drop_index("ix_campaigns_project_id", "campaigns")
    for r in owned:
        conn.execute(sa.update(t).where(t.c.id == r.id).values(name=f"p{r.project_id}:{r.name}"))
    if conn.dialect.name == "sqlite":
        rows = _rows(conn)
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        op.drop_table("campaigns")
        table = op.create_table(
            "campaigns",
            *_columns(with_project=False),
            sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
            sa.UniqueConstraint("name", name="uq_campaigns_name"),
        )
        if rows:
            op.bulk_insert(table, rows)
        return
    op.drop_constraint("uq_campaigns_project_id_name", "campaigns", type_="unique")
    op.create_unique_constraint("uq_campaigns_name", "campaigns", ["name"])
    op.drop_constraint("fk_campaigns_project_id_projects", "campaigns", type_="foreignkey")
    op.drop_column("campaigns", "project_id")
