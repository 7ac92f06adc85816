"""Candidate campaign strategies, each a small replaceable piece, for choosing the default by
leave-one-problem-out (:mod:`matforge.design.selection`).

A candidate is a *policy*: given the candidates' features, what was measured so far and a batch
size, it returns the positions of the next experiments. :class:`StrategyPolicy` wraps a
:class:`~matforge.design.strategy.Strategy` (the pure :func:`~matforge.design.strategy.propose`
core); :class:`SurrogatePolicy` combines any surrogate with an acquisition and a batch rule
(:func:`~matforge.design.batch_selection.select_batch`); :class:`HedgePolicy` is a portfolio over
acquisitions. Each may also set its own number of random initial experiments.

:data:`CANDIDATES` (build one with :func:`make_candidate`):

* ``default``: matforge's default strategy (ARD GP up to 16 features and 500 results, else a
  random forest; :func:`~matforge.design.strategy.default_acquisition`, MLI for a target or
  range; kriging believer), so ``window_mli*`` are now the same as ``default*`` (they differed
  while the default used EI for windows);
* ``baseline``: random forest (100 trees) + expected improvement on the raw columns;
* ``default_init5``: ``default`` with 5 random initial experiments instead of 10;
* ``rf``: calibrated random forest (:class:`~matforge.models.RandomForestUQ`) + EI on the default
  features, whatever the problem size;
* ``boosted``: boosted-tree ensemble (:class:`~matforge.models.BoostedEnsembleUQ`) + EI;
* ``gp_prior``: GP with BoTorch-style small-data priors (:class:`~matforge.design.surrogates.
  PriorGP`, MAP fit) where ``default`` uses a GP, else the same forest; EI;
* ``gp_prior_warp``: ``gp_prior`` fitted to Yeo-Johnson-transformed outcomes (maximise/minimise
  objectives: a monotone warp keeps the optimum where it is);
* ``hedge``: ``default``'s surrogate with a GP-Hedge portfolio over EI, PI and UCB (Hoffman,
  Brochu & de Freitas 2011);
* ``window_mli``: ``default``, but for a target value or range the probability of landing closer
  than the best so far (MLI; once one is on target: of landing on target) instead of EI;
* ``window_mli_init5``, ``gp_prior_warp_init5``: those two with 5 random initial experiments;
* ``window_mli_init2``: ``window_mli`` with 2 (Liang et al.'s protocol; added after the first
  LOPO pass showed 5 beating 10 on most problems);
* ``window_mli_init3``: the same with 3 (fills the grid 2, 3, 5, 10 of random starts; added
  after the second pass).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from matforge.design.objectives import Maximize, Minimize, Objective, Range, Target
from matforge.design.strategy import (
    Strategy,
    baseline_strategy,
    default_acquisition,
    default_strategy,
    describe,
    make_surrogate,
)
from matforge.errors import DesignSpaceError
from matforge.models.presets import auto_surrogate

__all__ = [
    "CANDIDATES",
    "HedgePolicy",
    "Policy",
    "StrategyPolicy",
    "SurrogatePolicy",
    "as_policy",
    "make_candidate",
]


@dataclass
class Policy:
    """What a benchmark replay needs of a strategy (subclasses implement :meth:`propose`).

    ``features``: ``"default"`` or ``"plain"`` (which of a problem's feature sets it sees);
    ``representation`` / ``n_components``: as in :class:`~matforge.design.strategy.Strategy`;
    ``n_initial``: random experiments before the first proposal.
    """

    name: str
    n_initial: int = 10
    features: str = "default"
    representation: str = "raw"
    n_components: int = 24

    def start(self) -> dict:
        """Fresh per-replay state (empty for stateless policies)."""
        return {}

    def propose(
        self, Z, observed, y, objective: Objective, q: int, *, exclude, seed: int, state: dict
    ) -> np.ndarray:
        """Pool positions of the next ``q`` experiments, given features ``Z`` of the pool,
        positions ``observed`` and outcomes ``y`` measured so far, and a mask ``exclude``."""
        raise NotImplementedError

    def report(self, state: dict) -> dict:
        """A JSON-serialisable summary of the state after a replay."""
        return {}

    def describe(self) -> dict:
        return {"name": self.name, "n_initial": self.n_initial, "features": self.features}


@dataclass
class StrategyPolicy(Policy):
    """A :class:`~matforge.design.strategy.Strategy` as a policy (its ``propose``)."""

    strategy: Strategy = field(default_factory=default_strategy)

    def __post_init__(self):
        self.representation = self.strategy.representation
        self.n_components = self.strategy.n_components

    def propose(self, Z, observed, y, objective, q, *, exclude, seed, state):
        from matforge.design.strategy import propose

        idx = np.asarray(observed, dtype=int)
        return propose(
            self.strategy,
            Z,
            Z[idx],
            np.asarray(y, float)[:, None],
            [objective],
            q,
            exclude=exclude,
            seed=seed,
        ).indices

    def describe(self) -> dict:
        return {**describe(self.strategy), **super().describe()}


def _warp_objective(objective: Objective, y: np.ndarray) -> tuple[Objective, np.ndarray]:
    """Outcomes Yeo-Johnson-transformed (standardised) for a maximise or minimise objective —
    a monotone map, so the best candidate stays the best — and the objective on them. Other
    objectives (targets, ranges: the distance to them is not preserved) are left as they are."""
    if not isinstance(objective, Maximize | Minimize) or np.ptp(y) <= 0:
        return objective, y
    import warnings

    from sklearn.preprocessing import PowerTransformer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = PowerTransformer(method="yeo-johnson").fit_transform(y[:, None]).ravel()
    if not np.all(np.isfinite(t)):
        return objective, y
    return type(objective)(objective.name), t


@dataclass
class SurrogatePolicy(Policy):
    """A surrogate (built per proposal by ``make_model(n_features, n_observed, seed)``), an
    acquisition (``"auto"``: :func:`~matforge.design.strategy.default_acquisition`) and a batch
    rule; ``warp=True`` fits Yeo-Johnson-transformed outcomes (see :func:`_warp_objective`)."""

    make_model: Callable | None = None
    model_name: str = ""
    acquisition: str | dict | Callable = "auto"
    batch_strategy: str = "kriging_believer"
    warp: bool = False

    def propose(self, Z, observed, y, objective, q, *, exclude, seed, state):
        import warnings

        from matforge.design.acquisition import make_acquisition
        from matforge.design.batch_selection import select_batch

        idx = np.asarray(observed, dtype=int)
        y = np.asarray(y, dtype=float)
        if self.warp:
            objective, y = _warp_objective(objective, y)
        model = self.make_model(Z.shape[1], len(idx), seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # hyperparameters at a bound on a few points
            model.fit(Z[idx], y)
        if callable(self.acquisition):
            spec = self.acquisition(objective)
        elif self.acquisition == "auto":
            spec = default_acquisition([objective])
        else:
            spec = self.acquisition
        acq = make_acquisition(spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return select_batch(
                Z,
                model,
                acq,
                q,
                strategy=self.batch_strategy,
                objective=objective,
                X_observed=Z[idx],
                y_observed=y,
                exclude=exclude,
            ).indices

    def describe(self) -> dict:
        acq = self.acquisition
        if callable(acq):
            acq = (acq.__doc__ or acq.__name__).strip()
        return {
            **super().describe(),
            "surrogate": self.model_name,
            "acquisition": acq,
            "batch": self.batch_strategy,
            "warp": self.warp,
        }


def _auto_model(gp_factory: Callable) -> Callable:
    """``default``'s size rule (:func:`matforge.models.presets.auto_surrogate`) with another
    GP: ``gp_factory(seed)`` where it picks a GP, else ``default``'s forest."""

    def make(n_features: int, n_observed: int, seed: int):
        if auto_surrogate(n_features, n_observed) == "gp":
            return gp_factory(seed)
        return make_surrogate(default_strategy(), seed, "rf")

    return make


def _prior_gp(seed: int):
    from matforge.design.surrogates import PriorGP

    return PriorGP(random_state=seed)


def _default_model(n_features: int, n_observed: int, seed: int):
    from matforge.design.strategy import resolve_model

    s = default_strategy()
    return make_surrogate(s, seed, resolve_model(s, n_features, n_observed))


@dataclass
class HedgePolicy(Policy):
    """GP-Hedge (Hoffman, Brochu & de Freitas, UAI 2011): a portfolio of acquisitions. Each
    proposal every acquisition nominates its best candidate; one nominee is run, drawn with
    probability ∝ ``exp(eta · gain)``; after the next refit each acquisition's gain grows by
    the model's predicted utility at its own nominee (standardised by the spread of the
    utilities measured so far). Batches: the drawn acquisition fills the batch with
    ``batch_strategy``. Uses ``default``'s surrogate."""

    portfolio: tuple = (
        {"name": "ei", "xi": 0.0},
        {"name": "pi", "xi": 0.0},
        {"name": "ucb", "beta": 2.0},
    )
    eta: float = 1.0
    batch_strategy: str = "kriging_believer"

    def start(self) -> dict:
        return {"gains": np.zeros(len(self.portfolio)), "nominees": None, "chosen": []}

    def propose(self, Z, observed, y, objective, q, *, exclude, seed, state):
        import warnings

        from matforge.design.acquisition import make_acquisition
        from matforge.design.batch_selection import TieBreak, select_batch

        idx = np.asarray(observed, dtype=int)
        y = np.asarray(y, dtype=float)
        model = _default_model(Z.shape[1], len(idx), seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(Z[idx], y)
        mean, std = model.predict(Z, return_std=True)
        dist = objective.utility_distribution(mean, std)
        u_seen = objective.utility(y)
        scale = float(np.std(u_seen)) or 1.0
        if state["nominees"] is not None:
            state["gains"] = state["gains"] + np.asarray(dist.mean)[state["nominees"]] / scale
        best = objective.best_utility(y)
        ex = np.asarray(exclude)
        if ex.dtype == bool:
            mask = ex.copy()
        else:
            mask = np.zeros(len(Z), dtype=bool)
            mask[ex.astype(int)] = True
        acqs = [make_acquisition(a) for a in self.portfolio]
        ties = TieBreak(Z, [Z[idx]])
        nominees = []
        for a in acqs:
            scores = np.asarray(a.score(dist, best), dtype=float)
            scores = np.where(mask | ~np.isfinite(scores), -np.inf, scores)
            nominees.append(ties.best(scores))
        g = self.eta * (state["gains"] - state["gains"].max())
        p = np.exp(g) / np.exp(g).sum()
        rng = np.random.default_rng([seed, len(idx)])
        j = int(rng.choice(len(acqs), p=p))
        state["nominees"] = np.asarray(nominees)
        state["chosen"].append(j)
        if q == 1:
            return np.asarray([nominees[j]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return select_batch(
                Z,
                model,
                acqs[j],
                q,
                strategy=self.batch_strategy,
                objective=objective,
                X_observed=Z[idx],
                y_observed=y,
                exclude=mask,
            ).indices

    def report(self, state: dict) -> dict:
        names = [a["name"] for a in self.portfolio]
        chosen = np.bincount(np.asarray(state["chosen"], dtype=int), minlength=len(names))
        return {
            "chosen": dict(zip(names, chosen.tolist(), strict=True)),
            "gains": [round(float(v), 4) for v in state["gains"]],
        }

    def describe(self) -> dict:
        return {
            **super().describe(),
            "surrogate": "default's",
            "portfolio": list(self.portfolio),
            "eta": self.eta,
        }


def _mli_for_windows(objective: Objective) -> dict:
    """MLI for a target or range objective, otherwise default_acquisition."""
    if isinstance(objective, Range | Target):
        return {"name": "mli"}
    return default_acquisition([objective])


def _default(n_initial: int = 10) -> Policy:
    return StrategyPolicy(
        name="default" if n_initial == 10 else f"default_init{n_initial}",
        n_initial=n_initial,
        strategy=default_strategy(),
    )


def _window_mli(n_initial: int = 10) -> Policy:
    return SurrogatePolicy(
        name="window_mli" if n_initial == 10 else f"window_mli_init{n_initial}",
        n_initial=n_initial,
        model_name="default's (ARD GP / RandomForestUQ)",
        make_model=_default_model,
        acquisition=_mli_for_windows,
    )


#: name -> factory of the candidate policies (see the module docstring)
CANDIDATES: dict[str, Callable[[], Policy]] = {
    "default": _default,
    "baseline": lambda: StrategyPolicy(
        name="baseline", features="plain", strategy=baseline_strategy()
    ),
    "default_init5": lambda: _default(5),
    "rf": lambda: SurrogatePolicy(
        name="rf",
        model_name="RandomForestUQ(64 trees)",
        make_model=lambda d, n, seed: make_surrogate(default_strategy(), seed, "rf"),
    ),
    "boosted": lambda: SurrogatePolicy(
        name="boosted",
        model_name="BoostedEnsembleUQ(150 trees)",
        make_model=lambda d, n, seed: make_surrogate(default_strategy(), seed, "lgbm"),
    ),
    "gp_prior": lambda: SurrogatePolicy(
        name="gp_prior",
        model_name="PriorGP (MAP, BoTorch-style priors) / RandomForestUQ",
        make_model=_auto_model(_prior_gp),
    ),
    "gp_prior_warp": lambda: SurrogatePolicy(
        name="gp_prior_warp",
        model_name="PriorGP on Yeo-Johnson outcomes / RandomForestUQ",
        make_model=_auto_model(_prior_gp),
        warp=True,
    ),
    "hedge": lambda: HedgePolicy(name="hedge"),
    "window_mli": _window_mli,
    "window_mli_init5": lambda: _window_mli(5),
    "window_mli_init2": lambda: _window_mli(2),
    "window_mli_init3": lambda: _window_mli(3),
    "gp_prior_warp_init5": lambda: SurrogatePolicy(
        name="gp_prior_warp_init5",
        n_initial=5,
        model_name="PriorGP on Yeo-Johnson outcomes / RandomForestUQ",
        make_model=_auto_model(_prior_gp),
        warp=True,
    ),
}


def make_candidate(name: str) -> Policy:
    """A fresh candidate policy by name (:data:`CANDIDATES`)."""
    if name not in CANDIDATES:
        raise DesignSpaceError(f"unknown candidate strategy {name!r}; known: {list(CANDIDATES)}")
    return CANDIDATES[name]()


def as_policy(strategy) -> Policy:
    """``strategy`` as a :class:`Policy`: policies pass through; a
    :class:`~matforge.design.strategy.Strategy` is wrapped (the baseline sees the plain
    features, as in the benchmark)."""
    if isinstance(strategy, Policy):
        return strategy
    if isinstance(strategy, Strategy):
        return StrategyPolicy(
            name=strategy.name,
            features="plain" if strategy.name == "baseline" else "default",
            strategy=strategy,
        )
    raise DesignSpaceError(f"not a strategy: {strategy!r}")
