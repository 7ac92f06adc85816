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
* **experiments needed** to find one (initial experiments included) — or, for problems whose
  goal is ``k_top`` good candidates (the catalysis window: 5 surfaces in it), the ``k``-th; a
  replay that runs out of budget ``B`` having found ``f < k`` is counted as
  ``B + (k − f)(N − B + 1)/(K − f + 1)``, the expected number of further random draws from the
  ``N − B`` rows left, ``K − f`` of them good;
* **acceleration factor** ``AF = E[random] / mean(strategy)``, where
  ``E[random] = k(N + 1)/(K + 1)`` is the exact expectation for random search without
  replacement (the random replays in the same run check it);
* **enhancement factor** at ``n`` experiments
  ``EF(n) = (mean best-so-far utility − median utility) / (E[best of n random] − median
  utility)``, the random expectation being exact (order statistics of the pool).

Bundled problems (:data:`BENCHMARKS`, 13): ``elasticity`` (bulk modulus ≥ its 99th
percentile among 12,277 compositions), ``matbench_steels`` (highest yield strength of 312
steels), ``matbench_expt_gap`` (experimental gap in [1.2, 1.4] eV among 4,604 compositions),
``photo_pce10`` and ``photo_wf3`` (least photo-degradation of 1,040 four-polymer blends),
``colors_bob`` (dye mixture with the smallest distance to the target green of 241),
``octane_blends`` (highest motor octane number of 722 fuels and blends) — the seven the
defaults were first tuned on (:data:`ORIGINAL_BENCHMARKS`) —, the five experimental sets of
Liang et al. 2021 with the paper's objectives, each distinct input setting once with the mean of
its (unique) repeated outcomes as the paper replays them (``liang2021_agnp``: least spectral
loss of 164 silver-nanoparticle syntheses; ``liang2021_autoam``: highest print score of 100
settings; ``liang2021_crossed_barrel``: toughest of 600 designs; ``liang2021_p3ht``: highest
conductivity of 178 films; ``liang2021_perovskite``: least unstable of 94 compositions), and
``catalysis_co_window``: 5 of the 33 surfaces with a CO binding energy in [−0.7, −0.5] eV among
295 (Ma et al. 2015; the 13 electronic descriptors as features). Any table works with
:func:`problem_from_table`.

Batches: for batch sizes above 1, every replay records how far apart the members of each batch
are — the mean (and the smallest) pairwise Euclidean distance in the strategy's feature space
with every column scaled to unit standard deviation over the pool, divided by the mean pairwise
distance of random pairs of the pool (1 = as spread as random picks; near 0 = near-duplicates)
— and :func:`summarise` reports its mean as ``batch_spread``.

Resuming: :func:`run_benchmark` with ``cache_dir`` writes every replay to its own JSON file as
soon as it finishes and reuses those files on the next run with the same settings, so a long run
can be stopped and restarted (and split over machines). ``stop="top"`` ends a replay once the
goal's top candidates are found: the top-1 % metrics are exactly those of a full replay at a
fraction of the cost (used to score candidate strategies, :mod:`matforge.design.selection`).

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

#: the seven campaign benchmarks the defaults were first chosen on
ORIGINAL_BENCHMARKS = (
    "elasticity",
    "matbench_steels",
    "matbench_expt_gap",
    "photo_pce10",
    "photo_wf3",
    "colors_bob",
    "octane_blends",
)
#: the five experimental sets of Liang et al. 2021 (npj Comput. Mater. 7, 188)
LIANG_BENCHMARKS = (
    "liang2021_agnp",
    "liang2021_autoam",
    "liang2021_crossed_barrel",
    "liang2021_p3ht",
    "liang2021_perovskite",
)
BENCHMARKS = ORIGINAL_BENCHMARKS + LIANG_BENCHMARKS + ("catalysis_co_window",)

# name -> objective, budget of experiments and, optionally, the bundled dataset it replays
# ("dataset", default: the same name), the number of good candidates to find ("k_top"), and
# "distinct": one candidate per distinct input setting, with the mean of its unique outcomes
# (Liang et al.'s preprocessing)
_SPECS: dict[str, dict] = {
    "elasticity": {"objective": "bulk_modulus max", "budget": 100},
    "matbench_steels": {"objective": "yield_strength max", "budget": 150},
    "matbench_expt_gap": {"objective": "gap_expt in [1.2, 1.4]", "budget": 100},
    "photo_pce10": {"objective": "degradation min", "budget": 150},
    "photo_wf3": {"objective": "degradation min", "budget": 150},
    "colors_bob": {"objective": "difference_to_green min", "budget": 120},
    "octane_blends": {"objective": "MON max", "budget": 150},
    "liang2021_agnp": {"objective": "loss min", "budget": 120, "distinct": True},
    "liang2021_autoam": {"objective": "score max", "budget": 100, "distinct": True},
    "liang2021_crossed_barrel": {"objective": "toughness max", "budget": 150, "distinct": True},
    "liang2021_p3ht": {"objective": "conductivity max", "budget": 120, "distinct": True},
    "liang2021_perovskite": {"objective": "instability_index min", "budget": 94,
                             "distinct": True},
    "catalysis_co_window": {"dataset": "catalysis_ma2015_co", "k_top": 5, "budget": 110,
                            "objective": "binding_energy_of_adsorbed in [-0.7, -0.5]"},
}


@dataclass
class Problem:
    """A replayable campaign: candidates, their hidden outcomes, and the goal.

    ``X`` are the default strategy's raw features (before its representation), ``X_plain`` the
    baseline's; ``y`` the outcome of every candidate in the property's units. The goal is to
    run ``k_top`` of the top ``top_fraction`` of the pool (by utility).
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
    k_top: int = 1

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
        self.k_top = int(self.k_top)
        if not 1 <= self.k_top <= int(self.good.sum()):
            raise DesignSpaceError(
                f"{self.name}: k_top must be between 1 and the {int(self.good.sum())} top "
                f"candidates, got {self.k_top}"
            )

    @property
    def n(self) -> int:
        return len(self.y)

    def random_expected(self, which: str = "top") -> float:
        """Exact expected experiments random search needs to find ``k_top`` good (``"top"``)
        candidates or the best (``"best"``) one: ``k(N + 1)/(K + 1)``."""
        k = self.k_top if which == "top" else 1
        K = int((self.good if which == "top" else self.best).sum())
        return k * (self.n + 1) / (K + 1)

    def settled(self, order, stop: str = "best") -> bool:
        """Whether a replay that ran ``order`` can stop: ``k_top`` good candidates run and,
        with ``stop="best"``, the best one too (every metric is then final)."""
        done = np.asarray(order, dtype=int)
        if int(self.good[done].sum()) < self.k_top:
            return False
        return stop == "top" or bool(self.best[done].any())

    def fingerprint(self) -> str:
        """Digest of what a replay depends on (outcomes, goal, budget), naming cached replays."""
        import hashlib

        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.y, dtype=np.float64).tobytes())
        h.update(f"{self.objective}|{self.budget}|{self.top_fraction}|{self.k_top}|"
                 f"{np.shape(self.X)}|{np.shape(self.X_plain)}".encode())
        return h.hexdigest()[:12]

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
            "top_fraction": self.top_fraction,
            "k_top": self.k_top,
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


def distinct_settings(df, inputs: Sequence[str], target: str):
    """One row per distinct setting of ``inputs``, its ``target`` the mean of the setting's
    *unique* outcomes (Liang et al. 2021's preprocessing: ``groupby(...).agg(lambda x:
    x.unique().mean())``), in sorted order of the settings."""
    grouped = df.groupby(list(inputs), sort=True)[target].agg(lambda x: x.unique().mean())
    return grouped.reset_index()


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
    dataset = spec.get("dataset", name)
    info = dataset_info(dataset)
    df = load_dataset(dataset)
    objective = parse_objective(spec["objective"])
    numeric = [c for c in df.columns if c not in {objective.name, "flag", "Label"}
               and np.issubdtype(df[c].dtype, np.number)]
    if spec.get("distinct"):
        df = distinct_settings(df, numeric, objective.name)
    if max_candidates is not None and max_candidates < len(df):
        keep = np.sort(np.random.default_rng(seed).choice(len(df), max_candidates, replace=False))
        df = df.iloc[keep].reset_index(drop=True)
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
        cols = numeric
        X_plain = df[cols].to_numpy(dtype=float)
        if name == "octane_blends":
            X = _blend_descriptors(X_plain, cols)
            features = ("amount-weighted SMILES descriptors of the components "
                        f"({len(SMILES_DESCRIPTORS)}) + number of components")
        else:
            X = X_plain
            kind = {"formulation": "ingredient amounts", "surface": "surface descriptors",
                    "process": "process parameters"}.get(info.input, "columns")
            features = f"{kind} ({len(cols)})"
        plain = f"raw columns ({len(cols)})"
    description = info.description.split("\n")[0][:300]
    if spec.get("distinct"):
        description = f"{len(y)} distinct settings (mean outcome of repeats) of: {description}"
    problem = Problem(
        name=name, X=X, X_plain=X_plain, y=y, objective=objective,
        budget=budget or spec["budget"], description=description,
        features=features, plain_features=plain, unit=info.unit or "",
    )
    # a subsampled pool may hold fewer good candidates than the goal counts
    problem.k_top = min(spec.get("k_top", 1), int(problem.good.sum()))
    return problem


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
    """One replay: the candidates in the order they were run and how long it took.

    ``extra`` holds the stopping rule (``"stop"``), the number of initial experiments and, for
    batches, their spread (``"batch_spread"``: per batch, the mean and the smallest pairwise
    distance of its members relative to the pool's mean pairwise distance)."""

    problem: str
    strategy: str
    seed: int
    batch: int
    order: np.ndarray
    seconds: float
    n_fits: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"problem": self.problem, "strategy": self.strategy, "seed": self.seed,
                "batch": self.batch, "order": [int(i) for i in self.order],
                "seconds": self.seconds, "n_fits": self.n_fits, "extra": self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> Replay:
        return cls(d["problem"], d["strategy"], int(d["seed"]), int(d["batch"]),
                   np.asarray(d["order"], dtype=int), float(d["seconds"]), int(d["n_fits"]),
                   dict(d.get("extra", {})))


def initial_experiments(problem: Problem, seed: int, n_initial: int = 10) -> np.ndarray:
    """The random starting experiments of a seed, the same for every strategy."""
    return np.random.default_rng(seed).choice(problem.n, size=min(n_initial, problem.n),
                                              replace=False)


def pool_spread(Z: np.ndarray, n_pairs: int = 4000) -> tuple[np.ndarray, float]:
    """``Z`` with every column scaled to unit standard deviation over the pool, and the mean
    Euclidean distance between random pairs of distinct pool rows in that scaling (seeded)."""
    Z = np.asarray(Z, dtype=float)
    sd = Z.std(axis=0)
    Zs = Z / np.where(sd > 1e-12, sd, 1.0)
    rng = np.random.default_rng(0)
    i = rng.integers(0, len(Zs), n_pairs)
    j = rng.integers(0, len(Zs), n_pairs)
    keep = i != j
    d = np.linalg.norm(Zs[i[keep]] - Zs[j[keep]], axis=1)
    return Zs, float(d.mean()) if len(d) else 0.0


def batch_spread(Zs: np.ndarray, picks, pool_mean: float) -> tuple[float, float]:
    """Mean and smallest pairwise distance of the rows ``picks`` of the scaled pool ``Zs``,
    both divided by the pool's mean pairwise distance (:func:`pool_spread`)."""
    P = Zs[np.asarray(picks, dtype=int)]
    diff = P[:, None, :] - P[None, :, :]
    d = np.sqrt((diff**2).sum(axis=-1))[np.triu_indices(len(P), 1)]
    scale = pool_mean if pool_mean > 0 else 1.0
    return float(d.mean() / scale), float(d.min() / scale)


def replay(problem: Problem, strategy, seed: int, batch: int = 1,
           n_initial: int | None = None, *, features: str | None = None,
           representation_cache: dict | None = None, stop: str = "best") -> Replay:
    """Replay a campaign on ``problem`` with ``strategy`` (a :class:`Strategy`, a candidate
    policy of :mod:`matforge.design.candidates`, or ``"random"``).

    ``features``: ``"default"`` (``problem.X``) or ``"plain"`` (``problem.X_plain``); by
    default the baseline strategy gets the plain ones, every other the default ones.
    ``n_initial``: random starting experiments (default: the policy's own, 10 for a
    :class:`Strategy`). Stops when :meth:`Problem.settled` (``stop="best"``: the goal's top
    candidates and the best one have been run, so every metric is final; ``stop="top"``: the
    top candidates only) or after ``problem.budget`` experiments.
    """
    from matforge.design.candidates import as_policy

    if stop not in ("best", "top"):
        raise DesignSpaceError(f"stop must be 'best' or 'top', got {stop!r}")
    t0 = time.perf_counter()
    if isinstance(strategy, str):
        if strategy != "random":
            raise DesignSpaceError(f"unknown strategy {strategy!r}")
        n_initial = 10 if n_initial is None else n_initial
        start = initial_experiments(problem, seed, n_initial)
        rest = np.setdiff1d(np.arange(problem.n), start)
        rest = np.random.default_rng([seed, 1]).permutation(rest)
        order = np.concatenate([start, rest])
        stop_at = problem.budget
        for i in range(1, problem.budget + 1):
            if problem.settled(order[:i], stop):
                stop_at = i
                break
        return Replay(problem.name, "random", seed, batch, order[:stop_at],
                      time.perf_counter() - t0, 0, {"stop": stop, "n_initial": n_initial})

    policy = as_policy(strategy)
    n_initial = policy.n_initial if n_initial is None else n_initial
    start = initial_experiments(problem, seed, n_initial)
    if features is None:
        features = policy.features
    if features not in ("default", "plain"):
        raise DesignSpaceError(f"features must be 'default' or 'plain', got {features!r}")
    plain = features == "plain"
    key = (problem.name, policy.representation, policy.n_components, plain)
    cache = representation_cache if representation_cache is not None else {}
    if key not in cache:
        raw = problem.X_plain if plain else problem.X
        rep = Representation(policy.representation, policy.n_components, seed=0).fit(raw)
        cache[key] = rep.transform(raw)
    Z = cache[key]
    spread_key = key + ("spread",)
    if batch > 1 and spread_key not in cache:
        cache[spread_key] = pool_spread(Z)
    done = list(start)
    run = np.zeros(problem.n, dtype=bool)
    run[start] = True
    n_fits = 0
    spreads: list[tuple[float, float]] = []
    state = policy.start()
    while len(done) < problem.budget and not problem.settled(done, stop):
        q = min(batch, problem.budget - len(done))
        idx = np.asarray(done)
        picks = [int(i) for i in policy.propose(Z, idx, problem.y[idx], problem.objective, q,
                                                exclude=run, seed=seed, state=state)]
        n_fits += 1
        if len(picks) > 1:
            Zs, pool_mean = cache[spread_key]
            spreads.append(batch_spread(Zs, picks, pool_mean))
        done.extend(picks)
        run[picks] = True
    extra = {"stop": stop, "n_initial": int(n_initial)}
    if spreads:
        extra["batch_spread"] = [[round(a, 6), round(b, 6)] for a, b in spreads]
    if state:
        extra["policy_state"] = policy.report(state)
    return Replay(problem.name, policy.name, seed, batch, np.asarray(done),
                  time.perf_counter() - t0, n_fits, extra)


# -----------------------------------------------------------------------------------------------
# Metrics
# -----------------------------------------------------------------------------------------------


def experiments_needed(problem: Problem, order: np.ndarray, which: str = "top") -> float:
    """Experiments until ``problem.k_top`` good (or the best) candidates were run; past the
    budget, the budget plus the random expectation for the rest of the pool."""
    mask = problem.good if which == "top" else problem.best
    k = problem.k_top if which == "top" else 1
    hit = np.flatnonzero(mask[np.asarray(order, dtype=int)])
    if len(hit) >= k:
        return float(hit[k - 1] + 1)
    n_done = len(order)
    left = problem.n - n_done
    found = len(hit)
    K = int(mask.sum())
    return float(n_done + (k - found) * (left + 1) / (K - found + 1))


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
    found_top = np.array([problem.good[r.order].sum() >= problem.k_top for r in replays])
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
        **spread_summary(replays),
    }


def spread_summary(replays: Sequence[Replay]) -> dict:
    """``{"batch_spread": {...}}`` over the batches of ``replays`` (empty for batch size 1):
    the mean over batches of the mean and of the smallest pairwise distance between members,
    relative to the pool's mean pairwise distance (see the module docstring), and the share of
    batches whose closest pair is nearer than 10 % of it."""
    rows = [b for r in replays for b in r.extra.get("batch_spread", [])]
    if not rows:
        return {}
    a = np.asarray(rows, dtype=float)
    return {"batch_spread": {"mean_pairwise": float(a[:, 0].mean()),
                             "min_pairwise": float(a[:, 1].mean()),
                             "share_near_duplicate": float((a[:, 1] < 0.1).mean()),
                             "n_batches": len(a)}}


def summarise_top(problem: Problem, replays: Sequence[Replay]) -> dict:
    """The top-candidate metrics of ``replays`` alone (valid for ``stop="top"`` replays, which
    end once the goal's top candidates are found): experiments needed per seed, their mean,
    and the acceleration factor."""
    n_top = np.array([experiments_needed(problem, r.order, "top") for r in replays])
    return {
        "seeds": [r.seed for r in replays],
        "experiments_to_top": n_top.tolist(),
        "mean_experiments_to_top": float(n_top.mean()),
        "acceleration_top": problem.random_expected("top") / float(n_top.mean()),
        "seconds_per_replay": float(np.mean([r.seconds for r in replays])),
    }


# -----------------------------------------------------------------------------------------------
# The benchmark runner
# -----------------------------------------------------------------------------------------------


def strategies_for(names: Sequence[str]) -> dict:
    """Strategies by benchmark name: ``default``, ``baseline``, ``random`` and the candidate
    strategies of :data:`matforge.design.candidates.CANDIDATES`."""
    from matforge.design.candidates import CANDIDATES, make_candidate

    known = {"default": default_strategy, "baseline": baseline_strategy}
    out: dict = {}
    for n in names:
        if n == "random":
            out[n] = "random"
        elif n in known:
            out[n] = known[n]()
        elif n in CANDIDATES:
            out[n] = make_candidate(n)
        else:
            raise DesignSpaceError(
                f"unknown benchmark strategy {n!r}; use default, baseline, random or a "
                f"candidate: {', '.join(CANDIDATES)}"
            )
    return out


def _n_initial(strategy, n_initial: int | None) -> int:
    from matforge.design.candidates import as_policy

    if n_initial is not None:
        return int(n_initial)
    return 10 if isinstance(strategy, str) else as_policy(strategy).n_initial


class ReplayCache:
    """Replays on disk, one JSON file each, so that a long benchmark resumes where it stopped.

    A replay of ``problem`` by run ``key`` (``"default@1"``), ``n_initial`` starting
    experiments and seed lives in ``<dir>/<problem>-<fingerprint>/<key>-n<n_initial>/``; the
    fingerprint (:meth:`Problem.fingerprint`) changes with the outcomes, the goal and the
    budget. A ``stop="best"`` replay also serves a ``stop="top"`` request (it went further).
    Delete the folder after changing a strategy's code: the cache cannot tell.
    """

    def __init__(self, directory):
        from pathlib import Path

        self.directory = Path(directory)

    def _path(self, problem: Problem, key: str, n_initial: int, seed: int, stop: str):
        return (self.directory / f"{problem.name}-{problem.fingerprint()}"
                / f"{key}-n{n_initial}" / f"seed{seed}-{stop}.json")

    def get(self, problem: Problem, key: str, n_initial: int, seed: int,
            stop: str) -> Replay | None:
        import json

        for s in ("best", "top") if stop == "top" else ("best",):
            path = self._path(problem, key, n_initial, seed, s)
            if path.is_file():
                try:
                    return Replay.from_dict(json.loads(path.read_text(encoding="utf-8")))
                except (ValueError, KeyError):  # a file cut short by a crash: run it again
                    return None
        return None

    def put(self, problem: Problem, key: str, n_initial: int, rep: Replay) -> None:
        import json

        path = self._path(problem, key, n_initial, rep.seed, rep.extra.get("stop", "best"))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rep.as_dict()), encoding="utf-8")
        tmp.replace(path)  # atomic: a crash never leaves half a file under the real name


_WORKER_PROBLEMS: dict = {}


def _replay_task(spec, sname: str, batch: int, seed: int, n_initial: int | None,
                 stop: str = "best") -> Replay:
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
    return replay(problem, strategy, seed, batch, n_initial, representation_cache=cache,
                  stop=stop)


def run_benchmark(
    problems: Sequence[Problem],
    seeds: Sequence[int] = tuple(range(20)),
    batches: Sequence[int] = (1, 5),
    strategies: Sequence[str] = ("default", "baseline", "random"),
    *,
    baseline_batches: Sequence[int] = (1,),
    n_initial: int | None = None,
    jobs: int = 1,
    specs: Sequence | None = None,
    progress: Callable[[str], None] | None = None,
    on_problem_done: Callable[[dict], None] | None = None,
    cache_dir=None,
    stop: str = "best",
) -> dict:
    """Replay every problem with every strategy, batch size and seed; returns the results
    (JSON-serialisable): per problem its :meth:`Problem.info` and, per ``strategy@batch``,
    :func:`summarise` (with ``stop="top"``: :func:`summarise_top`) plus each replay's order of
    experiments. The baseline runs only at ``baseline_batches`` (batch size 1, as specified);
    random search once (batch size is irrelevant to it).

    ``n_initial``: random starting experiments for every strategy (default: each strategy's
    own, 10 unless a candidate says otherwise). ``jobs > 1`` spreads the replays over that many
    worker processes (each replay is deterministic given its seed, so the results equal a
    serial run's). ``specs`` (one per problem, ``(name, budget, max_candidates)``) lets workers
    load bundled problems themselves instead of receiving a pickled copy. ``cache_dir``: keep
    every replay on disk (:class:`ReplayCache`) and reuse the ones already there.
    """
    strats = strategies_for(strategies)
    cache = ReplayCache(cache_dir) if cache_dir is not None else None
    results: dict = {"problems": {}, "seeds": list(seeds), "batches": list(batches),
                     "n_initial": n_initial, "stop": stop,
                     "strategies": {k: (v if isinstance(v, str) else _describe(v))
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
    inits = {sname: _n_initial(v, n_initial) for sname, v in strats.items()}

    def record(i: int, key: str, sname: str, rep: Replay, cached: bool = False) -> None:
        problem = problems[i]
        done[(i, key)][rep.seed] = rep
        if cache is not None and not cached:
            cache.put(problem, key, inits[sname], rep)
        if progress:
            progress(f"{problem.name} {key} seed {rep.seed}: "
                     f"{experiments_needed(problem, rep.order):.0f} experiments "
                     f"to top-1% ({rep.seconds:.1f} s{', cached' if cached else ''})")
        remaining[i] -= 1
        if remaining[i] == 0:
            entry = {"info": problem.info(), "runs": {}}
            for j, k, _, _ in units:
                if j == i:
                    reps = [done[(i, k)][s] for s in seeds]
                    run = summarise(problem, reps) if stop == "best" else summarise_top(
                        problem, reps)
                    run["orders"] = [r.order.tolist() for r in reps]
                    entry["runs"][k] = run
            results["problems"][problem.name] = entry
            if on_problem_done:
                on_problem_done(entry)

    todo = []
    for i, key, sname, b in units:
        for s in seeds:
            rep = cache.get(problems[i], key, inits[sname], s, stop) if cache else None
            if rep is not None:
                record(i, key, sname, rep, cached=True)
            else:
                todo.append((i, key, sname, b, s))
    if jobs <= 1:
        caches: dict[int, dict] = {}
        for i, key, sname, b, s in todo:
            rep = replay(problems[i], strats[sname], s, b, n_initial,
                         representation_cache=caches.setdefault(i, {}), stop=stop)
            record(i, key, sname, rep)
    elif todo:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {}
            # the slowest runs first, so that the pool drains evenly
            for i, key, sname, b, s in sorted(
                    todo, key=lambda u: (u[2] == "random", -problems[u[0]].n)):
                spec = specs[i] if specs is not None else problems[i]
                futures[pool.submit(_replay_task, spec, sname, b, s, n_initial, stop)] = (
                    i, key, sname)
            for fut in as_completed(futures):
                i, key, sname = futures[fut]
                record(i, key, sname, fut.result())
    results["problems"] = {p.name: results["problems"][p.name] for p in problems}
    results["summary"] = summary_table(results)
    return results


def _describe(strategy) -> dict:
    from matforge.design.candidates import as_policy

    if isinstance(strategy, Strategy):
        return describe(strategy)
    return as_policy(strategy).describe()


def summary_table(results: dict) -> dict:
    """Acceleration factors per problem and run, their medians, and the targets' verdicts
    (default strategy: median AF ≥ 3, every AF ≥ 1, median above the baseline's)."""
    rows = []
    keys: list[str] = []
    for name, entry in results["problems"].items():
        row = {"problem": name, "random_expected_top": entry["info"]["random_expected_top"]}
        for key, run in entry["runs"].items():
            row[key] = run["acceleration_top"]
            if "acceleration_best" in run:
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
    one row per problem, columns per run (top-1 % and best), the batch spread of runs with
    batches (mean / smallest pairwise distance relative to random pairs of the pool), medians
    last. ``K top-1 %`` reads ``K (k)`` where the goal is ``k`` of the ``K`` top candidates."""
    summary = results.get("summary") or summary_table(results)
    keys = list(summary["median_acceleration_top"])
    entries = results["problems"].values()
    best_keys = [k for k in keys if k != "random"
                 and any("acceleration_best" in e["runs"].get(k, {}) for e in entries)]
    spread_keys = [k for k in keys if any("batch_spread" in e["runs"].get(k, {})
                                          for e in entries)]
    head = (["campaign", "N", "K top-1 %", "E[random]"] + [f"AF {k}" for k in keys]
            + [f"AF best {k}" for k in best_keys] + [f"spread {k}" for k in spread_keys])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in results["problems"].items():
        info, runs = entry["info"], entry["runs"]
        k_top = info.get("k_top", 1)
        cells = [name, str(info["n_candidates"]),
                 f"{info['n_top']} ({k_top})" if k_top > 1 else str(info["n_top"]),
                 f"{info['random_expected_top']:.1f}"]
        cells += [f"{runs[k]['acceleration_top']:.2f}" if k in runs else "–" for k in keys]
        cells += [f"{runs[k]['acceleration_best']:.2f}" if "acceleration_best" in runs.get(k, {})
                  else "–" for k in best_keys]
        for k in spread_keys:
            sp = runs.get(k, {}).get("batch_spread")
            cells.append(f"{sp['mean_pairwise']:.2f} / {sp['min_pairwise']:.2f}" if sp else "–")
        lines.append("| " + " | ".join(cells) + " |")
    med = ["**median**", "", "", ""] + [
        f"**{summary['median_acceleration_top'][k]:.2f}**" for k in keys] + [
        "" for _ in best_keys] + ["" for _ in spread_keys]
    lines.append("| " + " | ".join(med) + " |")
    return "\n".join(lines) + "\n"


# -----------------------------------------------------------------------------------------------
# Choosing the default: candidates scored by leave-one-problem-out
# -----------------------------------------------------------------------------------------------


def lopo_report(candidate_results: dict, candidates: Sequence[str],
                reference: str = "default", baseline: str = "baseline") -> dict:
    """Leave-one-problem-out choice among ``candidates`` from :func:`run_benchmark` results
    of those candidates at batch size 1 (``stop="top"`` is enough), scored by the top-1 %
    acceleration factor (:func:`matforge.design.selection.lopo`).

    Per problem: the candidate chosen on the other problems and its AF there (the expected
    performance on a new problem), the in-suite choice's AF, ``reference`` (the current
    default), ``baseline`` and random search (when they were run). Also the verdicts of
    :func:`matforge.design.selection.targets` on the held-out AFs against ``baseline``.
    """
    from matforge.design.selection import lopo, targets

    scores, extra = {}, {}
    for name, entry in candidate_results["problems"].items():
        runs = entry["runs"]
        scores[name] = {c: runs[f"{c}@1"]["acceleration_top"] for c in candidates}
        extra[name] = {k: runs[k]["acceleration_top"] for k in (f"{reference}@1",
                                                               f"{baseline}@1", "random")
                       if k in runs}
    out = lopo(scores, candidates)
    out["scores"] = scores
    for name, row in out["problems"].items():
        row["reference"] = extra[name].get(f"{reference}@1")
        row["baseline"] = extra[name].get(f"{baseline}@1")
        row["random"] = extra[name].get("random")
        row["random_expected_top"] = candidate_results["problems"][name]["info"][
            "random_expected_top"]
    held = {p: r["score"] for p, r in out["problems"].items()}
    if all(r["baseline"] is not None for r in out["problems"].values()):
        n = len(held)
        out["targets"] = targets(held, {p: r["baseline"] for p, r in out["problems"].items()},
                                 beat_baseline_on=min(10, n) if n < 12 else round(10 * n / 12))
    out["reference"], out["baseline"] = reference, baseline
    return out


def lopo_markdown(report: dict) -> str:
    """:func:`lopo_report` as Markdown: per problem the held-out choice and its AF beside the
    in-suite choice, the current default, the plain baseline and random search; medians and
    geometric means last; then every candidate's AF per problem."""
    ins = report["in_suite"]["chosen"]
    head = ["campaign", "E[random]", "chosen without it", "AF LOPO",
            f"AF in-suite ({ins})", f"AF {report['reference']}", f"AF {report['baseline']}",
            "AF random"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def f(v):
        return "–" if v is None else f"{v:.2f}"

    cols = {"score": [], "in_suite_score": [], "reference": [], "baseline": [], "random": []}
    for name, r in report["problems"].items():
        lines.append(f"| {name} | {r['random_expected_top']:.1f} | {r['chosen']} | "
                     f"{f(r['score'])} | {f(r['in_suite_score'])} | {f(r['reference'])} | "
                     f"{f(r['baseline'])} | {f(r['random'])} |")
        for k in cols:
            if r[k] is not None:
                cols[k].append(r[k])
    for label, fn in (("median", np.median),
                      ("geometric mean", lambda v: float(np.exp(np.mean(np.log(v)))))):
        cells = [f"**{label}**", "", ""] + [
            f"**{fn(cols[k]):.2f}**" if cols[k] else "–" for k in cols]
        lines.append("| " + " | ".join(cells) + " |")
    cands = report["candidates"]
    lines += ["", "| campaign | " + " | ".join(cands) + " |", "|" + "---|" * (len(cands) + 1)]
    for name, row in report["scores"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.2f}" for c in cands) + " |")
    from matforge.design.selection import aggregate

    lines.append("| **geometric mean** | " + " | ".join(
        f"**{aggregate([report['scores'][p][c] for p in report['scores']]):.2f}**"
        for c in cands) + " |")
    return "\n".join(lines) + "\n"
