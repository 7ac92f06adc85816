"""Campaign benchmarks: replay real datasets with hidden labels as the "lab".

Every bundled benchmark is a table of experiments whose outcomes are all known. A replay starts
from ``n_initial`` (10) experiments drawn at random, then lets a strategy choose the next batch
from the rows not yet "run", reveals their labels, refits, and so on, until the best row has
been found or the budget of experiments is spent. The same initial experiments (per seed) are
given to every strategy, and random search runs in the same replay.

Goals and metrics (Rohr et al., Chem. Sci. 2020, 11, 2696; Adesiji et al., Digital Discovery
2025 for the enhancement factor):

* a **top-1 %** candidate: utility at or above the 99th percentile of the pool's utilities (a
  target range: any row inside it); the **best** candidate: the highest utility;
* **experiments needed** to find one (initial experiments included); a replay that runs out of
  budget ``B`` without finding one is counted as ``B + (N − B + 1)/(K + 1)``, the expected number
  of further random draws from the ``N − B`` rows left, ``K`` of them good;
* **acceleration factor** ``AF = E[random] / mean(strategy)``, where
  ``E[random] = (N + 1)/(K + 1)`` is the exact expectation for random search without
  replacement (the random replays in the same run check it);
* **enhancement factor** at ``n`` experiments
  ``EF(n) = (mean best-so-far utility − median utility) / (E[best of n random] − median
  utility)``, the random expectation being exact (order statistics of the pool).

Bundled problems (:data:`BENCHMARKS`): ``elasticity`` (bulk modulus ≥ its 99th percentile
among 12,277 compositions), ``matbench_steels`` (highest yield strength of 312 steels),
``matbench_expt_gap`` (experimental gap in [1.2, 1.4] eV among 4,604 compositions),
``photo_pce10`` and ``photo_wf3`` (least photo-degradation of 1,040 four-polymer blends),
``colors_bob`` (dye mixture with the smallest distance to the target green of 241) and
``octane_blends`` (highest motor octane number of 722 fuels and blends). Any table works with
:func:`problem_from_table`.

Features: the default strategy sees composition descriptors (Magpie, mat2vec statistics and the
element fractions, compressed by PCA) for formulas, ingredient fractions for blends, and for
``octane_blends`` the amount-weighted structural descriptors of the components (their SMILES are
the column names; :func:`smiles_descriptors`); the plain baseline sees the raw columns
(fractional composition for formulas).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from matforge.design.objectives import Objective, parse_objective
from matforge.design.strategy import (
    Representation,
    Strategy,
    baseline_strategy,
    composition_feature_spec,
    composition_features,
    default_strategy,
    describe,
    objective_sense,
    propose,
)
from matforge.errors import DesignSpaceError

__all__ = [
    "BENCHMARKS",
    "Problem",
    "Replay",
    "load_problem",
    "markdown_table",
    "problem_from_table",
    "random_expected_best_of",
    "replay",
    "run_benchmark",
    "smiles_descriptors",
    "summarise",
]

BENCHMARKS = (
    "elasticity",
    "matbench_steels",
    "matbench_expt_gap",
    "photo_pce10",
    "photo_wf3",
    "colors_bob",
    "octane_blends",
)

# name -> (objective, column kind, budget of experiments)
_SPECS: dict[str, dict] = {
    "elasticity": {"objective": "bulk_modulus max", "budget": 100},
    "matbench_steels": {"objective": "yield_strength max", "budget": 150},
    "matbench_expt_gap": {"objective": "gap_expt in [1.2, 1.4]", "budget": 100},
    "photo_pce10": {"objective": "degradation min", "budget": 150},
    "photo_wf3": {"objective": "degradation min", "budget": 150},
    "colors_bob": {"objective": "difference_to_green min", "budget": 120},
    "octane_blends": {"objective": "MON max", "budget": 150},
}


@dataclass
class Problem:
    """A replayable campaign: candidates, their hidden outcomes, and the goal.

    ``X`` are the default strategy's raw features (before its representation), ``X_plain`` the
    baseline's; ``y`` the outcome of every candidate in the property's units.
    """

    name: str
    X: np.ndarray
    X_plain: np.ndarray
    y: np.ndarray
    objective: Objective
    budget: int
    description: str = ""
    top_fraction: float = 0.01
    features: str = ""
    plain_features: str = ""
    unit: str = ""

    def __post_init__(self):
        self.y = np.asarray(self.y, dtype=float)
        if not np.isfinite(self.y).all():
            raise DesignSpaceError(f"{self.name}: outcomes must be finite numbers")
        if len(self.X) != len(self.y) or len(self.X_plain) != len(self.y):
            raise DesignSpaceError(f"{self.name}: features and outcomes differ in length")
        self.utility = self.objective.utility(self.y)
        threshold = np.quantile(self.utility, 1.0 - self.top_fraction)
        self.good = self.utility >= threshold - 1e-12
        self.best = self.utility >= self.utility.max() - 1e-12
        self.budget = int(min(self.budget, len(self.y)))

    @property
    def n(self) -> int:
        return len(self.y)

    def random_expected(self, which: str = "top") -> float:
        """Exact expected experiments random search needs to find a good (``"top"``) or the
        best (``"best"``) candidate: ``(N + 1)/(K + 1)``."""
        k = int((self.good if which == "top" else self.best).sum())
        return (self.n + 1) / (k + 1)

    def info(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "objective": str(self.objective),
            "goal": objective_sense(self.objective),
            "unit": self.unit,
            "n_candidates": self.n,
            "n_top": int(self.good.sum()),
            "n_best": int(self.best.sum()),
            "top_threshold_utility": float(self.utility[self.good].min()),
            "best_utility": float(self.utility.max()),
            "median_utility": float(np.median(self.utility)),
            "budget": self.budget,
            "random_expected_top": self.random_expected("top"),
            "random_expected_best": self.random_expected("best"),
            "features": self.features,
            "plain_features": self.plain_features,
        }


# -----------------------------------------------------------------------------------------------
# Loading problems
# -----------------------------------------------------------------------------------------------


def _fractions(formulas) -> np.ndarray:
    from matforge.features import ElementFraction

    F = ElementFraction().featurize_many(list(formulas))
    F = np.nan_to_num(F)
    return F[:, F.any(axis=0)]  # drop elements no candidate contains


_SMILES_TOKEN = re.compile(r"\[[^\]]+\]|Br|Cl|%\d\d|[A-Za-z]|\d|[=#\-/\\().:@+]")
_VALENCE = {"C": 4, "O": 2, "N": 3, "S": 2, "F": 1, "Cl": 1, "Br": 1, "I": 1, "B": 3, "P": 3}
SMILES_DESCRIPTORS = (
    "carbon", "oxygen", "heavy_atoms", "hydrogen", "aromatic_atoms", "rings", "double_bonds",
    "triple_bonds", "methyl", "tertiary_carbon", "quaternary_carbon", "carbonyl", "hydroxyl",
    "ether_oxygen", "aromatic_fraction", "h_to_c",
)


def smiles_descriptors(smiles: str) -> np.ndarray:
    """Structural counts of a molecule from its SMILES (organic subset, no library needed).

    Returns :data:`SMILES_DESCRIPTORS`: atom counts (C, O, heavy atoms, implicit + explicit H),
    aromatic atoms, rings, double and triple bonds, methyl groups (C bonded to one heavy atom),
    tertiary and quaternary carbons (3 and 4 heavy neighbours), carbonyls, hydroxyls, ether
    oxygens, the aromatic fraction of heavy atoms and the H/C ratio. Stereo marks are ignored.
    Raises :class:`DesignSpaceError` on a token it does not know.
    """
    atoms: list[dict] = []
    bonds: list[tuple[int, int, float]] = []
    stack: list[int] = []
    rings: dict[str, tuple[int, float | None]] = {}
    prev: int | None = None
    order: float | None = None
    n_rings = 0
    for tok in _SMILES_TOKEN.findall(smiles):
        if tok == "(":
            stack.append(prev)
        elif tok == ")":
            prev = stack.pop()
        elif tok in "=#-:":
            order = {"=": 2.0, "#": 3.0, "-": 1.0, ":": 1.5}[tok]
        elif tok in "/\\.@+":
            continue
        elif tok.isdigit() or tok.startswith("%"):
            if tok in rings:
                j, o = rings.pop(tok)
                a, b = atoms[prev], atoms[j]
                default = 1.5 if a["aromatic"] and b["aromatic"] else 1.0
                bonds.append((prev, j, order or o or default))
                n_rings += 1
            else:
                rings[tok] = (prev, order)
            order = None
        else:
            explicit_h = None
            if tok.startswith("["):
                m = re.match(r"\[(\d*)([A-Za-z][a-z]?)(@*)(H\d*)?", tok)
                if not m:
                    raise DesignSpaceError(f"SMILES {smiles!r}: cannot read atom {tok!r}")
                sym = m.group(2)
                h = m.group(4)
                explicit_h = 0 if h is None else (int(h[1:]) if len(h) > 1 else 1)
            else:
                sym = tok
            aromatic = sym.islower()
            element = sym.capitalize()
            if element not in _VALENCE:
                raise DesignSpaceError(f"SMILES {smiles!r}: unknown element {sym!r}")
            atoms.append({"element": element, "aromatic": aromatic, "h": explicit_h})
            i = len(atoms) - 1
            if prev is not None:
                a = atoms[prev]
                default = 1.5 if a["aromatic"] and aromatic else 1.0
                bonds.append((prev, i, order or default))
            prev, order = i, None
    if rings:
        raise DesignSpaceError(f"SMILES {smiles!r}: unclosed ring(s) {sorted(rings)}")
    n = len(atoms)
    degree = np.zeros(n)
    valence_used = np.zeros(n)
    for a, b, o in bonds:
        degree[[a, b]] += 1
        valence_used[[a, b]] += o
    el = np.array([a["element"] for a in atoms])
    arom = np.array([a["aromatic"] for a in atoms])
    h = np.array([
        a["h"] if a["h"] is not None
        else max(_VALENCE[a["element"]] - math.ceil(valence_used[i] - 1e-9), 0)
        for i, a in enumerate(atoms)
    ], dtype=float)
    carbon, oxygen = el == "C", el == "O"
    carbonyl = sum(1 for a, b, o in bonds if o == 2.0 and {el[a], el[b]} == {"C", "O"})
    hydroxyl = int(np.sum(oxygen & (degree == 1) & (valence_used == 1)))
    ether = int(np.sum(oxygen & (degree == 2) & ~arom))
    n_c = float(carbon.sum())
    return np.array([
        n_c, float(oxygen.sum()), float(n), float(h.sum()), float(arom.sum()), float(n_rings),
        float(sum(o == 2.0 for *_, o in bonds)), float(sum(o == 3.0 for *_, o in bonds)),
        float(np.sum(carbon & (degree == 1))), float(np.sum(carbon & (degree == 3))),
        float(np.sum(carbon & (degree == 4))), float(carbonyl), float(hydroxyl), float(ether),
        float(arom.mean()) if n else 0.0, float(h.sum() / n_c) if n_c else 0.0,
    ])


def _blend_descriptors(amounts: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Amount-weighted mean of the components' SMILES descriptors, plus the component count."""
    D = np.array([smiles_descriptors(s) for s in names])
    W = amounts / np.maximum(amounts.sum(axis=1, keepdims=True), 1e-12)
    return np.column_stack([W @ D, (amounts > 0).sum(axis=1)])


def load_problem(name: str, *, budget: int | None = None, max_candidates: int | None = None,
                 seed: int = 0) -> Problem:
    """One of :data:`BENCHMARKS` as a :class:`Problem`.

    ``max_candidates`` keeps a random subset of the pool (for quick tests; the goal's
    thresholds are then those of the subset).
    """
    from matforge.datasets import dataset_info, load_dataset

    if name not in _SPECS:
        raise DesignSpaceError(f"unknown campaign benchmark {name!r}; known: {list(BENCHMARKS)}")
    spec = _SPECS[name]
    info = dataset_info(name)
    df = load_dataset(name)
    if max_candidates is not None and max_candidates < len(df):
        keep = np.sort(np.random.default_rng(seed).choice(len(df), max_candidates, replace=False))
        df = df.iloc[keep].reset_index(drop=True)
    objective = parse_objective(spec["objective"])
    y = df[objective.name].to_numpy(dtype=float)
    if info.input == "composition":
        formulas = df["formula"].tolist()
        feature_spec = composition_feature_spec(formulas)
        X = composition_features(formulas, feature_spec)
        X_plain = _fractions(formulas)
        features = (" + ".join(feature_spec).replace("magpie", "Magpie statistics")
                    .replace("element_fraction", "element fractions"))
        plain = "fractional composition"
    else:
        skip = {objective.name, "flag", "Label"}
        cols = [c for c in df.columns if c not in skip]
        X_plain = df[cols].to_numpy(dtype=float)
        if name == "octane_blends":
            X = _blend_descriptors(X_plain, cols)
            features = ("amount-weighted SMILES descriptors of the components "
                        f"({len(SMILES_DESCRIPTORS)}) + number of components")
        else:
            X = X_plain
            features = f"ingredient amounts ({len(cols)})"
        plain = f"raw columns ({len(cols)})"
    return Problem(
        name=name, X=X, X_plain=X_plain, y=y, objective=objective,
        budget=budget or spec["budget"], description=info.description.split("\n")[0][:300],
        features=features, plain_features=plain, unit=info.unit or "",
    )


def parse_target(spec: str) -> Objective:
    """``COLUMN:max``, ``COLUMN:min``, ``COLUMN:=VALUE`` or any :func:`parse_objective` text."""
    text = spec.strip()
    m = re.match(r"^(?P<col>.+?):\s*=\s*(?P<v>[-+0-9.eE]+)$", text)
    if m:
        return parse_objective(f"{m['col']} = {m['v']}")
    return parse_objective(text)


#: fewest rows with a target value that :func:`problem_from_table` accepts
MIN_TABLE_ROWS = 20


def problem_from_table(df, target: str, *, formula: str | None = None,
                       features: Sequence[str] | None = None, name: str = "table",
                       budget: int | None = None) -> Problem:
    """A :class:`Problem` from any table: ``target`` as in :func:`parse_target`; candidates
    described by a ``formula`` column or by numeric ``features`` (default: every numeric
    column but the target). Rows without a target value are dropped. The default budget is
    three times the experiments random search needs on average (at least 60)."""
    objective = parse_target(target)
    if objective.name not in df.columns:
        raise DesignSpaceError(f"{name}: no column {objective.name!r}; have {list(df.columns)}")
    import pandas as pd

    target_values = pd.to_numeric(df[objective.name], errors="coerce").to_numpy(dtype=float)
    df = df[np.isfinite(target_values)].reset_index(drop=True)
    y = pd.to_numeric(df[objective.name]).to_numpy(dtype=float)
    if len(y) < MIN_TABLE_ROWS:
        raise DesignSpaceError(
            f"{name}: {len(y)} rows with a target value; a replay needs at least "
            f"{MIN_TABLE_ROWS} (10 random starting experiments, then the strategy's choices)"
        )
    if formula is not None:
        if formula not in df.columns:
            raise DesignSpaceError(f"{name}: no formula column {formula!r}")
        feature_spec = composition_feature_spec(df[formula])
        X, X_plain = composition_features(df[formula], feature_spec), _fractions(df[formula])
        desc, plain = " + ".join(feature_spec), "fractional composition"
    else:
        cols = list(features) if features else [
            c for c in df.columns if c != objective.name and np.issubdtype(df[c].dtype, np.number)
        ]
        missing = [c for c in cols if c not in df.columns]
        if missing or not cols:
            raise DesignSpaceError(f"{name}: feature columns {missing or cols} not usable")
        X = X_plain = df[cols].to_numpy(dtype=float)
        desc = plain = f"raw columns ({len(cols)})"
    problem = Problem(name=name, X=X, X_plain=X_plain, y=y, objective=objective,
                      budget=len(y), features=desc, plain_features=plain)
    # Default budget: three times what random search needs on average, at least 60.
    problem.budget = int(budget or min(len(y), max(60, math.ceil(3 * problem.random_expected()))))
    if problem.good.sum() < 3:
        import warnings

        warnings.warn(
            f"{name}: only {int(problem.good.sum())} of {len(y)} candidates count as top-1 %, so "
            "whether a replay finds one early is mostly luck; acceleration factors from a table "
            "this small vary a lot between seeds (300 rows or more give 3+ top candidates)",
            stacklevel=2,
        )
    return problem


# -----------------------------------------------------------------------------------------------
# Replays
# -----------------------------------------------------------------------------------------------


@dataclass
class Replay:
    """One replay: the candidates in the order they were run and how long it took."""

    problem: str
    strategy: str
    seed: int
    batch: int
    order: np.ndarray
    seconds: float
    n_fits: int = 0
    extra: dict = field(default_factory=dict)


def initial_experiments(problem: Problem, seed: int, n_initial: int = 10) -> np.ndarray:
    """The random starting experiments of a seed, the same for every strategy."""
    return np.random.default_rng(seed).choice(problem.n, size=min(n_initial, problem.n),
                                              replace=False)


def replay(problem: Problem, strategy: Strategy | str, seed: int, batch: int = 1,
           n_initial: int = 10, *, features: str | None = None,
           representation_cache: dict | None = None) -> Replay:
    """Replay a campaign on ``problem`` with ``strategy`` (or ``"random"``).

    ``features``: ``"default"`` (``problem.X``) or ``"plain"`` (``problem.X_plain``); by
    default the baseline strategy gets the plain ones, every other the default ones. Stops
    when the best candidate has been run (every metric is then settled; best-so-far stays
    constant) or after ``problem.budget`` experiments.
    """
    t0 = time.perf_counter()
    start = initial_experiments(problem, seed, n_initial)
    name = strategy if isinstance(strategy, str) else strategy.name
    if isinstance(strategy, str):
        if strategy != "random":
            raise DesignSpaceError(f"unknown strategy {strategy!r}")
        rest = np.setdiff1d(np.arange(problem.n), start)
        rest = np.random.default_rng([seed, 1]).permutation(rest)
        order = np.concatenate([start, rest])
        hit = np.flatnonzero(problem.best[order])
        stop = min(problem.budget, int(hit[0]) + 1 if len(hit) else problem.budget)
        return Replay(problem.name, "random", seed, batch, order[:stop],
                      time.perf_counter() - t0)

    if features is None:
        features = "plain" if strategy.name == "baseline" else "default"
    if features not in ("default", "plain"):
        raise DesignSpaceError(f"features must be 'default' or 'plain', got {features!r}")
    plain = features == "plain"
    key = (problem.name, strategy.representation, strategy.n_components, plain)
    cache = representation_cache if representation_cache is not None else {}
    if key not in cache:
        raw = problem.X_plain if plain else problem.X
        rep = Representation(strategy.representation, strategy.n_components, seed=0).fit(raw)
        cache[key] = rep.transform(raw)
    Z = cache[key]
    Y = problem.y[:, None]
    done = list(start)
    run = np.zeros(problem.n, dtype=bool)
    run[start] = True
    n_fits = 0
    while len(done) < problem.budget and not problem.best[done].any():
        q = min(batch, problem.budget - len(done))
        idx = np.asarray(done)
        proposal = propose(strategy, Z, Z[idx], Y[idx], [problem.objective], q,
                           exclude=run, seed=seed)
        n_fits += 1
        picks = [int(i) for i in proposal.indices]
        done.extend(picks)
        run[picks] = True
    return Replay(problem.name, name, seed, batch, np.asarray(done), time.perf_counter() - t0,
                  n_fits)


# -----------------------------------------------------------------------------------------------
# Metrics
# -----------------------------------------------------------------------------------------------


def experiments_needed(problem: Problem, order: np.ndarray, which: str = "top") -> float:
    """Experiments until a good (or the best) candidate was run; past the budget, the budget
    plus the random expectation for the rest of the pool."""
    mask = problem.good if which == "top" else problem.best
    hit = np.flatnonzero(mask[order])
    if len(hit):
        return float(hit[0] + 1)
    n_done = len(order)
    left = problem.n - n_done
    k = int(mask.sum())  # none of them run yet
    return float(n_done + (left + 1) / (k + 1))


def best_so_far(problem: Problem, order: np.ndarray, length: int) -> np.ndarray:
    """Best utility after 1..length experiments (constant after the replay stopped)."""
    u = np.maximum.accumulate(problem.utility[order])
    if len(u) >= length:
        return u[:length]
    return np.concatenate([u, np.full(length - len(u), u[-1])])


def random_expected_best_of(utility: np.ndarray, n_max: int) -> np.ndarray:
    """E[max utility of n distinct random candidates] for n = 1..n_max (exact)."""
    u = np.sort(np.asarray(utility, dtype=float))
    N = len(u)
    out = np.empty(n_max)
    i = np.arange(1, N + 1)
    from scipy.special import gammaln

    for n in range(1, n_max + 1):
        # P(max = u_(i)) = C(i-1, n-1) / C(N, n), i >= n
        valid = i >= n
        logp = np.full(N, -np.inf)
        iv = i[valid]
        logp[valid] = (gammaln(iv) - gammaln(n) - gammaln(iv - n + 1)
                       - (gammaln(N + 1) - gammaln(n + 1) - gammaln(N - n + 1)))
        out[n - 1] = float(np.sum(np.exp(logp) * u))
    return out


def summarise(problem: Problem, replays: Sequence[Replay], ef_at: Sequence[int] = (20, 50),
              ) -> dict:
    """Metrics of one strategy's replays on ``problem`` (see the module docstring)."""
    length = problem.budget
    n_top = np.array([experiments_needed(problem, r.order, "top") for r in replays])
    n_best = np.array([experiments_needed(problem, r.order, "best") for r in replays])
    found_top = np.array([problem.good[r.order].any() for r in replays])
    found_best = np.array([problem.best[r.order].any() for r in replays])
    curves = np.array([best_so_far(problem, r.order, length) for r in replays])
    rand = random_expected_best_of(problem.utility, length)
    med = float(np.median(problem.utility))
    mean_curve = curves.mean(axis=0)
    se = curves.std(axis=0, ddof=1) / np.sqrt(len(curves)) if len(curves) > 1 else 0 * mean_curve
    with np.errstate(divide="ignore", invalid="ignore"):
        ef_curve = (mean_curve - med) / (rand - med)
    ef = {}
    for n in ef_at:
        if n <= length and np.isfinite(ef_curve[n - 1]):
            ef[str(n)] = float(ef_curve[n - 1])
    seconds = np.array([r.seconds for r in replays])
    return {
        "seeds": [r.seed for r in replays],
        "experiments_to_top": n_top.tolist(),
        "experiments_to_best": n_best.tolist(),
        "found_top_within_budget": int(found_top.sum()),
        "found_best_within_budget": int(found_best.sum()),
        "mean_experiments_to_top": float(n_top.mean()),
        "median_experiments_to_top": float(np.median(n_top)),
        "mean_experiments_to_best": float(n_best.mean()),
        "acceleration_top": problem.random_expected("top") / float(n_top.mean()),
        "acceleration_best": problem.random_expected("best") / float(n_best.mean()),
        "enhancement": ef,
        "curve_mean": mean_curve.tolist(),
        "curve_lo": (mean_curve - 1.96 * se).tolist(),
        "curve_hi": (mean_curve + 1.96 * se).tolist(),
        "random_expected_curve": rand.tolist(),
        "seconds_per_replay": float(seconds.mean()),
        "n_fits": int(sum(r.n_fits for r in replays)),
    }


# -----------------------------------------------------------------------------------------------
# The benchmark runner
# -----------------------------------------------------------------------------------------------


def strategies_for(names: Sequence[str]) -> dict[str, Strategy | str]:
    """Strategies by benchmark name: ``default``, ``baseline`` and ``random``."""
    known = {"default": default_strategy, "baseline": baseline_strategy}
    out: dict[str, Strategy | str] = {}
    for n in names:
        if n == "random":
            out[n] = "random"
        elif n in known:
            out[n] = known[n]()
        else:
            raise DesignSpaceError(f"unknown benchmark strategy {n!r}; use default, baseline, random")
    return out


_WORKER_PROBLEMS: dict = {}


def _replay_task(spec, sname: str, batch: int, seed: int, n_initial: int) -> Replay:
    """One replay in a worker process. ``spec`` is a :class:`Problem` or, for bundled
    benchmarks, ``(name, budget, max_candidates)``, loaded once per worker. Each worker keeps
    one representation cache per problem."""
    if isinstance(spec, Problem):
        problem = spec
        cache = _WORKER_PROBLEMS.setdefault(("cache", spec.name), {})
    else:
        if spec not in _WORKER_PROBLEMS:
            _WORKER_PROBLEMS[spec] = (load_problem(spec[0], budget=spec[1],
                                                   max_candidates=spec[2]), {})
        problem, cache = _WORKER_PROBLEMS[spec]
    strategy = strategies_for([sname])[sname]
    return replay(problem, strategy, seed, batch, n_initial, representation_cache=cache)


def run_benchmark(
    problems: Sequence[Problem],
    seeds: Sequence[int] = tuple(range(20)),
    batches: Sequence[int] = (1, 5),
    strategies: Sequence[str] = ("default", "baseline", "random"),
    *,
    baseline_batches: Sequence[int] = (1,),
    n_initial: int = 10,
    jobs: int = 1,
    specs: Sequence | None = None,
    progress: Callable[[str], None] | None = None,
    on_problem_done: Callable[[dict], None] | None = None,
) -> dict:
    """Replay every problem with every strategy, batch size and seed; returns the results
    (JSON-serialisable): per problem its :meth:`Problem.info` and, per ``strategy@batch``,
    :func:`summarise` plus each replay's order of experiments. The baseline runs only at
    ``baseline_batches`` (batch size 1, as specified); random search once (batch size is
    irrelevant to it).

    ``jobs > 1`` spreads the replays over that many worker processes (each replay is
    deterministic given its seed, so the results equal a serial run's). ``specs`` (one per
    problem, ``(name, budget, max_candidates)``) lets workers load bundled problems
    themselves instead of receiving a pickled copy.
    """
    strats = strategies_for(strategies)
    results: dict = {"problems": {}, "seeds": list(seeds), "batches": list(batches),
                     "n_initial": n_initial,
                     "strategies": {k: (v if isinstance(v, str) else describe(v))
                                    for k, v in strats.items()}}
    units: list[tuple[int, str, str, int]] = []   # (problem index, run key, strategy, batch)
    for i, _ in enumerate(problems):
        for sname in strats:
            if sname == "random":
                sizes = [1]
            elif sname == "baseline":
                sizes = [b for b in batches if b in baseline_batches] or [min(batches)]
            else:
                sizes = list(batches)
            for b in sizes:
                key = "random" if sname == "random" else f"{sname}@{b}"
                units.append((i, key, sname, b))
    done: dict[tuple[int, str], dict[int, Replay]] = {(i, k): {} for i, k, _, _ in units}
    remaining = {i: sum(1 for u in units if u[0] == i) * len(seeds) for i in range(len(problems))}

    def record(i: int, key: str, rep: Replay) -> None:
        problem = problems[i]
        done[(i, key)][rep.seed] = rep
        if progress:
            progress(f"{problem.name} {key} seed {rep.seed}: "
                     f"{experiments_needed(problem, rep.order):.0f} experiments "
                     f"to top-1% ({rep.seconds:.1f} s)")
        remaining[i] -= 1
        if remaining[i] == 0:
            entry = {"info": problem.info(), "runs": {}}
            for j, k, _, _ in units:
                if j == i:
                    reps = [done[(i, k)][s] for s in seeds]
                    entry["runs"][k] = summarise(problem, reps)
                    entry["runs"][k]["orders"] = [r.order.tolist() for r in reps]
            results["problems"][problem.name] = entry
            if on_problem_done:
                on_problem_done(entry)

    if jobs <= 1:
        caches: dict[int, dict] = {}
        for i, key, sname, b in units:
            for s in seeds:
                rep = replay(problems[i], strats[sname], s, b, n_initial,
                             representation_cache=caches.setdefault(i, {}))
                record(i, key, rep)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {}
            # the slowest runs first, so that the pool drains evenly
            for i, key, sname, b in sorted(units, key=lambda u: (u[2] == "random", -problems[u[0]].n)):
                spec = specs[i] if specs is not None else problems[i]
                for s in seeds:
                    futures[pool.submit(_replay_task, spec, sname, b, s, n_initial)] = (i, key)
            for fut in as_completed(futures):
                i, key = futures[fut]
                record(i, key, fut.result())
    results["problems"] = {p.name: results["problems"][p.name] for p in problems}
    results["summary"] = summary_table(results)
    return results


def summary_table(results: dict) -> dict:
    """Acceleration factors per problem and run, their medians, and the targets' verdicts
    (default strategy: median AF ≥ 3, every AF ≥ 1, median above the baseline's)."""
    rows = []
    keys: list[str] = []
    for name, entry in results["problems"].items():
        row = {"problem": name, "random_expected_top": entry["info"]["random_expected_top"]}
        for key, run in entry["runs"].items():
            row[key] = run["acceleration_top"]
            row[f"{key} best"] = run["acceleration_best"]
            if key not in keys:
                keys.append(key)
        rows.append(row)
    medians = {k: float(np.median([r[k] for r in rows if k in r])) for k in keys}
    verdict = {}
    for k in keys:
        if k.startswith("default@"):
            vals = [r[k] for r in rows if k in r]
            base = medians.get("baseline@1")
            verdict[k] = {
                "median_af_at_least_3": medians[k] >= 3,
                "every_af_at_least_1": bool(min(vals) >= 1),
                "beats_baseline_median": base is None or medians[k] > base,
            }
    return {"rows": rows, "median_acceleration_top": medians, "targets": verdict}


def markdown_table(results: dict) -> str:
    """The acceleration factors of ``results`` as a Markdown table (for docs/benchmarks.md):
    one row per problem, columns per run (top-1 % and best), medians last."""
    summary = results.get("summary") or summary_table(results)
    keys = list(summary["median_acceleration_top"])
    head = ["campaign", "N", "K top-1 %", "E[random]"] + [f"AF {k}" for k in keys] + [
        f"AF best {k}" for k in keys if k != "random"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in results["problems"].items():
        info, runs = entry["info"], entry["runs"]
        cells = [name, str(info["n_candidates"]), str(info["n_top"]),
                 f"{info['random_expected_top']:.1f}"]
        cells += [f"{runs[k]['acceleration_top']:.2f}" if k in runs else "–" for k in keys]
        cells += [f"{runs[k]['acceleration_best']:.2f}" if k in runs else "–"
                  for k in keys if k != "random"]
        lines.append("| " + " | ".join(cells) + " |")
    med = ["**median**", "", "", ""] + [
        f"**{summary['median_acceleration_top'][k]:.2f}**" for k in keys] + [
        "" for k in keys if k != "random"]
    lines.append("| " + " | ".join(med) + " |")
    return "\n".join(lines) + "\n"
