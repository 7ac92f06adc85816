"""Campaigns of the server: :class:`matforge.design.Campaign` kept in the store, owned by a
project.

A campaign created through the API has its project in ``campaigns.project_id``: the readers of
that project may see it, its editors drive it. A campaign made with ``matforge campaign new``
has no project and is not served. Its space is a
:class:`~matforge.design.campaign.CompositionPool` of candidate formulas; its one objective is a
property measured in the project, whose measurements are the initial results. ``suggest`` (a
surrogate fit) runs as the ``campaign_suggest`` background job.
"""

from __future__ import annotations

import sqlalchemy as sa

from matforge.server.jobs import JobContext, JobKind
from matforge.store import Store
from matforge.store.campaigns import campaigns

_COLUMNS = (
    campaigns.c.id,
    campaigns.c.project_id,
    campaigns.c.name,
    campaigns.c.config,
    campaigns.c.created_at,
)


def campaign_rows(engine: sa.Engine, project_ids: list[int]) -> list:
    """Rows (id, project_id, name, config, created_at) of the campaigns of these projects,
    oldest first."""
    if not project_ids:
        return []
    with engine.connect() as conn:
        return conn.execute(
            sa.select(*_COLUMNS)
            .where(campaigns.c.project_id.in_(project_ids))
            .order_by(campaigns.c.id)
        ).all()


def campaign_row(engine: sa.Engine, campaign_id: int):
    """The row (id, project_id, name, config, created_at) of a campaign of a project, or None
    (also for a campaign without a project)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(*_COLUMNS).where(
                campaigns.c.id == campaign_id, campaigns.c.project_id.is_not(None)
            )
        ).first()


def suggest_kind(store: Store) -> JobKind:
    """The ``campaign_suggest`` job kind: params ``{"campaign_id": <row id>, "n": <count>}``."""

    def run(ctx: JobContext) -> dict:
        from matforge.design.campaign import Campaign

        row = campaign_row(store.engine, int(ctx.params["campaign_id"]))
        if row is None:
            from matforge.errors import MatforgeError

            raise MatforgeError("the campaign no longer exists")
        campaign = Campaign(store, row.name, row.id, row.config)
        ctx.progress(0.1, "fitting the surrogate and ranking the candidates")
        batch = campaign.suggest(int(ctx.params.get("n", 1)))
        return {"n_suggested": len(batch)}

    # A suggest that died half-way wrote nothing (one transaction); running it again is safe,
    # but one that finished and was not recorded as done would propose a second batch.
    return JobKind("campaign_suggest", run, restartable=False)
