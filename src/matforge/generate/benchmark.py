"""``matforge benchmark generate``: generation and design measured on data the models never saw.

**Generation.** The Materials Project corpus (:mod:`matforge.generate.corpus`) is split two
ways with seed 0 (10 % of compositions at random; 10 % of chemical systems). Each generator
trains on the valid-only part of a split's training compositions (the baselines draw from the
same set), samples 20,000 formulas with three seeds, and is scored by
:func:`~matforge.generate.metrics.generation_metrics` against that split (mean ± sd).

**Design.** ``matbench_mp_gap`` is split by chemical system into two halves (seed 0). An
*oracle* (LightGBM on Magpie features, :func:`~matforge.models.presets.make_model` ``"lgbm"``)
learns one half and is the only model a design method may call; a *judge* of the same kind
learns the other half and is never called. Each method spends the same budget of distinct oracle
calls on the reward ``P(goal | oracle)`` (novel, charge-balanced compositions only; decaying
beyond domain distance 3). On the final top 100 the table reports the judge's hit rate (the
judge's mean prediction meets the goal), the oracle's hit rate (the gap between the two measures
reward hacking), distinct chemical systems, novelty against the whole corpus, CN+EB, and the
share inside the judge's domain (distance to the judge's training compositions <= 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from matforge.generate.reward import Goal, Reward, parse_goals

__all__ = [
    "DESIGN_TARGETS",
    "DesignModels",
    "design_benchmark",
    "design_models",
    "summarize_design",
]

#: The design targets: the band-gap window of the issue and a rare target (judge's predicted
#: base rate over the Materials Project corpus <= 2 %, measured in the benchmark's output).
DESIGN_TARGETS = {"window": "band_gap in [1.0, 1.8]", "rare": "band_gap >= 5"}
IN_DOMAIN = 2.0


@dataclass
class DesignModels:
    """The oracle, the judge, and the judge's domain (fitted on disjoint chemical systems)."""

    oracle: object
    judge: object
    judge_domain: object
    oracle_systems: int
    judge_systems: int
    seconds: float


def design_models(*, seed: int = 0, progress: Callable[[str], None] | None = None) -> DesignModels:
    """Oracle and judge on the two chemical-system halves of ``matbench_mp_gap``."""
    from matforge.datasets import load_dataset
    from matforge.generate.corpus import chemical_system, canonicalize
    from matforge.models.presets import make_model
    from matforge.screen.domain import DomainModel

    start = time.perf_counter()
    df = load_dataset("matbench_mp_gap")
    formulas = canonicalize(df["formula"].astype(str))
    y = df["gap_pbe"].to_numpy(dtype=float)
    systems = np.array([chemical_system(f) for f in formulas])
    distinct = np.unique(systems)
    rng = np.random.default_rng(seed)
    oracle_side = set(distinct[rng.random(len(distinct)) < 0.5].tolist())
    side = np.array([s in oracle_side for s in systems])
    fitted = []
    for name, rows in (("oracle", side), ("judge", ~side)):
        if progress:
            progress(f"training the {name} on {rows.sum():,} band gaps")
        m = make_model("lgbm", featurizer=["magpie"], random_state=seed, target="band_gap", unit="eV")
        fitted.append(m.fit([f for f, k in zip(formulas, rows, strict=True) if k], y[rows]))
    judge = fitted[1]
    F, _ = judge._features(list(judge.oof_["formula"]), strict=False)
    domain = DomainModel(random_state=seed).fit(F)
    return DesignModels(fitted[0], judge, domain, len(oracle_side),
                        len(distinct) - len(oracle_side), time.perf_counter() - start)  # fmt: skip


def summarize_design(result, goal: Goal, models: DesignModels, known: set[str], k: int = 100) -> dict:
    """Judge/oracle hit rates and the diversity, novelty, validity, domain of the top ``k``."""
    from matforge.generate.corpus import chemical_system, valid_mask

    top = result.top(k)
    formulas = top["formula"].tolist()
    if not formulas:
        return {"n_top": 0, "calls": result.calls, "seconds": result.seconds}
    judged = models.judge.predict(formulas)
    F, _ = models.judge._features(formulas, strict=False)
    in_domain = models.judge_domain.distance(F) <= IN_DOMAIN
    return {
        "n_top": len(formulas),
        "calls": result.calls,
        "judge_hit_rate": float(goal.hit(judged).mean()),
        "judge_hits": int(goal.hit(judged).sum()),
        "oracle_hit_rate": float(goal.hit(top[goal.property].to_numpy(float)).mean()),
        "chemical_systems": len({chemical_system(f) for f in formulas}),
        "novelty": float(np.mean([f not in known for f in formulas])),
        "cn_eb": float(np.mean(valid_mask(formulas))),
        "in_judge_domain": float(in_domain.mean()),
        "mean_reward": float(top["reward"].mean()),
        "seconds": round(result.seconds, 1),
    }


def design_benchmark(
    models: DesignModels,
    prior,
    *,
    targets: dict[str, str] | None = None,
    methods: Sequence[str] = ("rl", "ga", "best-of-n", "random"),
    budget: int = 2000,
    seeds: Sequence[int] = (0, 1, 2),
    known: Sequence[str] | None = None,
    reference: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Every method × target × seed at the same budget; returns per-run summaries and the
    judge's base rate of each target over ``known``."""
    from matforge.generate.corpus import load_corpus
    from matforge.generate.optimize import optimize

    targets = targets or DESIGN_TARGETS
    known = list(known) if known is not None else load_corpus()
    reference = list(reference) if reference is not None else load_corpus(valid_only=True)
    known_set = set(known)
    judged_known = models.judge.predict(known)
    out: dict = {"targets": {}, "runs": {}}
    for tname, text in targets.items():
        (goal,) = parse_goals(text)
        out["targets"][tname] = {"goal": text, "judge_base_rate": float(goal.hit(judged_known).mean())}
        for method in methods:
            for seed in seeds:
                reward = Reward([goal], {goal.property: models.oracle}, known=known_set)
                reward._domain = _oracle_domain(models)
                res = optimize(reward, method, budget=budget, prior=prior, reference=reference, seed=seed)
                row = summarize_design(res, goal, models, known_set)
                out["runs"][f"{tname}/{method}/{seed}"] = row
                if progress:
                    progress(f"{tname} {method} seed {seed}: judge {row.get('judge_hit_rate', 0):.2f} "
                             f"oracle {row.get('oracle_hit_rate', 0):.2f} "
                             f"systems {row.get('chemical_systems', 0)} ({row['seconds']} s)")  # fmt: skip
    return out


_DOMAINS: dict[int, object] = {}


def _oracle_domain(models: DesignModels):
    """The oracle's domain, fitted once per benchmark (every Reward would refit it)."""
    key = id(models.oracle)
    if key not in _DOMAINS:
        from matforge.screen.domain import DomainModel

        F, _ = models.oracle._features(list(models.oracle.oof_["formula"]), strict=False)
        _DOMAINS[key] = DomainModel(random_state=0).fit(F)
    return _DOMAINS[key]
