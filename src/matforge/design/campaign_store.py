"""Saving campaigns to a store and reopening them: the glue between
:class:`~matforge.design.campaign.Campaign` (a domain object) and
:class:`~matforge.store.campaigns.CampaignRepository` (the campaign tables' only reader and
writer). Nothing here writes SQL.
"""

from __future__ import annotations

import pandas as pd

from matforge.design import campaign as _campaign
from matforge.design.campaign import Campaign, CampaignError
from matforge.design.objectives import objective_from_dict
from matforge.errors import DesignSpaceError

__all__ = ["campaign_names", "campaign_overview", "check_name", "load_campaign",
           "open_campaign", "save_campaign"]


def _open_store(store):
    from matforge.store import Store

    return store if isinstance(store, Store) else Store(store)


def _repository(store):
    from matforge.store.campaigns import CampaignRepository

    return CampaignRepository(store.engine)


def check_name(name) -> None:
    """Raise :class:`CampaignError` unless ``name`` can name a campaign."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise CampaignError(f"a campaign name must be a non-empty string (≤ 200), got {name!r}")


def _stored(store, row, model=None) -> Campaign:
    strategy = None
    if model is not None:  # a surrogate of one's own, given again
        from matforge.design.strategy import Strategy

        try:
            strategy = Strategy.from_dict({**row.config["strategy"], "model": model})
        except DesignSpaceError as exc:
            raise CampaignError(str(exc)) from None
    return Campaign.from_config(row.config, name=row.name, store=store, campaign_id=row.id,
                                log=_repository(store).log(row.id), strategy=strategy)


def save_campaign(campaign: Campaign, store, name: str, *, project_id: int | None = None
                  ) -> Campaign:
    """Keep ``campaign`` with its history in ``store`` (a :class:`~matforge.store.Store`, URL or
    path) as ``name`` of project ``project_id`` (None: of the store as a whole), in one
    transaction; returns the campaign kept there. Raises :class:`CampaignError` if the name is
    taken (per project, or among the campaigns without one); nothing is written then."""
    check_name(name)
    store = _open_store(store)
    history = campaign._log.export()
    cid = _repository(store).create(
        name, campaign.config, created_by=_campaign._user(),
        created_at=_campaign._now(), project_id=project_id,
        batches=history["batches"], suggestions=history["suggestions"],
        observations=history["observations"])
    if cid is None:
        where = "" if project_id is None else " (this project)"
        raise CampaignError(f"a campaign named {name!r} already exists in {store!r}{where}")
    # the strategy as given (an estimator of one's own stays the same object)
    return Campaign.from_config(campaign.config, name=name, store=store, campaign_id=cid,
                                log=_repository(store).log(cid), strategy=campaign.strategy)


def load_campaign(store, name: str, *, model=None) -> Campaign:
    """The campaign ``name`` of ``store`` that belongs to no project (raises
    :class:`CampaignError` if there is none). ``model``: its surrogate, when it is an
    estimator of one's own that its saved description cannot rebuild (or another one)."""
    store = _open_store(store)
    row = _repository(store).find(name)
    if row is None:
        known = campaign_names(store)
        hint = f"; campaigns in this store: {', '.join(known)}" if known else ""
        raise CampaignError(f"no campaign named {name!r} in {store!r}{hint}")
    return _stored(store, row, model)


def open_campaign(store, campaign_id: int, *, model=None) -> Campaign:
    """The campaign with row id ``campaign_id`` (of any project; raises
    :class:`CampaignError` if there is none); ``model`` as in :func:`load_campaign`."""
    store = _open_store(store)
    row = _repository(store).get(int(campaign_id))
    if row is None:
        raise CampaignError(f"no campaign with id {campaign_id} in {store!r}")
    return _stored(store, row, model)


def campaign_names(store) -> list[str]:
    """Names of the campaigns in ``store`` that belong to no project, oldest first."""
    return _repository(_open_store(store)).names()


def campaign_overview(store) -> pd.DataFrame:
    """See :meth:`Campaign.overview`."""
    rows = _repository(_open_store(store)).overview()
    columns = ["name", "objectives", "space", "results", "pending", "created_at",
               "created_by"]
    return pd.DataFrame(
        [(r.name,
          "; ".join(str(objective_from_dict(o)) for o in r.config["objectives"]),
          r.config["space"].get("@class", ""),
          int(r.results), int(r.pending), r.created_at, r.created_by) for r in rows],
        columns=columns,
    )
