"""Sequential-learning campaigns: ask for the next experiments, tell the results.

A :class:`Campaign` is a plain domain object: build it, ask and tell, in a REPL or a notebook,
with no database at all:

>>> from matforge.design.campaign import Campaign
>>> c = Campaign(space, ["degradation min"], initial=past_df)
>>> batch = c.suggest(5)            # DataFrame: suggestion_id, design columns, predictions
>>> c.observe(results_df)           # matched to the suggestions by id or by design values
>>> c.best(), c.history()

Saved to a store (:meth:`Campaign.save`, or made there with :meth:`Campaign.create`) it is the
same object, whose state (the design space, the objectives, the strategy, every suggestion with
the model and acquisition value that produced it and its status — pending / observed /
cancelled —, and every observation) lives in the store's campaign tables, read and written
only through :class:`matforge.store.campaigns.CampaignRepository`; :meth:`Campaign.load`
reopens it in any process. Each ``suggest`` and each ``observe`` is one step, written at once
(one transaction), so a process killed at any moment loses nothing that was reported as done,
and a restarted one never proposes again what is pending: pending experiments are excluded
from the candidates and fantasised around (kriging believer) by the next batch.

What a lab needs around the loop: categorical and ordinal design columns (a solvent, a catalyst
type, a grade), failed experiments recorded as such (a ``failed`` column in the results, see
:meth:`Campaign.observe`) and learned from (the acquisition is weighted by the probability
that a candidate succeeds, :mod:`matforge.design.feasibility`), costs (``costs=``,
:class:`~matforge.design.costs.CostModel`: the acquisition per unit cost), and a stopping
estimate (:meth:`Campaign.stopping`, :mod:`matforge.design.stopping`).

Design spaces: any :class:`~matforge.design.spaces.DesignSpace` (a
:class:`~matforge.design.spaces.DiscretePool` of candidates, a
:class:`~matforge.design.spaces.CompositionPool` of candidate formulas, which the surrogate
sees through composition descriptors, a :class:`~matforge.design.spaces.ParameterSpace`, a
:class:`~matforge.design.spaces.FormulationSpace`). Surrogates: a built-in name or any
estimator following the scikit-learn contract with ``predict(X, return_std=True)``
(``model=``). The rest of the campaign's ideas live beside it:
:mod:`~matforge.design.campaign_log` (the history in memory),
:mod:`~matforge.design.campaign_store` (saving and loading through the store),
:mod:`~matforge.design.campaign_space` (the space a table of experiments implies).
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from matforge.design.costs import CostModel
from matforge.design.objectives import (
    Constraint,
    Objective,
    objective_from_dict,
    pareto_front,
    parse_constraint,
    parse_objective,
)
from matforge.design.spaces import (
    CompositionPool,
    DesignSpace,
    DiscretePool,
    FormulationSpace,
    composition_keys,
    space_from_dict,
)
from matforge.design.spaces.pools import _stored_value as _json_value
from matforge.design.strategy import (
    Representation,
    Strategy,
    default_strategy,
    fit_models,
    propose,
)
from matforge.errors import CampaignError, DesignSpaceError
from matforge.jsonable import to_jsonable

__all__ = [
    "Campaign",
    "CampaignError",
    "CompositionPool",
    "FAILED_COLUMN",
    "ObserveReport",
    "composition_keys",
    "load_space",
]

# Fewer finite results than this for an objective: explore (space-filling) instead of modelling.
# 5, as the strategy chosen by leave-one-problem-out over the campaign benchmark suite (issue
# #20, `default_init5`: 5 random starts before the model; geometric-mean acceleration 3.78
# against 3.67 with 3, 3.56 with 2 and 3.27 with 10; docs/benchmarks.md).
MIN_OBSERVATIONS = 5
# Fewer than this: no stopping estimate (a probability from so few results means nothing).
MIN_OBSERVATIONS_STOPPING = 5
# Random candidates drawn from a continuous space per suggestion, plus local moves around the
# best results so far.
N_RANDOM_CANDIDATES = 2048
N_LOCAL_CANDIDATES = 512
# Relative tolerance when matching a result's design values to a pending suggestion.
MATCH_RTOL = 1e-6
SUGGESTION_ID = "suggestion_id"
#: Column of a results table that marks a failed experiment: yes/no, 1/0, or what went wrong.
FAILED_COLUMN = "failed"
#: Key of a stored observation's values that records a failure (and why).
FAILED_KEY = "@failed"
_NOT_FAILED = {"", "no", "n", "false", "0", "ok", "success", "succeeded"}
_FAILED = {"yes", "y", "true", "1", "x", "failed", "fail"}


def _now() -> datetime:
    return datetime.now(UTC)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def load_space(d: dict) -> DesignSpace:
    """Any design space from its ``as_dict`` (the same as
    :func:`~matforge.design.spaces.space_from_dict`, which knows every kind)."""
    return space_from_dict(d)


def __getattr__(name: str):
    # the space a table implies lives in its own module, which needs CampaignError from here
    if name in ("infer_space", "infer_parameter"):
        from matforge.design import campaign_space

        return getattr(campaign_space, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class ObserveReport:
    """What :meth:`Campaign.observe` recorded: ``matched`` results answered a pending (or, by
    id, any) suggestion, ``unplanned`` ones matched none, ``duplicates`` were already recorded
    (same design and values) and were skipped; ``observation_ids`` of the rows written;
    ``failed``: how many of those recorded are failed experiments."""

    matched: int = 0
    unplanned: int = 0
    duplicates: int = 0
    observation_ids: list[int] = field(default_factory=list)
    failed: int = 0

    @property
    def recorded(self) -> int:
        return self.matched + self.unplanned


def campaign_config(
    space: DesignSpace,
    objectives: Sequence[Objective | str] | Objective | str,
    *,
    model="auto",
    acquisition: str | dict = "auto",
    batch_strategy: str | None = None,
    constraints: Sequence[Constraint | str] = (),
    strategy: Strategy | None = None,
    ingredient_features: pd.DataFrame | None = None,
    precision: float | Mapping[str, float] | None = None,
    costs: CostModel | Mapping | None = None,
    seed: int = 0,
) -> tuple[dict, Strategy]:
    """The validated, JSON-serialisable description of a campaign (see :class:`Campaign`) and
    its strategy (which may hold an estimator of one's own, described in the config)."""
    if not isinstance(space, DesignSpace):
        raise CampaignError(f"space must be a DesignSpace, got {type(space).__name__}")
    space = space.with_precision(precision)
    if isinstance(objectives, str | Objective):
        objectives = [objectives]
    objs = [parse_objective(o) for o in objectives]
    if not objs:
        raise CampaignError("a campaign needs at least one objective")
    names = [o.name for o in objs]
    if len(set(names)) != len(names):
        raise CampaignError(f"objectives name a property twice: {names}")
    cons = [parse_constraint(c) for c in constraints]
    clash = [o for o in names if o in space.columns]
    if clash:
        raise CampaignError(f"objective(s) {clash} are design columns of the space")
    strat = strategy or default_strategy(objs)
    overrides = {}
    if not isinstance(model, str) or model != "auto":
        overrides["model"] = model
        overrides["model_params"] = {}
    if acquisition != "auto":
        overrides["acquisition"] = acquisition
    if batch_strategy is not None:
        overrides["batch_strategy"] = batch_strategy
    strat = Strategy.from_dict({**strat.as_dict(), "model": strat.model, **overrides})
    strat.acquisition_for(objs)  # validates the acquisition name
    if ingredient_features is not None:
        if not isinstance(space, FormulationSpace):
            raise CampaignError("ingredient_features need a FormulationSpace")
        missing = [i for i in space.ingredient_names if i not in ingredient_features.index]
        if missing:
            raise CampaignError(f"ingredient_features lack ingredient(s) {missing[:5]}")
        ingredient_features = ingredient_features.loc[space.ingredient_names].astype(float)
    if costs is not None:
        if isinstance(costs, Mapping):
            costs = CostModel.from_dict(costs)
        if not isinstance(costs, CostModel):
            raise CampaignError(f"costs must be a CostModel, got {type(costs).__name__}")
        costs.check(space)
    config = {
        "space": space.as_dict(),
        "objectives": [o.as_dict() for o in objs],
        "constraints": [c.as_dict() for c in cons],
        "strategy": strat.as_dict(),
        "seed": int(seed),
        **({"costs": costs.as_dict()} if costs is not None else {}),
        "ingredient_features": None if ingredient_features is None else {
            "index": [str(i) for i in ingredient_features.index],
            "columns": [str(c) for c in ingredient_features.columns],
            "data": ingredient_features.to_numpy(dtype=float).tolist(),
        },
        "matforge": _version(),
    }
    return config, strat


class Campaign:
    """A sequential-learning campaign: in memory, or kept in a
    :class:`~matforge.store.Store` (see the module docstring).

    ``Campaign(space, objectives, ...)`` builds one in memory. ``objectives``: one or more
    objectives or their text (``"yield_strength max"``, ``"gap in [1.2, 1.4]"``). ``model``
    (``"auto"``, ``"rf"``, ``"gp"``, ``"lgbm"`` (alias ``"boosted"``): the recipes of
    :data:`matforge.models.presets.RECIPES`, or an estimator of one's own following the
    scikit-learn contract with ``predict(X, return_std=True)``), ``acquisition`` (``"auto"`` or
    a short name such as ``"ei"``, ``"ucb"``, ``"mli"``) and ``batch_strategy``
    (``"kriging_believer"``, ``"local_penalization"``, ``"top"``) override
    :func:`~matforge.design.strategy.default_strategy` (or pass a whole ``strategy``).
    ``constraints`` on measured properties (``"density < 5"``) weight the acquisition by the
    probability of meeting them. ``ingredient_features`` (formulation spaces): a table indexed
    by ingredient name whose amount-weighted means are added to the surrogate's features.
    ``precision``: the steps suggestions are rounded to (a number for every ingredient amount
    and continuous parameter, or ``{"amounts": 0.005, "temperature": 5, "*": ...}``; 0: not
    rounded; default: the space's own, see
    :meth:`~matforge.design.spaces.ParameterSpace.round`), kept in the space. ``costs``: a
    :class:`~matforge.design.costs.CostModel` (or its ``as_dict``) pricing each candidate
    experiment; suggestions then maximise the acquisition per unit cost. ``initial``: results
    from before the campaign (design columns and measured properties; failed experiments marked
    in a ``failed`` column), recorded as observations from ``source``.

    :meth:`save` keeps it in a store, :meth:`create` makes one there, :meth:`load` and
    :meth:`open` reopen one. ``name``, ``id`` and ``store`` say where it is kept (None in
    memory).
    """

    def __init__(
        self,
        space: DesignSpace,
        objectives: Sequence[Objective | str] | Objective | str,
        *,
        model="auto",
        acquisition: str | dict = "auto",
        batch_strategy: str | None = None,
        constraints: Sequence[Constraint | str] = (),
        strategy: Strategy | None = None,
        ingredient_features: pd.DataFrame | None = None,
        precision: float | Mapping[str, float] | None = None,
        costs: CostModel | Mapping | None = None,
        seed: int = 0,
        initial: pd.DataFrame | None = None,
        source: str = "initial",
        name: str | None = None,
    ):
        from matforge.design.campaign_log import MemoryLog

        config, strat = campaign_config(
            space, objectives, model=model, acquisition=acquisition,
            batch_strategy=batch_strategy, constraints=constraints, strategy=strategy,
            ingredient_features=ingredient_features, precision=precision, costs=costs,
            seed=seed)
        self._setup(config, strat)
        self.name, self.id, self.store = name, None, None
        self._log = MemoryLog()
        if initial is not None:
            self._log.add_observations(self._observation_rows(initial, source))

    @classmethod
    def from_config(cls, config: dict, *, name: str | None = None, log=None, store=None,
                    campaign_id: int | None = None, strategy: Strategy | None = None
                    ) -> Campaign:
        """A campaign from its description (``config``, as :func:`campaign_config` makes it)
        and its history (``log``: a :class:`~matforge.design.campaign_log.MemoryLog`, the
        default, or a :class:`~matforge.store.campaigns.StoredCampaignLog`)."""
        from matforge.design.campaign_log import MemoryLog

        self = cls.__new__(cls)
        self._setup(config, strategy)
        self.name, self.id, self.store = name, campaign_id, store
        self._log = MemoryLog() if log is None else log
        return self

    def _setup(self, config: dict, strategy: Strategy | None = None) -> None:
        self.config = config
        self.space = load_space(config["space"])
        self.objectives: list[Objective] = [objective_from_dict(o) for o in config["objectives"]]
        self.constraints: list[Constraint] = [Constraint.from_dict(c)
                                              for c in config.get("constraints", [])]
        try:
            self.strategy = strategy or Strategy.from_dict(config["strategy"])
        except DesignSpaceError as exc:
            raise CampaignError(str(exc)) from None
        self.seed = int(config.get("seed", 0))
        costs = config.get("costs")
        self.costs: CostModel | None = CostModel.from_dict(costs) if costs else None
        ingredient = config.get("ingredient_features")
        self.ingredient_features = (pd.DataFrame(ingredient["data"], index=ingredient["index"],
                                                 columns=ingredient["columns"])
                                    if ingredient else None)
        self._representation: Representation | None = None
        self._pool_features: np.ndarray | None = None
        self._pool_z: np.ndarray | None = None

    def __repr__(self) -> str:
        objs = ", ".join(str(o) for o in self.objectives)
        return f"Campaign({self.name!r}, {objs}, space={self.space!r})"

    # -- keeping it in a store -----------------------------------------------------------------

    def save(self, store, name: str | None = None, *, project_id: int | None = None
             ) -> Campaign:
        """Keep this campaign, with its history so far, in ``store`` (a
        :class:`~matforge.store.Store`, URL or path) under ``name`` (default: its own), in one
        transaction; returns the campaign kept there (this one stays as it is). See
        :func:`matforge.design.campaign_store.save_campaign`."""
        from matforge.design.campaign_store import save_campaign

        return save_campaign(self, store, self.name if name is None else name,
                             project_id=project_id)

    @classmethod
    def create(cls, store, name: str, space: DesignSpace,
               objectives: Sequence[Objective | str] | Objective | str, *,
               project_id: int | None = None, **options) -> Campaign:
        """A new campaign named ``name`` in ``store`` (a :class:`Store`, URL or path): the
        campaign ``Campaign(space, objectives, **options)`` (see :class:`Campaign`) saved there,
        its ``initial`` results in the same transaction. ``project_id``: the store project (row
        id) the campaign belongs to (the server's campaigns); None for a campaign of the store
        as a whole, which :meth:`load` and :meth:`names` see. Raises :class:`CampaignError` if
        the name is taken (per project, or among the campaigns without one)."""
        from matforge.design.campaign_store import check_name

        check_name(name)
        return cls(space, objectives, name=name, **options).save(store, name,
                                                                 project_id=project_id)

    @classmethod
    def load(cls, store, name: str, *, model=None) -> Campaign:
        """Reopen the campaign ``name`` (one without a project: the server's campaigns are
        reached through :meth:`open`; raises :class:`CampaignError` if there is none).
        ``model``: the surrogate, when the campaign's is an estimator of one's own whose
        parameters are not plain values (a kernel object), which its description cannot
        rebuild."""
        from matforge.design.campaign_store import load_campaign

        return load_campaign(store, name, model=model)

    @classmethod
    def open(cls, store, campaign_id: int, *, model=None) -> Campaign:
        """Reopen a campaign by its row id (any project's; raises :class:`CampaignError` if
        there is none; ``model`` as in :meth:`load`). Callers check that whoever asks may see
        it."""
        from matforge.design.campaign_store import open_campaign

        return open_campaign(store, campaign_id, model=model)

    @staticmethod
    def names(store) -> list[str]:
        """Names of the campaigns in ``store`` that belong to no project."""
        from matforge.design.campaign_store import campaign_names

        return campaign_names(store)

    @staticmethod
    def overview(store) -> pd.DataFrame:
        """One row per campaign of ``store`` without a project (those :meth:`names` lists, in
        creation order): ``name``, ``objectives`` (their text, ``"; "``-joined), ``space`` (the
        design space's class, e.g. ``FormulationSpace``), ``results`` (observations recorded,
        past experiments included), ``pending`` (suggestions awaiting a result), ``created_at``
        (UTC) and ``created_by``.

        Counts come from grouped queries and the space is not rebuilt, so listing loads no
        campaign's history or candidate pool.
        """
        from matforge.design.campaign_store import campaign_overview

        return campaign_overview(store)

    # -- features ------------------------------------------------------------------------------

    @property
    def design_columns(self) -> list[str]:
        """The columns that describe an experiment (what results files must carry, unless
        they give a ``suggestion_id``)."""
        if isinstance(self.space, CompositionPool):
            cols = [self.space.formula_column, *self.space.extra_columns]
            return cols + ([self.space.id_column] if self.space.id_column else [])
        if isinstance(self.space, DiscretePool):
            cols = list(self.space.feature_columns)
            return ([self.space.id_column] if self.space.id_column else []) + cols
        return list(self.space.columns)

    @property
    def feature_columns(self) -> list[str]:
        """The design columns the surrogate's features are computed from."""
        if isinstance(self.space, CompositionPool):
            return [self.space.formula_column, *self.space.extra_columns]
        if isinstance(self.space, DiscretePool):
            return list(self.space.feature_columns)
        return list(self.space.columns)

    @property
    def properties(self) -> list[str]:
        """Measured properties the campaign uses: objectives, then constrained properties."""
        out = [o.name for o in self.objectives]
        return out + [c.name for c in self.constraints if c.name not in out]

    def _raw_features(self, df: pd.DataFrame | None) -> np.ndarray:
        if df is None:  # the whole pool
            if self._pool_features is None:
                self._pool_features = np.asarray(self.space.to_features(), dtype=float)
            return self._pool_features
        X = np.asarray(self.space.to_features(df), dtype=float)
        if self.ingredient_features is not None:
            names = list(self.ingredient_features.index)
            A = df[names].to_numpy(dtype=float)
            W = A / np.maximum(A.sum(axis=1, keepdims=True), 1e-12)
            X = np.hstack([X, W @ self.ingredient_features.to_numpy(dtype=float)])
        return X

    def _is_pool(self) -> bool:
        return isinstance(self.space, DiscretePool | CompositionPool)

    def representation(self) -> Representation:
        """The fitted representation (on the pool, or on a seeded sample of the space)."""
        if self._representation is None:
            if self._is_pool():
                ref = self._raw_features(None)
            else:
                ref = self._raw_features(self.space.sample(N_RANDOM_CANDIDATES,
                                                           np.random.default_rng(self.seed)))
            self._representation = Representation(
                self.strategy.representation, self.strategy.n_components, seed=self.seed
            ).fit(ref)
        return self._representation

    def features(self, df: pd.DataFrame | None = None) -> np.ndarray:
        """What the surrogate sees for design rows ``df`` (default: the pool's candidates)."""
        if df is None:
            return self._pool_Z()
        return self.representation().transform(self._raw_features(df[self.feature_columns]
                                                                  if self._is_pool() else df))

    def _pool_Z(self) -> np.ndarray:
        if self._pool_z is None:
            self._pool_z = self.representation().transform(self._raw_features(None))
        return self._pool_z

    # -- reading the state ---------------------------------------------------------------------

    def _observations(self) -> pd.DataFrame:
        return self._log.observations()

    def _suggestions(self, status: str | None = None) -> pd.DataFrame:
        return self._log.suggestions(status)

    def _design_frame(self, designs: Sequence[dict]) -> pd.DataFrame:
        """Stored designs as a frame of the space's columns. Anything else a stored design
        holds is dropped: observations recorded before observe kept only the space's columns
        may carry the suggestion file's ``batch``, ``*_mean``, ``*_std`` and ``acquisition``,
        which would collide with the columns of :meth:`history`."""
        df = pd.DataFrame(list(designs))
        space_columns = self._stored_columns(df)
        df = df[[c for c in df.columns if c in space_columns or c in self.design_columns]]
        for c in self.design_columns:
            if c not in df.columns:
                df[c] = np.nan
        return df

    def batches(self) -> pd.DataFrame:
        """One row per ``suggest`` call: number, model description, acquisition, strategy."""
        return self._log.batches()

    def suggestions(self) -> pd.DataFrame:
        """Every suggestion: id, batch number, status, design columns, predicted mean and std
        per objective (at the time it was chosen), acquisition value."""
        s = self._suggestions()
        b = self.batches()
        number = dict(zip(b["id"], b["number"], strict=True)) if len(b) else {}
        out = pd.DataFrame({
            SUGGESTION_ID: s["id"].astype("int64") if len(s) else pd.Series(dtype="int64"),
            "batch": [number.get(i) for i in s["batch_id"]],
            "status": s["status"],
        })
        design = self._design_frame(s["design"].tolist()) if len(s) else pd.DataFrame(
            columns=self.design_columns)
        out = pd.concat([out.reset_index(drop=True), design.reset_index(drop=True)], axis=1)
        for o in self.objectives:
            out[f"{o.name}_mean"] = [(p or {}).get(o.name, {}).get("mean") for p in s["prediction"]]
            out[f"{o.name}_std"] = [(p or {}).get(o.name, {}).get("std") for p in s["prediction"]]
        out["acquisition"] = s["acquisition_value"].to_numpy() if len(s) else []
        out["created_at"] = s["created_at"].to_numpy() if len(s) else []
        return out

    def pending(self) -> pd.DataFrame:
        """Suggestions still waiting for a result (the same columns as :meth:`suggestions`)."""
        s = self.suggestions()
        return s[s["status"] == "pending"].reset_index(drop=True)

    def history(self) -> pd.DataFrame:
        """Every observation in the order recorded: ``observation_id``, ``suggestion_id``
        (NaN for initial data and unplanned experiments), ``batch`` (0 for those), ``source``,
        design columns, measured properties, ``failed`` (True for an experiment that gave no
        result) and ``failure`` (what went wrong, as recorded; None otherwise), and for one
        objective its ``utility`` and ``best_so_far`` (in the property's units)."""
        o = self._observations()
        s = self._suggestions()
        b = self.batches()
        number = dict(zip(b["id"], b["number"], strict=True)) if len(b) else {}
        batch_of = dict(zip(s["id"], [number.get(x) for x in s["batch_id"]], strict=True)) \
            if len(s) else {}
        out = pd.DataFrame({
            "observation_id": o["id"].astype("int64") if len(o) else pd.Series(dtype="int64"),
            SUGGESTION_ID: pd.array(o["suggestion_id"].tolist(), dtype="Int64"),
            "batch": [int(batch_of.get(x, 0)) if pd.notna(x) else 0 for x in o["suggestion_id"]],
            "source": o["source"],
            "created_at": o["created_at"],
        })
        design = self._design_frame(o["design"].tolist()) if len(o) else pd.DataFrame(
            columns=self.design_columns)
        out = pd.concat([out.reset_index(drop=True), design.reset_index(drop=True)], axis=1)
        for p in self.properties:
            out[p] = [float(v.get(p)) if v.get(p) is not None else np.nan for v in o["values"]]
        out["failed"] = np.array([FAILED_KEY in v for v in o["values"]], dtype=bool)
        out["failure"] = pd.Series([v.get(FAILED_KEY) for v in o["values"]], dtype=object)
        if len(self.objectives) == 1 and len(out):
            obj = self.objectives[0]
            u = obj.utility(out[obj.name].to_numpy(dtype=float))
            out["utility"] = u
            best = np.fmax.accumulate(np.where(np.isnan(u), -np.inf, u))
            out["best_so_far"] = np.where(np.isfinite(best), _from_utility(obj, best), np.nan)
        return out

    def best(self) -> pd.DataFrame:
        """The best observation (one objective: highest utility, ties all kept) or the Pareto
        front of the observations (several objectives), as rows of :meth:`history`."""
        h = self.history()
        if not len(h):
            return h
        Y = h[[o.name for o in self.objectives]].to_numpy(dtype=float)
        ok = ~np.isnan(Y).any(axis=1)
        if self.constraints:
            for c in self.constraints:
                v = h[c.name].to_numpy(dtype=float)
                ok &= ~np.isnan(v) & c.satisfied(np.nan_to_num(v))
        if not ok.any():
            return h.iloc[:0]
        if len(self.objectives) == 1:
            u = self.objectives[0].utility(Y[:, 0])
            u = np.where(ok, u, -np.inf)
            return h[u >= u.max() - 1e-12].reset_index(drop=True)
        U = np.column_stack([o.utility(Y[:, j]) for j, o in enumerate(self.objectives)])
        U[~ok] = np.nan
        return h[pareto_front(U)].reset_index(drop=True)

    def status(self) -> dict:
        """A summary: counts of observations (initial / answered / unplanned), pending and
        batches, and the best result so far."""
        h = self.history()
        s = self._suggestions()
        b = self.batches()
        best = self.best()
        summary = {
            "name": self.name,
            "objectives": [str(o) for o in self.objectives],
            "constraints": [str(c) for c in self.constraints],
            "space": repr(self.space),
            "strategy": self.strategy.as_dict(),
            "observations": len(h),
            "initial": int((h["source"].str.startswith("initial")).sum()) if len(h) else 0,
            "answered": int(h[SUGGESTION_ID].notna().sum()) if len(h) else 0,
            "pending": int((s["status"] == "pending").sum()) if len(s) else 0,
            "cancelled": int((s["status"] == "cancelled").sum()) if len(s) else 0,
            "batches": len(b),
            "failed": int(h["failed"].sum()) if len(h) else 0,
            "best": best[self.design_columns + self.properties].to_dict("records")
            if len(best) else [],
        }
        summary["unplanned"] = summary["observations"] - summary["initial"] - summary["answered"]
        if self.costs is not None:
            done = h[~h["source"].str.startswith("initial")] if len(h) else h
            spent = self.costs.costs(done, strict=False) if len(done) else np.zeros(0)
            summary["cost"] = {
                "model": str(self.costs), "unit": self.costs.unit,
                "spent": float(np.nansum(spent)), "unpriced": int(np.isnan(spent).sum()),
            }
        return summary

    # -- suggest -------------------------------------------------------------------------------

    def _training(self, history: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """Observations usable for fitting: designs with every design column, the objectives'
        values (NaN where not measured)."""
        if not len(history):
            return history, np.zeros((0, len(self.objectives)))
        usable = history[self.feature_columns].notna().all(axis=1).to_numpy()
        h = history[usable].reset_index(drop=True)
        Y = h[[o.name for o in self.objectives]].to_numpy(dtype=float)
        return h, Y

    def _candidates(self, observed: pd.DataFrame, pending: pd.DataFrame, Y: np.ndarray,
                    rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Candidate rows and, for a pool, their positions in it."""
        if self._is_pool():
            taken = pd.concat([f for f in (observed, pending) if len(f)], ignore_index=True) \
                if len(observed) or len(pending) else observed
            mask = np.ones(len(self.space), dtype=bool)
            mask[self._pool_positions(taken)] = False
            pos = np.flatnonzero(mask)
            return self.space.df.iloc[pos].reset_index(drop=True), pos
        parts = [self.space.sample(N_RANDOM_CANDIDATES, rng)]
        local = self._local_moves(observed, Y, rng)
        if local is not None:
            parts.append(local)
        cands = pd.concat(parts, ignore_index=True)
        return self._on_grid(cands, observed, pending), None

    def _on_grid(self, cands: pd.DataFrame, observed: pd.DataFrame,
                 pending: pd.DataFrame) -> pd.DataFrame:
        """Candidates rounded to the space's precision (so the model scores, and the lab gets,
        the rounded experiment), each grid point once, without those already measured or
        pending, which rounding can land on."""
        cands = self.space.round(cands).reset_index(drop=True)
        keys = pd.Series(self._feature_keys(cands), dtype=object)
        done = set()
        for df in (observed, pending):
            rows = df[self.feature_columns].dropna() if len(df) else df
            if len(rows):
                done.update(self._feature_keys(rows))
        keep = ~keys.duplicated().to_numpy() & ~keys.isin(done).to_numpy()
        return cands[keep].reset_index(drop=True)

    def _pool_positions(self, df: pd.DataFrame) -> np.ndarray:
        """Pool positions of the candidates rows of ``df`` refer to (by id where a row has
        one, else by features / composition); rows that are no candidate are ignored."""
        if not len(df):
            return np.zeros(0, dtype=int)
        idc = self.space.id_column
        parts = []
        rest = df
        if idc and idc in df.columns:
            has = df[idc].notna().to_numpy()
            if has.any():
                ids = pd.Index(df.loc[has, idc].tolist())
                pos = self.space.ids.get_indexer(ids)
                parts.append(pos[pos >= 0])
            rest = df[~has]
        cols = self.feature_columns
        if len(rest) and all(c in rest.columns for c in cols):
            rest = rest[cols][rest[cols].notna().all(axis=1)]
            if len(rest):
                parts.append(self.space.positions(rest.reset_index(drop=True)))
        return np.unique(np.concatenate(parts)).astype(int) if parts else np.zeros(0, int)

    def _local_moves(self, observed: pd.DataFrame, Y: np.ndarray,
                     rng: np.random.Generator) -> pd.DataFrame | None:
        """Perturbations of the best results so far, repaired into the space (continuous
        spaces): the random sample alone rarely lands close enough to the best region."""
        if not len(observed) or not hasattr(self.space, "from_features") \
                or not hasattr(self.space, "project"):
            return None
        inside = self.space.contains(observed[self.space.columns])
        if not inside.any():
            return None
        U = np.column_stack([o.utility(Y[:, j]) for j, o in enumerate(self.objectives)])
        if U.shape[1] == 1:
            score = U[:, 0]
        else:  # rank-average over objectives: good in several counts more
            score = np.nanmean(pd.DataFrame(U).rank().to_numpy(), axis=1)
        score = np.where(inside & np.isfinite(score), score, -np.inf)
        top = np.argsort(-score)[: max(1, min(8, int(np.isfinite(score).sum())))]
        top = top[np.isfinite(score[top])]
        if not len(top):
            return None
        F = self.space.to_features(observed.iloc[top][self.space.columns])
        reps = N_LOCAL_CANDIDATES // len(top)
        base = np.repeat(F, reps, axis=0)
        scale = rng.choice([0.02, 0.05, 0.15], size=(len(base), 1))
        moved = self.space.from_features(base + scale * rng.standard_normal(base.shape))
        try:
            return self.space.project(moved)
        except DesignSpaceError:
            return None

    def suggest(self, n: int = 1) -> pd.DataFrame:
        """Propose ``n`` new experiments, record them as pending, and return them.

        Columns: ``suggestion_id`` (quote it in the results file), ``batch``, the design
        columns, ``{objective}_mean`` / ``{objective}_std`` (predicted, in the property's
        units; NaN while exploring), ``p_success`` (when some experiments failed: the
        probability that this one works, which weighted its acquisition), ``cost`` (with a
        cost model: the acquisition is then per unit cost) and ``acquisition``. Pending
        experiments are never proposed again. With fewer than :data:`MIN_OBSERVATIONS`
        results, the batch is space-filling exploration instead of model-based (away from
        every experiment tried, failed ones included; costs are not weighed).

        In a continuous space the candidates are rounded to the space's precision before they
        are scored (``space.round``: amounts still sum exactly to the total, every constraint
        still holds), so the predictions and acquisition values are those of the rounded
        experiments, no two suggestions are the same, and none repeats one measured or pending.
        """
        if isinstance(n, bool) or int(n) != n or n < 1:
            raise CampaignError(f"n must be a positive integer, got {n!r}")
        n = int(n)
        history = self.history()
        pending = self.pending()
        observed, Y = self._training(history)
        batch_number = len(self.batches()) + 1
        rng = np.random.default_rng([self.seed, batch_number])
        cands, pos = self._candidates(observed, pending, Y, rng)
        if len(cands) < n:
            raise CampaignError(
                f"only {len(cands)} candidate(s) left that are neither measured nor pending; "
                f"asked for {n}"
            )
        Z = self._pool_Z()[pos] if pos is not None else self.features(cands)
        n_finite = np.isfinite(Y).sum(axis=0) if len(Y) else np.zeros(len(self.objectives))
        model_info = None
        p_success = None
        cost = (self.costs.costs(cands.reset_index(drop=True), source="candidates")
                if self.costs is not None else None)
        if n_finite.min() < MIN_OBSERVATIONS:
            idx = self._space_filling(Z, observed, pending, n, rng)
            values = np.full(len(idx), np.nan)
            mean = std = np.full((len(idx), len(self.objectives)), np.nan)
            acquisition = {"name": "space-filling", "reason": (
                f"fewer than {MIN_OBSERVATIONS} results for an objective")}
            strategy_name = "space_filling"
        else:
            Zo = self.features(observed)
            Zp = self.features(pending) if len(pending) else None
            cons = [(c, observed[c.name].to_numpy(dtype=float)) for c in self.constraints
                    if c.name in observed.columns]
            failed = observed["failed"].to_numpy(dtype=bool)
            proposal = propose(self.strategy, Z, Zo, Y, self.objectives, n, pending=Zp,
                               constraints=cons, failed=failed if failed.any() else None,
                               cost=cost, seed=self.seed + batch_number)
            idx, values, mean, std = proposal[:4]
            p_success = proposal.p_success
            model_info = proposal.model
            acquisition = model_info["acquisition"]
            strategy_name = self.strategy.batch_strategy
        chosen = cands.iloc[np.asarray(idx)].reset_index(drop=True)
        designs = [{c: _json_value(v) for c, v in row.items()}
                   for row in chosen[self._stored_columns(chosen)].to_dict("records")]
        keys = self._keys(chosen)
        now = _now()
        rows = [{
            "position": i, "key": key, "design": design,
            "prediction": None if not np.isfinite(mean[i]).all() else {
                o.name: {"mean": float(mean[i, j]), "std": float(std[i, j])}
                for j, o in enumerate(self.objectives)},
            "acquisition_value": float(values[i]) if np.isfinite(values[i]) else None,
            "status": "pending", "created_at": now,
        } for i, (design, key) in enumerate(zip(designs, keys, strict=True))]
        # One step: the batch is numbered, and a suggestion already pending (another process
        # may have suggested since the state was read) dropped, where the state is kept.
        number, ids, kept = self._log.add_batch(
            {"model": model_info, "acquisition": to_jsonable(acquisition),
             "strategy": strategy_name, "created_at": now}, rows)
        out = pd.DataFrame({SUGGESTION_ID: np.asarray(ids, dtype="int64"),
                            "batch": number})
        out = pd.concat([out, chosen.iloc[kept].reset_index(drop=True)], axis=1)
        for j, o in enumerate(self.objectives):
            out[f"{o.name}_mean"] = mean[kept, j]
            out[f"{o.name}_std"] = std[kept, j]
        if p_success is not None:
            out["p_success"] = p_success[kept]
        if cost is not None:
            name = "cost" if "cost" not in out.columns else "experiment_cost"
            shown = self.costs.column == "cost" and not self.costs.ingredients \
                and self.costs.per_experiment == 0  # the pool's own cost column says it all
            if not shown:
                out[name] = cost[np.asarray(idx)][kept]
        out["acquisition"] = values[kept]
        return out

    def stopping(self, margin: float = 0.0):
        """How likely it is that an unmeasured candidate beats the best result so far (by more
        than ``margin``, in the objective's units), under the surrogate fitted on everything
        measured: a :class:`~matforge.design.stopping.StoppingEstimate` (its ``summary()`` and
        ``assumption`` say what it means; see :mod:`matforge.design.stopping`).

        The candidates are those :meth:`suggest` would score, pending ones included (they are
        not measured yet): every pool candidate not measured, or for a continuous space the
        same seeded sample of 2,048 points plus moves around the best results (so the chance
        over the whole continuous space is, if anything, higher). Failed experiments and
        constraints enter as each candidate's probability of succeeding and meeting them.
        With fewer than :data:`MIN_OBSERVATIONS_STOPPING` results there is no estimate
        (``probability`` None, ``reason`` says so).
        """
        from matforge.design.stopping import StoppingEstimate, probability_better_remains

        history = self.history()
        observed, Y = self._training(history)
        n_finite = np.isfinite(Y).sum(axis=0) if len(Y) else np.zeros(len(self.objectives))
        if n_finite.min() < MIN_OBSERVATIONS_STOPPING:
            return StoppingEstimate(None, margin=float(margin), reason=(
                f"fewer than {MIN_OBSERVATIONS_STOPPING} results for an objective, so no "
                "estimate yet"))
        rng = np.random.default_rng([self.seed, 0])
        cands, pos = self._candidates(observed, observed.iloc[:0], Y, rng)
        if not len(cands):
            return StoppingEstimate(0.0, 0.0, 0.0, margin=float(margin),
                                    reason="every candidate has been measured")
        Z = self._pool_Z()[pos] if pos is not None else self.features(cands)
        Zo = self.features(observed)
        failed = observed["failed"].to_numpy(dtype=bool)
        cons = [(c, observed[c.name].to_numpy(dtype=float)) for c in self.constraints
                if c.name in observed.columns]
        fitted = fit_models(self.strategy, Zo, Y, self.objectives, n_features=Z.shape[1],
                            constraints=cons, failed=failed if failed.any() else None,
                            seed=self.seed)
        pf = None
        for c, model in fitted.constraints:
            cm, cs = model.predict(Z, return_std=True)
            pf = c.probability(cm, cs) if pf is None else pf * c.probability(cm, cs)
        if fitted.feasibility is not None:
            ps = fitted.feasibility.p_success(Z)
            pf = ps if pf is None else pf * ps
        return probability_better_remains(fitted.surrogates, Z, self.objectives, Y,
                                          X_observed=Zo, p_feasible=pf, margin=margin,
                                          seed=self.seed)

    def _space_filling(self, Z, observed, pending, n, rng) -> np.ndarray:
        """Greedy max-min distance picks (scaled features), away from what was done."""
        scale = Z.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        Zs = Z / scale
        done = [self.features(df) / scale for df in (observed, pending) if len(df)]
        ref = np.vstack(done) if done else np.zeros((0, Z.shape[1]))
        if len(Zs) > 20_000:
            sub = rng.choice(len(Zs), 20_000, replace=False)
        else:
            sub = np.arange(len(Zs))
        d = np.full(len(sub), np.inf)
        for r in ref:
            d = np.minimum(d, np.sum((Zs[sub] - r) ** 2, axis=1))
        picks = []
        for _ in range(n):
            if np.isinf(d).all():
                i = int(rng.integers(len(sub)))
            else:
                i = int(np.argmax(np.where(np.isin(np.arange(len(sub)), picks), -1, d)))
            picks.append(i)
            d = np.minimum(d, np.sum((Zs[sub] - Zs[sub[i]]) ** 2, axis=1))
            d[i] = -1
        return sub[np.asarray(picks)]

    def _stored_columns(self, df: pd.DataFrame) -> list[str]:
        if self._is_pool():
            return list(self.space.df.columns)
        return list(self.space.columns)

    def _feature_keys(self, df: pd.DataFrame) -> list[str]:
        """Identity of design rows by what they are: composition, or rounded feature values."""
        if isinstance(self.space, CompositionPool):
            return [f"composition={k}" for k in self.space.keys(df)]
        cols = self.feature_columns
        return [json.dumps({c: _round(v) for c, v in row.items()}, sort_keys=True)
                for row in df[cols].to_dict("records")]

    def _identities(self, designs: Sequence[dict]) -> list[str]:
        """What a stored design is, for recognising a result recorded twice: its feature key
        when it has the feature columns, else its id."""
        if not designs:
            return []
        frame = self._design_frame(designs)
        cols = self.feature_columns
        complete = frame[cols].notna().all(axis=1).to_numpy()
        out = np.empty(len(frame), dtype=object)
        if complete.any():
            out[complete] = self._feature_keys(frame[complete])
        if (~complete).any():
            out[~complete] = self._keys(frame[~complete])
        return out.tolist()

    def _keys(self, df: pd.DataFrame) -> list[str]:
        """Identity of design rows: the pool id when the row has one, else
        :meth:`_feature_keys`."""
        idc = self.space.id_column if self._is_pool() else None
        if idc is None or idc not in df.columns:
            return self._feature_keys(df)
        has = df[idc].notna().to_numpy()
        keys = np.empty(len(df), dtype=object)
        keys[has] = [f"id={_json_value(v)}" for v in df.loc[has, idc]]
        if (~has).any():
            keys[~has] = self._feature_keys(df[~has])
        return keys.tolist()

    # -- observe -------------------------------------------------------------------------------

    def _observation_rows(self, df: pd.DataFrame, source: str) -> list[dict]:
        """Validated observation rows (without campaign or suggestion ids) from a results
        table: every row must carry the design columns and at least one finite property, or
        be marked failed (:data:`FAILED_COLUMN`)."""
        if not isinstance(df, pd.DataFrame):
            raise CampaignError(f"results must be a DataFrame, got {type(df).__name__}")
        df = df.reset_index(drop=True)
        failures = self._failures(df, source)
        self._check_values(df, source, need_design=True, failures=failures)
        designs = self._designs(df)
        keys = self._keys(df)
        values = self._values(df, failures)
        now, user = _now(), _user()
        return [{"suggestion_id": None, "key": k, "design": d, "values": v, "source": source,
                 "created_at": now, "created_by": user}
                for d, k, v in zip(designs, keys, values, strict=True)]

    def _failures(self, df: pd.DataFrame, source: str,
                  blank_means_failed: bool = False) -> list[str | None]:
        """Per row of ``df``: why the experiment failed, or None if it did not. Read from the
        :data:`FAILED_COLUMN` column (blank / no / false / 0: it worked; yes / true / 1 / x:
        it failed; any other text: it failed, and that is what went wrong) and, with
        ``blank_means_failed``, from rows without any measured value ("no result")."""
        out: list[str | None] = [None] * len(df)
        column = FAILED_COLUMN in df.columns and FAILED_COLUMN not in self.properties \
            and FAILED_COLUMN not in self._stored_columns(df)
        for i, v in enumerate(df[FAILED_COLUMN] if column else ()):
            if v is None or isinstance(v, float) and np.isnan(v):
                continue
            if isinstance(v, bool | np.bool_):
                out[i] = "failed" if v else None
            elif isinstance(v, int | float | np.number):
                if v not in (0, 1):
                    raise CampaignError(
                        f"{source}: column {FAILED_COLUMN!r}, row {i + 1}: {_json_value(v)!r}; "
                        f"write yes or no (1 or 0), or what went wrong ('did not form')"
                    )
                out[i] = "failed" if v == 1 else None
            else:
                text = " ".join(str(v).split())
                low = text.lower()
                out[i] = None if low in _NOT_FAILED else "failed" if low in _FAILED \
                    else text[:500]
        if blank_means_failed:
            props = [p for p in self.properties if p in df.columns]
            blank = (df[props].apply(pd.to_numeric, errors="coerce").isna().all(axis=1)
                     .to_numpy() if props else np.ones(len(df), dtype=bool))
            for i in np.flatnonzero(blank):
                out[i] = out[i] or "no result"
        return out

    def _check_values(self, df: pd.DataFrame, source: str, need_design: bool,
                      failures: Sequence[str | None] | None = None) -> None:
        failed = np.array([f is not None for f in failures], dtype=bool) if failures \
            else np.zeros(len(df), dtype=bool)
        props = [p for p in self.properties if p in df.columns]
        if not props and not failed.all():
            raise CampaignError(
                f"{source}: no measured property column; expected one of {self.properties} "
                f"(have {list(df.columns)})"
            )
        for p in props:
            col = pd.to_numeric(df[p], errors="coerce")
            bad = col.isna() & df[p].notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise CampaignError(
                    f"{source}: column {p!r}, row {i + 1}: {df[p].iloc[i]!r} is not a number"
                )
            inf = ~np.isfinite(col.fillna(0).to_numpy(dtype=float))
            if inf.any():
                i = int(np.flatnonzero(inf)[0])
                raise CampaignError(f"{source}: column {p!r}, row {i + 1}: value is not finite")
        none = (df[props].apply(pd.to_numeric, errors="coerce").isna().all(axis=1).to_numpy()
                if props else np.ones(len(df), dtype=bool))
        if (none & ~failed).any():
            rows = [int(i) + 1 for i in np.flatnonzero(none & ~failed)[:5]]
            raise CampaignError(
                f"{source}: row(s) {rows} have no measured value in {props}; an experiment "
                f"that gave no result is recorded as failed: say so in a {FAILED_COLUMN!r} "
                f"column (yes, or what went wrong), or with `observe --failed`"
            )
        if (failed & ~none).any():
            i = int(np.flatnonzero(failed & ~none)[0])
            measured = [p for p in props if pd.notna(pd.to_numeric(df[p].iloc[i],
                                                                   errors="coerce"))]
            raise CampaignError(
                f"{source}: row {i + 1} is marked failed ({failures[i]!r}) but has a value for "
                f"{measured}; a failed experiment has no result: clear one or the other"
            )
        if need_design:
            cols = self.feature_columns
            idc = self.space.id_column if self._is_pool() else None
            if idc is not None and idc in df.columns and df[idc].notna().all():
                cols = [idc]
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise CampaignError(
                    f"{source}: missing design column(s) {missing} (or a {SUGGESTION_ID!r} "
                    f"column to match the suggestions)"
                )
            blank = df[cols].isna().any(axis=1).to_numpy()
            if blank.any():
                i = int(np.flatnonzero(blank)[0])
                raise CampaignError(f"{source}: row {i + 1} has an empty design column")
            if isinstance(self.space, CompositionPool) and self.space.formula_column in cols:
                composition_keys(df[self.space.formula_column].tolist(), source=source)
        self._check_levels(df, source)

    def _designs(self, df: pd.DataFrame) -> list[dict]:
        """Design values of result rows: the space's columns that the rows carry (not the
        properties, the suggestion id or anything else, such as the predictions of a
        suggestion file handed back); a pool candidate named by its id alone gets the pool's
        columns."""
        space_columns = self._stored_columns(df)
        cols = [c for c in df.columns if c in space_columns and c not in self.properties
                and c != SUGGESTION_ID]
        designs = [{c: _json_value(v) for c, v in row.items()}
                   for row in df[cols].to_dict("records")] if cols else [{} for _ in range(len(df))]
        idc = self.space.id_column if self._is_pool() else None
        if idc is not None and idc in df.columns:
            pos = self.space.ids.get_indexer(pd.Index(df[idc].tolist()))
            for d, p in zip(designs, pos, strict=True):
                if p >= 0:
                    pool_row = self.space.df.iloc[int(p)].to_dict()
                    for c, v in pool_row.items():
                        if d.get(c) is None:
                            d[c] = _json_value(v)
        return designs

    def _check_levels(self, df: pd.DataFrame, source: str) -> None:
        """A categorical or ordinal design value the space does not declare is an error (it
        would be encoded as no level at all), naming the column, row and levels."""
        try:
            self.space.check_levels(df, source)
        except DesignSpaceError as exc:
            raise CampaignError(f"{exc}; a level the campaign should know must be declared when "
                                f"it is created") from None

    def _values(self, df: pd.DataFrame, failures: Sequence[str | None] | None = None
                ) -> list[dict]:
        props = [p for p in self.properties if p in df.columns]
        V = df[props].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float) if props \
            else np.zeros((len(df), 0))
        out = [{p: float(v) for p, v in zip(props, row, strict=True) if np.isfinite(v)}
               for row in V]
        for d, f in zip(out, failures or [None] * len(out), strict=True):
            if f is not None:
                d[FAILED_KEY] = f
        return out

    def _match_pending(self, df: pd.DataFrame, pending: pd.DataFrame) -> np.ndarray:
        """For each result row, the pending suggestion id it answers by design (or -1)."""
        out = np.full(len(df), -1, dtype=np.int64)
        if not len(pending):
            return out
        pend_design = self._design_frame(pending["design"].tolist())
        pend_ids = pending["id"].to_numpy()
        used: set[int] = set()
        if self._is_pool():
            # A result names its candidate by id, or by features / composition.
            idc = self.space.id_column
            row_id = self._keys(df)
            row_feat = self._feature_keys(df) if all(
                c in df.columns for c in self.feature_columns) else [None] * len(df)
            pend_id = pending["key"].tolist()
            pend_feat = self._feature_keys(pend_design)
            for i in range(len(df)):
                by_id = idc is not None and idc in df.columns and pd.notna(df[idc].iloc[i])
                for j in range(len(pending)):
                    hit = row_id[i] == pend_id[j] if by_id else row_feat[i] == pend_feat[j]
                    if hit and pend_ids[j] not in used:
                        out[i] = pend_ids[j]
                        used.add(pend_ids[j])
                        break
            return out
        cols = self.design_columns
        num = [c for c in cols if pd.api.types.is_numeric_dtype(pend_design[c])]
        other = [c for c in cols if c not in num]
        A = pd.DataFrame(df[num]).apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        B = pend_design[num].to_numpy(dtype=float)
        scale = np.maximum(np.nanmax(np.abs(B), axis=0), 1.0) if len(num) else np.ones(0)
        for i in range(len(df)):
            close = np.all(np.abs(B - A[i]) <= MATCH_RTOL * scale + 1e-12, axis=1)
            for c in other:
                close &= pend_design[c].astype(str).to_numpy() == str(df[c].iloc[i])
            for j in np.flatnonzero(close):
                if pend_ids[j] not in used:
                    out[i] = pend_ids[j]
                    used.add(pend_ids[j])
                    break
        return out

    def observe(self, results: pd.DataFrame, source: str | None = None, *,
                blank_means_failed: bool = False) -> ObserveReport:
        """Record measured results (one transaction).

        ``results`` has the measured properties (objectives, constrained properties; a blank
        cell = not measured) and either a ``suggestion_id`` column or the design columns.
        An experiment that failed without a result (nothing formed, nothing to measure) is
        marked in a ``failed`` column: ``yes`` / ``true`` / ``1`` / ``x``, or what went wrong
        (``did not form``); blank / ``no`` / ``0``: it worked. With ``blank_means_failed``,
        every row without any measured value is a failure ("no result") too. A failure is
        recorded with its reason (``history()["failed"]``, ``["failure"]``) and answers its
        suggestion; the surrogates do not see it, a classifier of success does (see
        :meth:`suggest`). A failed row with a measured value is refused.
        Rows are matched to suggestions by ``suggestion_id`` when given, otherwise to a
        pending suggestion with the same design (same pool candidate or composition, or design
        values equal within a relative 1e-6); a matched suggestion becomes ``observed``.
        Unmatched rows are recorded as unplanned experiments. A row identical to one already
        recorded (same design, same values) is skipped, so re-running ``observe`` on the same
        file after a crash records nothing twice. Raises :class:`CampaignError` (nothing
        written) for an unknown suggestion id, a non-numeric value, a row without any value
        that is not marked failed, or a categorical / ordinal level the space does not declare.
        """
        if not isinstance(results, pd.DataFrame):
            raise CampaignError(f"results must be a DataFrame, got {type(results).__name__}")
        source = f"observe:{source}" if source else "observe"
        df = results.reset_index(drop=True)
        if not len(df):
            return ObserveReport()
        failures = self._failures(df, source, blank_means_failed)
        self._check_values(df, source, need_design=False, failures=failures)
        by_id = np.full(len(df), -1, dtype=np.int64)
        if SUGGESTION_ID in df.columns:
            ids = pd.to_numeric(df[SUGGESTION_ID], errors="coerce")
            bad = ids.isna() & df[SUGGESTION_ID].notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise CampaignError(f"{source}: row {i + 1}: suggestion_id "
                                    f"{df[SUGGESTION_ID].iloc[i]!r} is not a number")
            by_id = ids.fillna(-1).to_numpy(dtype=np.int64)
        no_id = by_id < 0
        if no_id.any():
            self._check_values(df[no_id], source, need_design=True,
                               failures=[f for f, k in zip(failures, no_id, strict=True) if k])
        values = self._values(df, failures)
        now, user = _now(), _user()
        report = ObserveReport()

        def plan(known: dict, stored: list) -> tuple[list[dict], list[int]]:
            """What to write, given the suggestions and results recorded so far (called with
            the campaign locked, where it is kept)."""
            unknown = [int(i) for i in by_id[by_id >= 0] if int(i) not in known]
            if unknown:
                raise CampaignError(
                    f"{source}: suggestion_id(s) {unknown[:5]} are not suggestions of campaign "
                    f"{self.name!r}"
                )
            pending = pd.DataFrame(
                [{"id": r.id, "key": r.key, "design": r.design} for r in known.values()
                 if r.status == "pending" and r.id not in set(by_id.tolist())],
                columns=["id", "key", "design"],
            )
            by_design = np.full(len(df), -1, dtype=np.int64)
            if no_id.any():
                by_design[no_id] = self._match_pending(df[no_id].reset_index(drop=True), pending)
            match = np.where(by_id >= 0, by_id, by_design)
            seen = set(zip(self._identities([d for d, _ in stored]),
                           [json.dumps(v, sort_keys=True) for _, v in stored], strict=True))
            design_rows = self._designs(df)
            rows, answered = [], []
            for i in range(len(df)):
                sid = int(match[i])
                if sid >= 0:
                    design = {**known[sid].design, **{k: v for k, v in design_rows[i].items()
                                                      if v is not None}}
                    key = known[sid].key
                else:
                    design = design_rows[i]
                    key = self._keys(df.iloc[[i]])[0]
                fingerprint = (self._identities([design])[0],
                               json.dumps(values[i], sort_keys=True))
                if fingerprint in seen:
                    report.duplicates += 1
                    continue
                seen.add(fingerprint)
                rows.append({"suggestion_id": sid if sid >= 0 else None,
                             "key": key, "design": design, "values": values[i],
                             "source": source, "created_at": now, "created_by": user})
                if sid >= 0:
                    answered.append(sid)
                    report.matched += 1
                else:
                    report.unplanned += 1
                report.failed += failures[i] is not None
            return rows, answered

        report.observation_ids = self._log.record(plan, now)
        return report

    def cancel(self, suggestion_ids: Sequence[int] | None = None) -> int:
        """Mark pending suggestions as cancelled (all of them by default): they will not be
        waited for, and may be proposed again. Returns how many were cancelled."""
        return self._log.cancel(suggestion_ids, _now())

    def _repr_html_(self) -> str:
        from matforge.notebook import campaign_html

        return campaign_html(self.status())



def _round(v):
    v = _json_value(v)
    if isinstance(v, float):
        return float(f"{v:.9g}")
    return v


def _from_utility(objective: Objective, u: np.ndarray) -> np.ndarray:
    """Property value (max / min) or distance to the target (target / range) of utilities."""
    if objective.kind == "max":
        return u
    return -u


def _version() -> str:
    from matforge import __version__

    return __version__
