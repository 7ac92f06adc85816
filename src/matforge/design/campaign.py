"""Sequential-learning campaigns: ask for the next experiments, tell the results, in the store.

>>> from matforge.design.campaign import Campaign
>>> c = Campaign.create("lab.db", "blends", space, ["degradation min"], initial=past_df)
>>> batch = c.suggest(5)            # DataFrame: suggestion_id, design columns, predictions
>>> c.observe(results_df)           # matched to the suggestions by id or by design values
>>> c.best(), c.history()

A campaign's whole state lives in the store (:mod:`matforge.store.campaigns`): the design space
(``as_dict``), the objectives, the strategy, every suggestion with the model and acquisition
value that produced it and its status (pending / observed / cancelled), and every observation.
Each ``suggest`` and each ``observe`` is one transaction, so a process killed at any moment
loses nothing that was reported as done, and a restarted one never proposes again what is
pending: pending experiments are excluded from the candidates and fantasised around (kriging
believer) by the next batch.

What a lab needs around the loop: categorical and ordinal design columns (a solvent, a catalyst
type, a grade), failed experiments recorded as such (a ``failed`` column in the results, see
:meth:`Campaign.observe`) and learned from (the acquisition is weighted by the probability
that a candidate succeeds, :mod:`matforge.design.feasibility`), costs (``costs=``,
:class:`~matforge.design.costs.CostModel`: the acquisition per unit cost), and a stopping
estimate (:meth:`Campaign.stopping`, :mod:`matforge.design.stopping`).

Design spaces: any :class:`~matforge.design.spaces.DesignSpace` (a
:class:`~matforge.design.spaces.DiscretePool` of candidates, a
:class:`~matforge.design.spaces.ParameterSpace`, a
:class:`~matforge.design.spaces.FormulationSpace`) or a :class:`CompositionPool` of candidate
formulas, which the surrogate sees through composition descriptors.
"""

from __future__ import annotations

import getpass
import json
import math
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
    DesignSpace,
    DiscretePool,
    FormulationSpace,
    ParameterSpace,
    space_from_dict,
)
from matforge.design.strategy import (
    COMPOSITION_FEATURES,
    Representation,
    Strategy,
    composition_feature_spec,
    composition_features,
    default_strategy,
    fit_models,
    propose,
    to_jsonable,
)
from matforge.errors import DesignSpaceError, MatforgeError

__all__ = [
    "Campaign",
    "CampaignError",
    "CompositionPool",
    "FAILED_COLUMN",
    "ObserveReport",
    "composition_keys",
    "infer_space",
    "load_space",
]

# Fewer finite results than this for an objective: explore (space-filling) instead of modelling.
MIN_OBSERVATIONS = 5
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


class CampaignError(MatforgeError, ValueError):
    """A campaign operation that cannot be done (unknown campaign, bad results file, ...)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def _json_value(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)


# -----------------------------------------------------------------------------------------------
# Candidate compositions
# -----------------------------------------------------------------------------------------------


def composition_keys(formulas: Sequence[str], source: str | None = None) -> list[str]:
    """Canonical key of each formula: its elements and atomic fractions (6 significant
    digits), so ``"Fe2O3"``, ``"O3Fe2"`` and ``"Fe0.4O0.6"`` share one key.

    Raises :class:`~matforge.errors.InvalidFormula` naming the first formula that does not parse.
    """
    from matforge.chem.batch import CompositionBatch

    batch = CompositionBatch.from_formulas([str(f) for f in formulas], errors="raise",
                                           source=source)
    F = batch.fractions.tocsr()
    F.sort_indices()
    symbols = batch.elements
    keys = []
    for r in range(F.shape[0]):
        lo, hi = F.indptr[r], F.indptr[r + 1]
        keys.append(" ".join(f"{symbols[j]}{float(f'{v:.6g}'):g}"
                             for j, v in zip(F.indices[lo:hi], F.data[lo:hi], strict=True)))
    return keys


class CompositionPool(DesignSpace):
    """A fixed table of candidate compositions (a formula column, plus any other columns).

    The surrogate sees composition descriptors of the formulas (``featurizer``, a
    :func:`~matforge.models.pipeline.build_featurizer` spec; ``"auto"``:
    :func:`~matforge.design.strategy.composition_feature_spec` of the pool, i.e. element
    fractions for a pool of at most 16 elements, Magpie statistics and fractions beyond).
    ``feature_columns``: other design columns the surrogate sees beside the composition (a
    synthesis route, a solvent, an annealing temperature), encoded as in a
    :class:`~matforge.design.spaces.DiscretePool` (numbers as they are, text one-hot, and
    ``categorical`` / ``ordinal`` as declared there). Rows are matched by ``id_column``
    when given rows carry it, otherwise by composition (see :func:`composition_keys`) and the
    values of ``feature_columns``, so every pool row of that composition (and those values)
    matches.
    """

    def __init__(self, df: pd.DataFrame, formula_column: str = "formula",
                 id_column: str | None = None, featurizer: Sequence[str] | str = "auto",
                 feature_columns: Sequence[str] = (), categorical=None, ordinal=None):
        if not isinstance(df, pd.DataFrame) or len(df) == 0:
            raise DesignSpaceError("CompositionPool needs a non-empty DataFrame of candidates")
        if formula_column not in df.columns:
            raise DesignSpaceError(
                f"CompositionPool: no formula column {formula_column!r}; have {list(df.columns)}"
            )
        if id_column is not None:
            if id_column not in df.columns:
                raise DesignSpaceError(f"CompositionPool: no id column {id_column!r}")
            ids = pd.Index(df[id_column])
        else:
            ids = pd.RangeIndex(len(df))
        if not ids.is_unique:
            raise DesignSpaceError(
                f"CompositionPool: duplicate ids in {id_column!r}: "
                f"{list(ids[ids.duplicated()].unique()[:5])}"
            )
        self.df = df.reset_index(drop=True)
        self.formula_column = formula_column
        self.id_column = id_column
        if isinstance(featurizer, str):
            if featurizer != "auto":
                raise DesignSpaceError(f"featurizer must be 'auto' or a list, got {featurizer!r}")
            featurizer = composition_feature_spec(self.df[formula_column].tolist())
        self.featurizer = list(featurizer)
        self._ids = ids
        self.extra_columns = [str(c) for c in feature_columns]
        bad = [c for c in self.extra_columns if c in (formula_column, id_column)]
        if bad:
            raise DesignSpaceError(f"CompositionPool: {bad} cannot be extra feature columns")
        self._extra = DiscretePool(self.df, feature_columns=self.extra_columns,
                                   categorical=categorical, ordinal=ordinal) \
            if self.extra_columns else None
        self._keys = self._with_extras(
            np.array(composition_keys(self.df[formula_column].tolist(),
                                      source="candidate pool"), dtype=object), self.df)
        self._features = None

    def _with_extras(self, keys: np.ndarray, df: pd.DataFrame) -> np.ndarray:
        """Composition keys, followed by the extra feature columns' values when there are."""
        if self._extra is None:
            return keys
        missing = [c for c in self.extra_columns if c not in df.columns]
        if missing:
            raise DesignSpaceError(f"rows need the column(s) {missing}")
        extra = self._extra._keys(df)
        tails = [json.dumps([_json_value(v) for v in row]) for row in extra.to_numpy().tolist()]
        return np.array([f"{k} | {t}" for k, t in zip(keys, tails, strict=True)], dtype=object)

    def check_levels(self, df: pd.DataFrame, source: str = "rows") -> None:
        if self._extra is not None:
            self._extra.check_levels(df, source)
    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        return f"CompositionPool({len(self)} candidates, formula={self.formula_column!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, CompositionPool) and self.as_dict() == other.as_dict()

    __hash__ = None

    @property
    def columns(self) -> list[str]:
        return list(self.df.columns)

    @property
    def feature_names(self) -> list[str]:
        from matforge.models.pipeline import build_featurizer

        extra = self._extra.feature_names if self._extra is not None else []
        return list(build_featurizer(self.featurizer).feature_labels()) + extra

    @property
    def ids(self) -> pd.Index:
        return self._ids

    def keys(self, df: pd.DataFrame) -> np.ndarray:
        """Composition keys of the rows of ``df`` (pool rows: cached)."""
        if df is self.df:
            return self._keys
        if self.formula_column not in df.columns:
            raise DesignSpaceError(f"rows need a {self.formula_column!r} column")
        return self._with_extras(
            np.array(composition_keys(df[self.formula_column].tolist()), dtype=object), df)

    def to_features(self, df: pd.DataFrame | None = None) -> np.ndarray:
        """Composition descriptors of ``df`` (default: the pool, computed once)."""
        if df is None:
            if self._features is None:
                F = composition_features(self.df[self.formula_column].tolist(), self.featurizer)
                if self._extra is not None:
                    F = np.hstack([F, self._extra.to_features()])
                self._features = F
            return self._features
        if self.formula_column not in df.columns:
            raise DesignSpaceError(f"rows need a {self.formula_column!r} column")
        F = composition_features(df[self.formula_column].tolist(), self.featurizer)
        if self._extra is not None:
            F = np.hstack([F, self._extra.to_features(df)])
        return F

    def _match(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if self.id_column is not None and self.id_column in df.columns:
            pos = self._ids.get_indexer(pd.Index(df[self.id_column]))
            rows = np.flatnonzero(pos >= 0)
            return rows, pos[rows]
        left = pd.DataFrame({"k": self.keys(df), "_row": np.arange(len(df))})
        right = pd.DataFrame({"k": self._keys, "_pos": np.arange(len(self))})
        m = left.merge(right, on="k")
        return m["_row"].to_numpy(), m["_pos"].to_numpy()

    def positions(self, df: pd.DataFrame) -> np.ndarray:
        return np.unique(self._match(df)[1])

    def available(self, exclude=None) -> np.ndarray:
        mask = np.ones(len(self), dtype=bool)
        if exclude is not None and len(exclude):
            mask[self.positions(exclude)] = False
        return mask

    def candidates(self, exclude=None) -> pd.DataFrame:
        return self.df[self.available(exclude)]

    def sample(self, n: int, rng=None, exclude=None) -> pd.DataFrame:
        pos = np.flatnonzero(self.available(exclude))
        if n > len(pos):
            raise DesignSpaceError(f"CompositionPool: asked for {n}, {len(pos)} available")
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return self.df.iloc[np.sort(rng.choice(pos, size=int(n), replace=False))]

    def contains(self, df: pd.DataFrame) -> np.ndarray:
        ok = np.zeros(len(df), dtype=bool)
        ok[self._match(df)[0]] = True
        return ok

    def infeasible_reason(self, row) -> str | None:
        frame = row.to_frame().T if isinstance(row, pd.Series) else pd.DataFrame([dict(row)])
        if self.contains(frame)[0]:
            return None
        return f"{frame[self.formula_column].iloc[0]!r} is not a candidate of the pool"

    def as_dict(self) -> dict:
        d = {
            "@class": "CompositionPool",
            "formula_column": self.formula_column,
            "id_column": self.id_column,
            "featurizer": self.featurizer,
            "columns": [str(c) for c in self.df.columns],
            "dtypes": [str(t) for t in self.df.dtypes],
            "data": {str(c): [_json_value(v) for v in self.df[c].tolist()]
                     for c in self.df.columns},
        }
        if self._extra is not None:  # absent: a pool of compositions alone (as before)
            d["feature_columns"] = list(self.extra_columns)
            declared = self._extra.as_dict()
            d.update({k: declared[k] for k in ("categorical", "ordinal") if k in declared})
        return d

    @classmethod
    def _from_dict(cls, d: dict) -> CompositionPool:
        df = pd.DataFrame({c: d["data"][c] for c in d["columns"]}, columns=d["columns"])
        for c, t in zip(d["columns"], d["dtypes"], strict=True):
            try:
                df[c] = df[c].astype(t)
            except (TypeError, ValueError):
                pass
        return cls(df, d["formula_column"], d.get("id_column"),
                   d.get("featurizer", COMPOSITION_FEATURES),
                   feature_columns=d.get("feature_columns", ()),
                   categorical=d.get("categorical"), ordinal=d.get("ordinal"))


def load_space(d: dict) -> DesignSpace:
    """Any design space from its ``as_dict`` (including :class:`CompositionPool`)."""
    if isinstance(d, Mapping) and d.get("@class") == "CompositionPool":
        return CompositionPool._from_dict(d)
    return space_from_dict(d)


# -----------------------------------------------------------------------------------------------
# The campaign
# -----------------------------------------------------------------------------------------------


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


def _open_store(store):
    from matforge.store import Store

    return store if isinstance(store, Store) else Store(store)


def _tables():
    from matforge.store import campaigns as tables

    return tables


def _in_project(campaigns, project_id: int | None):
    """SQL condition: the campaign belongs to project ``project_id`` (None: to no project)."""
    col = campaigns.c.project_id
    return col.is_(None) if project_id is None else col == project_id


class Campaign:
    """A sequential-learning campaign kept in a :class:`~matforge.store.Store`.

    Create one with :meth:`create`, reopen it (in any process) with :meth:`load`. See the
    module docstring.
    """

    def __init__(self, store, name: str, campaign_id: int, config: dict):
        self.store = store
        self.name = name
        self.id = campaign_id
        self.config = config
        self.space = load_space(config["space"])
        self.objectives: list[Objective] = [objective_from_dict(o) for o in config["objectives"]]
        self.constraints: list[Constraint] = [Constraint.from_dict(c)
                                              for c in config.get("constraints", [])]
        self.strategy = Strategy.from_dict(config["strategy"])
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

    # -- creation ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        store,
        name: str,
        space: DesignSpace,
        objectives: Sequence[Objective | str] | Objective | str,
        *,
        model: str = "auto",
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
        project_id: int | None = None,
    ) -> Campaign:
        """A new campaign named ``name`` in ``store`` (a :class:`Store`, URL or path).

        ``objectives``: one or more objectives or their text (``"yield_strength max"``,
        ``"gap in [1.2, 1.4]"``). ``model`` (``"auto"``, ``"rf"``, ``"gp"``, ``"boosted"``),
        ``acquisition`` (``"auto"`` or a short name such as ``"ei"``, ``"ucb"``, ``"mli"``)
        and ``batch_strategy`` (``"kriging_believer"``, ``"local_penalization"``, ``"top"``)
        override :func:`~matforge.design.strategy.default_strategy`
        (or pass a whole ``strategy``). ``constraints`` on measured properties
        (``"density < 5"``) weight the acquisition by the probability of meeting them.
        ``ingredient_features`` (formulation spaces): a table indexed by ingredient name whose
        amount-weighted means are added to the surrogate's features. ``precision``: the steps
        suggestions are rounded to (a number for every ingredient amount and continuous
        parameter, or ``{"amounts": 0.005, "temperature": 5, "*": ...}``; 0: not rounded;
        default: the space's own, see :meth:`~matforge.design.spaces.ParameterSpace.round`),
        kept in the stored space. ``costs``: a
        :class:`~matforge.design.costs.CostModel` (or its ``as_dict``) pricing each candidate
        experiment; suggestions then maximise the acquisition per unit cost. ``initial``:
        results from before the campaign (design columns and measured properties; failed
        experiments marked in a ``failed`` column), recorded as observations in the same
        transaction. ``project_id``: the store project (row id) the
        campaign belongs to (the server's campaigns); None for a campaign of the store as a
        whole, which :meth:`load` and :meth:`names` see. Raises :class:`CampaignError` if the
        name is taken (per project, or among the campaigns without one).
        """
        store = _open_store(store)
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise CampaignError(f"a campaign name must be a non-empty string (≤ 200), got {name!r}")
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
        if model != "auto":
            overrides["model"] = model
            overrides["model_params"] = {}
        if acquisition != "auto":
            overrides["acquisition"] = acquisition
        if batch_strategy is not None:
            overrides["batch_strategy"] = batch_strategy
        strat = Strategy.from_dict({**strat.as_dict(), **overrides})
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
        t = _tables()
        import sqlalchemy as sa

        from matforge.store.database import write_transaction

        probe = cls(store, name, -1, config)  # validates the config before writing anything
        rows = probe._observation_rows(initial, source) if initial is not None else []
        with write_transaction(store.engine) as conn:
            taken = conn.execute(sa.select(t.campaigns.c.id).where(
                t.campaigns.c.name == name, _in_project(t.campaigns, project_id)))
            if taken.first() is not None:
                where = "" if project_id is None else " (this project)"
                raise CampaignError(f"a campaign named {name!r} already exists in {store!r}{where}")
            cid = conn.execute(
                t.campaigns.insert().values(name=name, config=config, created_at=_now(),
                                            created_by=_user(), project_id=project_id)
            ).inserted_primary_key[0]
            for r in rows:
                r["campaign_id"] = cid
            if rows:
                conn.execute(t.campaign_observations.insert(), rows)
        return cls(store, name, cid, config)

    @classmethod
    def load(cls, store, name: str) -> Campaign:
        """Reopen the campaign ``name`` (one without a project: the server's campaigns are
        reached through it; raises :class:`CampaignError` if there is none)."""
        import sqlalchemy as sa

        store = _open_store(store)
        t = _tables()
        with store.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.campaigns.c.id, t.campaigns.c.config).where(
                    t.campaigns.c.name == name, _in_project(t.campaigns, None))
            ).first()
        if row is None:
            known = cls.names(store)
            hint = f"; campaigns in this store: {', '.join(known)}" if known else ""
            raise CampaignError(f"no campaign named {name!r} in {store!r}{hint}")
        return cls(store, name, row.id, row.config)

    @staticmethod
    def names(store) -> list[str]:
        """Names of the campaigns in ``store`` that belong to no project."""
        import sqlalchemy as sa

        store = _open_store(store)
        t = _tables()
        with store.engine.connect() as conn:
            return list(conn.execute(sa.select(t.campaigns.c.name)
                                     .where(_in_project(t.campaigns, None))
                                     .order_by(t.campaigns.c.id)).scalars())

    @staticmethod
    def overview(store) -> pd.DataFrame:
        """One row per campaign of ``store`` without a project (those :meth:`names` lists, in
        creation order): ``name``, ``objectives`` (their text, ``"; "``-joined), ``space`` (the
        design space's class, e.g. ``FormulationSpace``), ``results`` (observations recorded, past experiments included),
        ``pending`` (suggestions awaiting a result), ``created_at`` (UTC) and ``created_by``.

        Counts come from grouped queries and the space is not rebuilt, so listing loads no
        campaign's history or candidate pool.
        """
        import sqlalchemy as sa

        store = _open_store(store)
        t = _tables()
        c = t.campaigns
        results = (sa.select(t.campaign_observations.c.campaign_id,
                             sa.func.count().label("n"))
                   .group_by(t.campaign_observations.c.campaign_id).subquery())
        pending = (sa.select(t.campaign_suggestions.c.campaign_id, sa.func.count().label("n"))
                   .where(t.campaign_suggestions.c.status == "pending")
                   .group_by(t.campaign_suggestions.c.campaign_id).subquery())
        stmt = (sa.select(c.c.name, c.c.config, c.c.created_at, c.c.created_by,
                          sa.func.coalesce(results.c.n, 0).label("results"),
                          sa.func.coalesce(pending.c.n, 0).label("pending"))
                .outerjoin(results, results.c.campaign_id == c.c.id)
                .outerjoin(pending, pending.c.campaign_id == c.c.id)
                .where(_in_project(c, None)).order_by(c.c.id))
        with store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        columns = ["name", "objectives", "space", "results", "pending", "created_at",
                   "created_by"]
        return pd.DataFrame(
            [(r.name,
              "; ".join(str(objective_from_dict(o)) for o in r.config["objectives"]),
              r.config["space"].get("@class", ""),
              int(r.results), int(r.pending), r.created_at, r.created_by) for r in rows],
            columns=columns,
        )

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

    def _read(self, table, *where, order=None) -> pd.DataFrame:
        import sqlalchemy as sa

        stmt = sa.select(table).where(table.c.campaign_id == self.id, *where)
        stmt = stmt.order_by(order if order is not None else table.c.id)
        with self.store.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=list(table.c.keys()))

    def _observations(self) -> pd.DataFrame:
        return self._read(_tables().campaign_observations)

    def _suggestions(self, status: str | None = None) -> pd.DataFrame:
        t = _tables()
        where = [t.campaign_suggestions.c.status == status] if status else []
        return self._read(t.campaign_suggestions, *where)

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
        return self._read(_tables().campaign_batches)

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
        import sqlalchemy as sa

        from matforge.store.database import write_transaction

        if isinstance(n, bool) or int(n) != n or n < 1:
            raise CampaignError(f"n must be a positive integer, got {n!r}")
        n = int(n)
        t = _tables()
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
        with write_transaction(self.store.engine) as conn:
            camp = sa.select(t.campaigns.c.id).where(t.campaigns.c.id == self.id)
            conn.execute(camp.with_for_update())  # PostgreSQL: one suggest at a time
            number = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(t.campaign_batches.c.number), 0))
                .where(t.campaign_batches.c.campaign_id == self.id)
            ).scalar_one() + 1
            # Another process may have suggested since we read the state: never duplicate a
            # pending experiment.
            taken = set(conn.execute(
                sa.select(t.campaign_suggestions.c.key).where(
                    t.campaign_suggestions.c.campaign_id == self.id,
                    t.campaign_suggestions.c.status == "pending")
            ).scalars())
            batch_id = conn.execute(t.campaign_batches.insert().values(
                campaign_id=self.id, number=number, model=model_info,
                acquisition=to_jsonable(acquisition), strategy=strategy_name, created_at=now,
            )).inserted_primary_key[0]
            rows, kept = [], []
            for i, (design, key) in enumerate(zip(designs, keys, strict=True)):
                if key in taken:
                    continue
                taken.add(key)
                kept.append(i)
                rows.append({
                    "campaign_id": self.id, "batch_id": batch_id, "position": i, "key": key,
                    "design": design,
                    "prediction": None if not np.isfinite(mean[i]).all() else {
                        o.name: {"mean": float(mean[i, j]), "std": float(std[i, j])}
                        for j, o in enumerate(self.objectives)},
                    "acquisition_value": float(values[i]) if np.isfinite(values[i]) else None,
                    "status": "pending", "created_at": now,
                })
            ids = []
            for r in rows:  # one by one: the ids are needed, and batches are small
                ids.append(conn.execute(t.campaign_suggestions.insert().values(**r))
                           .inserted_primary_key[0])
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
        With fewer than :data:`MIN_OBSERVATIONS` results there is no model, and no estimate
        (``probability`` None, ``reason`` says so).
        """
        from matforge.design.stopping import StoppingEstimate, probability_better_remains

        history = self.history()
        observed, Y = self._training(history)
        n_finite = np.isfinite(Y).sum(axis=0) if len(Y) else np.zeros(len(self.objectives))
        if n_finite.min() < MIN_OBSERVATIONS:
            return StoppingEstimate(None, margin=float(margin), reason=(
                f"fewer than {MIN_OBSERVATIONS} results for an objective, so no model yet"))
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
        import sqlalchemy as sa

        from matforge.store.database import write_transaction

        if not isinstance(results, pd.DataFrame):
            raise CampaignError(f"results must be a DataFrame, got {type(results).__name__}")
        source = f"observe:{source}" if source else "observe"
        df = results.reset_index(drop=True)
        if not len(df):
            return ObserveReport()
        failures = self._failures(df, source, blank_means_failed)
        self._check_values(df, source, need_design=False, failures=failures)
        t = _tables()
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
        with write_transaction(self.store.engine) as conn:
            camp = sa.select(t.campaigns.c.id).where(t.campaigns.c.id == self.id)
            conn.execute(camp.with_for_update())
            S = t.campaign_suggestions
            known = {r.id: r for r in conn.execute(
                sa.select(S.c.id, S.c.key, S.c.design, S.c.status).where(
                    S.c.campaign_id == self.id)).all()}
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
            Obs = t.campaign_observations
            stored = conn.execute(sa.select(Obs.c.design, Obs.c["values"])
                                  .where(Obs.c.campaign_id == self.id)).all()
            seen = set(zip(self._identities([r.design for r in stored]),
                           [json.dumps(r.values, sort_keys=True) for r in stored], strict=True))
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
                rows.append({"campaign_id": self.id, "suggestion_id": sid if sid >= 0 else None,
                             "key": key, "design": design, "values": values[i],
                             "source": source, "created_at": now, "created_by": user})
                if sid >= 0:
                    answered.append(sid)
                    report.matched += 1
                else:
                    report.unplanned += 1
                report.failed += failures[i] is not None
            for r in rows:
                report.observation_ids.append(
                    conn.execute(Obs.insert().values(**r)).inserted_primary_key[0])
            if answered:
                conn.execute(S.update().where(S.c.id.in_(answered), S.c.status != "observed")
                             .values(status="observed", updated_at=now))
        return report

    def cancel(self, suggestion_ids: Sequence[int] | None = None) -> int:
        """Mark pending suggestions as cancelled (all of them by default): they will not be
        waited for, and may be proposed again. Returns how many were cancelled."""
        from matforge.store.database import write_transaction

        t = _tables()
        S = t.campaign_suggestions
        stmt = S.update().where(S.c.campaign_id == self.id, S.c.status == "pending")
        if suggestion_ids is not None:
            stmt = stmt.where(S.c.id.in_([int(i) for i in suggestion_ids]))
        with write_transaction(self.store.engine) as conn:
            return conn.execute(stmt.values(status="cancelled", updated_at=_now())).rowcount

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


def _numeric_levels(levels: Sequence, column: str) -> list:
    """Declared levels (text, from the command line) of a column that holds numbers, as
    numbers (whole ones as integers), so that they match the table's values."""
    out = []
    for v in levels:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise CampaignError(
                f"level {v!r} of column {column!r} is not a number, but the column holds numbers"
            ) from None
        out.append(int(x) if x.is_integer() else x)
    return out


def _design_levels(declared: Mapping[str, Sequence | None] | None, column: str,
                   values: pd.Series) -> list | None:
    """The levels declared for ``column`` (None: none declared), typed like its values."""
    levels = (declared or {}).get(column)
    if levels is None:
        return None
    numeric = pd.to_numeric(values.dropna(), errors="coerce").notna().all() and \
        values.notna().any()
    return _numeric_levels(levels, column) if numeric else [str(v) for v in levels]


def _declarations(spec, what: str) -> dict[str, list | None]:
    if spec is None:
        return {}
    if isinstance(spec, str):
        return {spec: None}
    if isinstance(spec, Mapping):
        return {str(k): None if v is None else list(v) for k, v in spec.items()}
    if isinstance(spec, Sequence):
        return dict.fromkeys((str(c) for c in spec), None)
    raise CampaignError(f"{what} must be column names or a mapping of column to levels")


def infer_parameter(column: str, values: pd.Series, *,
                    categorical: Mapping[str, Sequence | None] | None = None,
                    ordinal: Mapping[str, Sequence | None] | None = None,
                    continuous: Sequence[str] = ()):
    """The parameter a table column implies (see :func:`infer_space`)."""
    from matforge.design.spaces import Categorical, Continuous, Integer, Ordinal

    observed = values.dropna()
    if not len(observed):
        raise CampaignError(f"column {column!r} has no value to infer its range or levels from")
    numeric = pd.to_numeric(observed, errors="coerce")
    is_numeric = bool(numeric.notna().all()) and not pd.api.types.is_bool_dtype(observed)
    levels = [v.item() if isinstance(v, np.generic) else v for v in observed.unique().tolist()]
    try:
        if column in (categorical or {}):
            declared = _design_levels(categorical, column, values)
            return Categorical(column, tuple(declared if declared is not None
                                             else sorted(levels, key=str)))
        if column in (ordinal or {}):
            declared = _design_levels(ordinal, column, values)
            if declared is None:
                if not is_numeric:
                    raise CampaignError(
                        f"column {column!r} holds text: give its ordinal levels lowest first "
                        f"({column}=low,medium,high)"
                    )
                declared = sorted(numeric.unique().tolist())
                declared = [int(x) if float(x).is_integer() else float(x) for x in declared]
            return Ordinal(column, tuple(declared))
        if not is_numeric:
            return Categorical(column, tuple(sorted(levels, key=str)))
        lo, hi = float(numeric.min()), float(numeric.max())
        whole = bool((numeric == np.round(numeric)).all())
        if whole and column not in continuous:
            return Integer(column, int(lo), int(hi))
        return Continuous(column, lo, hi)
    except DesignSpaceError as exc:
        raise CampaignError(f"column {column!r}: {exc}") from None


def infer_space(data: pd.DataFrame, *, formula: str | None = None,
                features: Sequence[str] | None = None,
                formulation: Sequence[str] | None = None, max_components: int | None = None,
                pool: pd.DataFrame | None = None, targets: Sequence[str] = (),
                id_column: str | None = None,
                categorical: Sequence[str] | Mapping[str, Sequence | None] | None = None,
                ordinal: Sequence[str] | Mapping[str, Sequence | None] | None = None,
                continuous: Sequence[str] = ()) -> DesignSpace:
    """The design space a CSV-based campaign implies (see ``matforge campaign new``).

    * ``formula``: a :class:`CompositionPool` of the rows of ``pool``, or else of the rows of
      ``data`` whose targets are all missing (the candidates); ``features`` are then other
      columns the surrogate sees beside the composition (numbers as they are, text one-hot);
    * ``features`` alone: a :class:`DiscretePool` of ``pool`` on those columns, or else a
      :class:`ParameterSpace` spanning the data: a column of whole numbers becomes an
      :class:`~matforge.design.spaces.Integer` over its range (unless named in
      ``continuous``), other numbers a :class:`~matforge.design.spaces.Continuous` range, text
      a :class:`~matforge.design.spaces.Categorical` of its levels;
    * ``formulation``: a :class:`DiscretePool` of ``pool``, or else a :class:`FormulationSpace`
      of those ingredients summing to the data's typical row total (1 or 100 when the rows sum
      to that within 1 %), with at most ``max_components`` present, and ``features`` as its
      process parameters (inferred as above).

    ``categorical`` and ``ordinal`` declare columns (names, or a mapping to their levels):
    a categorical column is one-hot even if it holds numbers (a catalyst code), and its
    declared levels may include ones the data lacks; an ordinal column's levels are ordered,
    lowest first (numbers: by value, unless declared). Declared columns are design columns
    even if ``features`` does not name them.
    """
    given = [x is not None for x in (formula, formulation)]
    categorical = _declarations(categorical, "categorical")
    ordinal = _declarations(ordinal, "ordinal")
    both = sorted(set(categorical) & set(ordinal))
    if both:
        raise CampaignError(f"column(s) {both} declared both categorical and ordinal")
    declared = [c for c in [*categorical, *ordinal] if c not in (features or [])]
    if declared:
        features = [*(features or []), *declared]
    if sum(given) > 1 or (not any(given) and features is None):
        raise CampaignError("describe the experiments with exactly one of formula, features "
                            "and formulation (features may also go beside formula or "
                            "formulation: other design columns, process parameters)")
    unknown = [c for c in continuous if c not in (features or [])]
    if unknown:
        raise CampaignError(f"continuous column(s) {unknown} are not design features")
    unlabelled = None
    if targets:
        present = [t for t in targets if t in data.columns]
        if present:
            vals = data[present].apply(pd.to_numeric, errors="coerce")
            unlabelled = data[vals.isna().all(axis=1)]
    if formula is not None:
        if formula not in data.columns:
            raise CampaignError(f"no formula column {formula!r}; have {list(data.columns)}")
        cands = pool if pool is not None else unlabelled
        if cands is None or not len(cands):
            raise CampaignError(
                "a formula campaign chooses among candidates: give a pool of candidate "
                "formulas (--pool), or rows without results in the data file"
            )
        cands = cands.drop(columns=[t for t in targets if t in cands.columns])
        extra = list(features or [])
        missing = [c for c in extra if c not in cands.columns]
        if missing:
            raise CampaignError(f"column(s) {missing} not in the candidates; have "
                                f"{list(cands.columns)}")
        try:
            return CompositionPool(cands.reset_index(drop=True), formula_column=formula,
                                   id_column=id_column, feature_columns=extra,
                                   categorical=_typed(categorical, cands),
                                   ordinal=_typed(ordinal, cands))
        except DesignSpaceError as exc:
            raise CampaignError(str(exc)) from None
    cols = list(formulation if formulation is not None else features)
    params = list(features or []) if formulation is not None else []
    missing = [c for c in cols + params if c not in data.columns]
    if missing:
        raise CampaignError(f"column(s) {missing} not in the data; have {list(data.columns)}")
    if pool is not None:
        allcols = cols + [c for c in params if c not in cols]
        miss = [c for c in allcols if c not in pool.columns]
        if miss:
            raise CampaignError(f"column(s) {miss} not in the candidate pool")
        keep = [c for c in pool.columns if c not in targets]
        try:
            return DiscretePool(pool[keep].reset_index(drop=True), id_column=id_column,
                                feature_columns=allcols, categorical=_typed(categorical, pool),
                                ordinal=_typed(ordinal, pool))
        except DesignSpaceError as exc:
            raise CampaignError(str(exc)) from None
    kinds = {"categorical": categorical, "ordinal": ordinal, "continuous": continuous}
    if features is not None and formulation is None:
        return ParameterSpace([infer_parameter(c, data[c], **kinds) for c in cols])
    amounts = data[cols].apply(pd.to_numeric, errors="coerce")
    if amounts.isna().any().any():
        bad = amounts.isna().any(axis=1).to_numpy()
        raise CampaignError(f"ingredient amounts missing or not numbers in row(s) "
                            f"{(np.flatnonzero(bad)[:5] + 1).tolist()}")
    total = float(np.median(amounts.sum(axis=1)))
    for nice in (1.0, 100.0):
        if abs(total - nice) <= 0.01 * nice:
            total = nice
    parameters = [infer_parameter(c, data[c], **kinds) for c in params] or None
    return FormulationSpace(cols, total=total, max_components=max_components,
                            parameters=parameters)


def _typed(declared: dict[str, list | None], table: pd.DataFrame) -> dict | None:
    """Declared levels typed like the table's columns (numbers stay numbers)."""
    out = {c: (_design_levels(declared, c, table[c]) if c in table.columns else levels)
           for c, levels in declared.items()}
    return out or None
