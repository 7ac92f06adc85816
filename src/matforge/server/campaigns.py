"""Campaigns of the server: :class:`matforge.design.Campaign` kept in the store, owned by a
project.

A campaign created through the API has its project in ``campaigns.project_id``: the readers of
that project may see it, its editors drive it. A campaign made with ``matforge campaign new``
has no project and is not served. Its space is a
:class:`~matforge.design.spaces.CompositionPool` of candidate formulas; its one objective is a
property measured in the project, whose measurements are the initial results. ``suggest`` (a
surrogate fit) runs as the ``campaign_suggest`` background job. Every read and write goes
through :class:`matforge.store.campaigns.CampaignRepository`, through the campaign object.
"""

from __future__ import annotations

from collections.abc import Collection

from matforge.server.jobs import JobContext, JobKind
from matforge.store import Store
from matforge.store.campaigns import CampaignRepository


def campaign_rows(store: Store, project_ids: Collection[int]) -> list:
    """Rows (id, project_id, name, config, created_at) of the campaigns of these projects (the
    ones the caller may read), oldest first."""
    return CampaignRepository(store.engine).of_projects(project_ids)


def campaign_row(store: Store, campaign_id: int):
    """The row (id, project_id, name, config, created_at) of a campaign of a project, or None
    (also for a campaign without a project)."""
    return CampaignRepository(store.engine).get(campaign_id, projects_only=True)


def known_suggestions(store: Store, campaign_id: int, ids: Collection[int]) -> set[int]:
    """Those of ``ids`` that are suggestions of the campaign."""
    return CampaignRepository(store.engine).suggestion_ids(campaign_id, ids)


def suggest_kind(store: Store) -> JobKind:
    """The ``campaign_suggest`` job kind: params ``{"campaign_id": <row id>, "n": <count>}``."""

    def run(ctx: JobContext) -> dict:
        from matforge.design.campaign import Campaign

        row = campaign_row(store, int(ctx.params["campaign_id"]))
        if row is None:
            from matforge.errors import MatforgeError

            raise MatforgeError("the campaign no longer exists")
        campaign = Campaign.open(store, row.id)
        ctx.progress(0.1, "fitting the surrogate and ranking the candidates")
        batch = campaign.suggest(int(ctx.params.get("n", 1)))
        return {"n_suggested": len(batch)}

    # A suggest that died half-way wrote nothing (one transaction); running it again is safe,
    # but one that finished and was not recorded as done would propose a second batch.
    return JobKind("campaign_suggest", run, restartable=False)
