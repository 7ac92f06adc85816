"""The superhard-materials search: train modulus models, screen a pool, rank by hardness.

:func:`run_superhard` is what ``matforge demo superhard`` runs:

1. **Training data** (:func:`training_data`) — bundled Materials Project moduli in formula
   form: bulk modulus from ``matbench_log_kvrh`` (log10 GPa), ``elasticity`` and
   ``mp_bulk_modulus`` (GPa); shear modulus from ``matbench_log_gvrh`` and ``mp_shear_modulus``.
   All are Materials Project VRH averages, so they can be pooled; the AFLOW-AEL sets are left
   out (another DFT workflow, and its compositions are not the pool's). Rows flagged as
   impossible (``non_positive_modulus``, ``*_above_diamond``, ``unparseable_formula``) are
   dropped first; then rows of the same composition (equal atomic fractions) are merged by the
   mean of log10 modulus (polymorphs and repeated entries across the sets).
2. **Validation hold-out** (:func:`hardness_holdout`) — of the compositions with both moduli
   and a mechanically plausible pair (Poisson's ratio ≥ 0), the hardest ``holdout`` fraction (2%) by the Chen hardness of their DFT moduli is removed from
   both training sets and screened together with the pool; where they land in the ranking
   (recall in the top 1% / 5%) measures how well the screen finds hard materials it never saw.
3. **Models** — :class:`matforge.models.BoostedEnsembleUQ` (bagged LightGBM with calibrated
   std) on log10 modulus over Magpie + stoichiometry + valence-orbital features, one per
   modulus; out-of-fold predictions give the parity and calibration figures and the
   correlation of the two models' errors (used by the Monte Carlo).
4. **Screen** — ``elasticity_pool`` (128,495 rows), minus compositions in any training set,
   one row per composition, plus the held-out compounds; predicted B and G with std, Vickers
   hardness (Chen, Tian) and Pugh's ratio by Monte Carlo, distance to the training data and map
   cluster; rows whose mean moduli imply a negative Poisson's ratio (G > 1.5 B) are dropped;
   the rest are ranked by predicted Chen hardness (mean).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matforge.chem.elements import DEFAULT_EXCLUDED, describe_elements, element_set

__all__ = [
    "SuperhardModels",
    "SuperhardSettings",
    "hardness_holdout",
    "run_superhard",
    "train_superhard",
    "training_data",
]

_IMPOSSIBLE = (
    "non_positive_modulus",
    "bulk_modulus_above_diamond",
    "shear_modulus_above_diamond",
    "unparseable_formula",
)

#: (dataset, target column, target is log10) per property, in order of formula preference
SOURCES = {
    "bulk_modulus": [
        ("elasticity", "bulk_modulus", False),
        ("mp_bulk_modulus", "bulk_modulus", False),
        ("matbench_log_kvrh", "log10_k_vrh", True),
    ],
    "shear_modulus": [
        ("mp_shear_modulus", "shear_modulus", False),
        ("matbench_log_gvrh", "log10_g_vrh", True),
    ],
}


@dataclass
class SuperhardSettings:
    """Knobs of the demo; :meth:`fast` gives the ≤ 60 s variant used by the tests."""

    n_members: int = 4
    n_estimators: int = 160
    learning_rate: float = 0.1
    colsample_bytree: float = 0.5
    train_limit: int | None = None  # subsample each training set (None: all rows)
    pool_limit: int | None = None  # subsample the pool (None: all rows)
    holdout: float = 0.02
    top_k: int = 100
    chunk_size: int = 20_000
    n_samples: int = 256
    seed: int = 0
    n_jobs: int = 2
    fast: bool = False
    #: compositions with these elements are not screened (:func:`matforge.chem.element_set`)
    exclude_elements: str = DEFAULT_EXCLUDED

    @classmethod
    def fast_settings(cls) -> SuperhardSettings:
        return cls(
            n_members=3, n_estimators=50, learning_rate=0.15, colsample_bytree=0.5,
            train_limit=2000, pool_limit=40_000, n_samples=64, fast=True,
        )  # fmt: skip


def featurizer():
    """The demo's features: Magpie (132) + stoichiometry (6) + valence orbitals (8)."""
    from matforge.features import FeatureSet, MagpieFeaturizer, Stoichiometry, ValenceOrbital

    return FeatureSet([MagpieFeaturizer(), Stoichiometry(), ValenceOrbital()])


def _clean(prop: str) -> tuple[Any, dict[str, Any]]:
    """One property's training rows, merged by composition: (frame, provenance)."""
    import pandas as pd

    from matforge.chem.batch import CompositionBatch
    from matforge.datasets import load_dataset
    from matforge.screen.keys import composition_keys

    frames, prov = [], {"sources": [], "dropped_flagged": 0}
    for order, (name, col, is_log) in enumerate(SOURCES[prop]):
        df = load_dataset(name)
        bad = df["flag"].fillna("").str.contains("|".join(_IMPOSSIBLE))
        v = df[col].astype(float)
        logv = v if is_log else np.log10(v.where(v > 0))
        ok = ~bad & np.isfinite(logv)
        prov["sources"].append({"dataset": name, "rows": int(len(df)), "used": int(ok.sum())})
        prov["dropped_flagged"] += int(bad.sum())
        frames.append(
            pd.DataFrame({"formula": df.loc[ok, "formula"].astype(str), "log10": logv[ok],
                          "order": order})  # fmt: skip
        )
    df = pd.concat(frames, ignore_index=True)
    batch = CompositionBatch.from_formulas(df["formula"].tolist(), errors="collect")
    df = df[batch.valid].copy()
    df["key"] = composition_keys(batch.fractions[batch.valid])
    df = df.sort_values(["order"], kind="stable")
    merged = df.groupby("key", sort=False).agg(
        formula=("formula", "first"), log10=("log10", "mean"), n_entries=("log10", "size"),
        spread=("log10", "std"),
    ).reset_index()  # fmt: skip
    prov["rows_before_merge"] = int(len(df))
    prov["compositions"] = int(len(merged))
    return merged, prov


def training_data() -> tuple[dict[str, Any], dict[str, Any]]:
    """Cleaned, merged training frames per property (``formula, key, log10, n_entries``)."""
    out, prov = {}, {}
    for prop in SOURCES:
        out[prop], prov[prop] = _clean(prop)
    return out, prov


def hardness_holdout(data: dict[str, Any], fraction: float = 0.02):
    """The hardest ``fraction`` of compositions with both moduli (Chen hardness of DFT values).

    Returns a frame ``formula, key, bulk_modulus, shear_modulus, hardness_vickers`` (GPa).
    """
    from matforge.properties import mechanically_plausible, vickers_hardness_chen

    b = data["bulk_modulus"].set_index("key")
    g = data["shear_modulus"].set_index("key")
    both = b.join(g, how="inner", lsuffix="_b", rsuffix="_g")
    B, G = 10 ** both["log10_b"], 10 ** both["log10_g"]
    both = both.assign(bulk_modulus=B, shear_modulus=G, hardness_vickers=vickers_hardness_chen(B, G))
    # only ordinary solids (Poisson's ratio >= 0): a DFT entry with G >> B (B = 1 GPa,
    # G = 66 GPa) is a failed elastic fit, and the empirical hardness models explode on it
    both = both[mechanically_plausible(B, G)]
    n = max(1, int(round(fraction * len(both))))
    top = both.sort_values("hardness_vickers", ascending=False).head(n)
    return top.reset_index()[["formula_b", "key", "bulk_modulus", "shear_modulus",
                              "hardness_vickers"]].rename(columns={"formula_b": "formula"})  # fmt: skip


def _features(formulas, fz) -> np.ndarray:
    from matforge.chem.batch import CompositionBatch

    batch = CompositionBatch.from_formulas(list(formulas), errors="raise")
    return fz.featurize_batch(batch)


def train_property(X: np.ndarray, y: np.ndarray, s: SuperhardSettings):
    """(uncertainty ensemble, cheap model, out-of-fold dict) for log10 targets ``y``."""
    from lightgbm import LGBMRegressor

    from matforge.models import BoostedEnsembleUQ

    model = BoostedEnsembleUQ(
        n_members=s.n_members, n_estimators=s.n_estimators, learning_rate=s.learning_rate,
        colsample_bytree=s.colsample_bytree, random_state=s.seed, n_jobs=s.n_jobs,
    ).fit(X, y)  # fmt: skip
    cheap = LGBMRegressor(
        n_estimators=60, num_leaves=15, learning_rate=0.15, colsample_bytree=0.5,
        random_state=s.seed, n_jobs=1, verbose=-1,
    ).fit(X, y)  # fmt: skip
    mean = np.asarray(model.oof_prediction_, dtype=float)
    noise = getattr(model.noise_, "oob_std_", np.full(len(y), np.nan))
    std = np.maximum(model.std_scale_ * np.asarray(noise, dtype=float), 1e-6)
    ok = np.isfinite(mean) & np.isfinite(std)
    return model, cheap, {"y": y[ok], "mean": mean[ok], "std": std[ok], "rows": np.flatnonzero(ok)}


@dataclass
class SuperhardModels:
    """The superhard preset's trained models and what their training left for the report."""

    models: dict[str, Any]  # property -> matforge.screen.PropertyModel (log10 GPa, with cheap model)
    featurizer: Any  # the FeatureSet the models read (:func:`featurizer`)
    train: dict[str, Any]  # property -> training frame (formula, key, log10, ...)
    features: dict[str, np.ndarray]  # property -> training feature matrix
    oof: dict[str, dict[str, np.ndarray]]  # property -> out-of-fold y, mean, std, formula, key
    metrics: dict[str, dict[str, float]]  # property -> out-of-fold metrics (:func:`_metrics`)
    timings: dict[str, float] = field(default_factory=dict)


def train_superhard(
    settings: SuperhardSettings | None = None,
    *,
    data: dict[str, Any] | None = None,
    exclude_keys=(),
    rng: np.random.Generator | None = None,
    log=None,
    status=contextlib.nullcontext,
) -> SuperhardModels:
    """Train the superhard preset: one :class:`~matforge.models.BoostedEnsembleUQ` (and a cheap
    LightGBM for funnels) per modulus, on log10 GPa over :func:`featurizer`'s features.

    The one recipe behind ``matforge screen run --preset superhard[-fast]`` and ``matforge demo
    superhard`` (:func:`run_superhard`). ``data``: :func:`training_data`'s frames (loaded when
    None); ``exclude_keys``: composition keys left out of training (the demo's validation
    hold-out); ``settings.train_limit`` rows are drawn from each set with ``rng`` (default: seeded
    with ``settings.seed``). ``log`` gets a line on the data and on each model; ``status(text)``
    is a context manager around each model's training (a spinner in the CLI).
    """
    from matforge.screen.streaming import PropertyModel

    s = settings or SuperhardSettings()
    rng = np.random.default_rng(s.seed) if rng is None else rng
    if data is None:
        data, _ = training_data()
    held = set(exclude_keys)
    train = {}
    for prop, df in data.items():
        df = df[~df["key"].isin(held)].reset_index(drop=True)
        if s.train_limit and len(df) > s.train_limit:
            df = df.iloc[np.sort(rng.choice(len(df), s.train_limit, replace=False))]
            df = df.reset_index(drop=True)
        train[prop] = df
    if log:
        log(
            f"training data: {len(train['bulk_modulus']):,} bulk-modulus and "
            f"{len(train['shear_modulus']):,} shear-modulus compositions"
            + (f" ({len(held)} hardest held out for validation)" if held else "")
        )
    fz = featurizer()
    models, oof, metrics, X_train, timings = {}, {}, {}, {}, {}
    for prop, df in train.items():
        t = time.perf_counter()
        with status(f"training the {prop} model on {len(df):,} compositions ..."):
            X = _features(df["formula"], fz)
            X_train[prop] = X
            model, cheap, oof[prop] = train_property(X, df["log10"].to_numpy(), s)
        oof[prop]["formula"] = df["formula"].to_numpy()[oof[prop]["rows"]]
        oof[prop]["key"] = df["key"].to_numpy()[oof[prop]["rows"]]
        metrics[prop] = _metrics(oof[prop])
        models[prop] = PropertyModel(model, log10=True, unit="GPa", cheap=cheap)
        timings[f"train_{prop}"] = time.perf_counter() - t
        if log:
            m = metrics[prop]
            log(
                f"{prop}: out-of-fold MAE {m['mae_log10']:.3f} log10 GPa ({m['mae_gpa']:.1f} GPa), "
                f"68% coverage {m['coverage68']:.2f}, trained in {timings[f'train_{prop}']:.0f} s"
            )
    return SuperhardModels(models=models, featurizer=fz, train=train, features=X_train, oof=oof,
                           metrics=metrics, timings=timings)  # fmt: skip


@dataclass
class SuperhardResult:
    """Everything the report and the terminal summary need."""

    top: Any  # ranked pool candidates (held-out compounds removed), best first
    results: Any  # every screened row (pool + held-out) with predictions and rank
    holdout: Any  # held-out compounds with their DFT values and screen rank
    recall: dict[str, float]
    oof: dict[str, dict[str, np.ndarray]]
    metrics: dict[str, dict[str, float]]
    provenance: dict[str, Any]
    train_map: Any  # training compounds on the materials map
    pool_map: Any  # a sample of the pool on the map
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    settings: SuperhardSettings | None = None


def _metrics(oof: dict[str, np.ndarray]) -> dict[str, float]:
    from matforge.models.calibration import coverage, miscalibration_area

    y, m, s = oof["y"], oof["mean"], oof["std"]
    err = m - y
    return {
        "rows": int(len(y)),
        "mae_log10": float(np.mean(np.abs(err))),
        "rmse_log10": float(np.sqrt(np.mean(err**2))),
        "mae_gpa": float(np.mean(np.abs(10**m - 10**y))),
        "r2_log10": float(1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2)),
        "coverage68": float(coverage(y, m, s, 0.68)),
        "coverage95": float(coverage(y, m, s, 0.95)),
        "miscalibration_area": float(miscalibration_area(y, m, s)),
    }


def run_superhard(
    out: str | Path = "results/superhard",
    *,
    settings: SuperhardSettings | None = None,
    executor="serial",
    progress=False,
    log=print,
) -> SuperhardResult:
    """Train, screen, validate; writes ``candidates.parquet`` and ``top.csv`` under ``out``.

    The HTML report is written by :func:`matforge.report.superhard.write_superhard_report`
    (the CLI calls both).
    """
    import pandas as pd

    from matforge.datasets import load_dataset
    from matforge.screen.candidate_spaces import ConcatSpace, FormulaSpace
    from matforge.screen.domain import DomainModel
    from matforge.screen.keys import KnownCompositions
    from matforge.screen.streaming import Screen

    s = settings or SuperhardSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rng = np.random.default_rng(s.seed)

    data, prov = training_data()
    held = hardness_holdout(data, s.holdout)
    all_keys = np.unique(np.concatenate([d["key"].to_numpy() for d in data.values()]))
    timings["data"] = time.perf_counter() - t0
    trained = train_superhard(s, data=data, exclude_keys=held["key"].tolist(), rng=rng, log=log)
    models, oof, metrics, fz = trained.models, trained.oof, trained.metrics, trained.featurizer
    train, X_train = trained.train, trained.features
    timings.update(trained.timings)

    # correlation of the two models' errors (log10), on compositions in both sets
    rb = pd.Series(oof["bulk_modulus"]["mean"] - oof["bulk_modulus"]["y"],
                   index=oof["bulk_modulus"]["key"])  # fmt: skip
    rg = pd.Series(oof["shear_modulus"]["mean"] - oof["shear_modulus"]["y"],
                   index=oof["shear_modulus"]["key"])  # fmt: skip
    both = pd.concat([rb, rg], axis=1, join="inner").dropna()
    rho = float(np.clip(both.corr().iloc[0, 1], -0.95, 0.95)) if len(both) > 10 else 0.0

    t = time.perf_counter()
    domain = DomainModel(n_neighbors=5, n_components=10, random_state=s.seed).fit(
        X_train["bulk_modulus"]
    )
    timings["domain"] = time.perf_counter() - t

    pool = load_dataset("elasticity_pool")["formula"].astype(str)
    if s.pool_limit and len(pool) > s.pool_limit:
        pool = pool.iloc[np.sort(rng.choice(len(pool), s.pool_limit, replace=False))]
    pool_space = FormulaSpace(
        pool.tolist(), name="elasticity_pool", unique=True,
        exclude=KnownCompositions(all_keys),
    )  # fmt: skip
    held_space = FormulaSpace(held["formula"].tolist(), name="held-out")
    space = ConcatSpace([pool_space, held_space], name="elasticity_pool + held-out")
    space = space.without_elements(s.exclude_elements)
    log(f"leaving out compositions with {describe_elements(element_set(s.exclude_elements))}")
    screen = Screen(
        space, models, featurizer=fz, derive=["hardness_vickers", "hardness_tian", "pugh_ratio"],
        # the mean moduli themselves must be a plausible solid (Poisson's ratio >= 0)
        where="shear_modulus <= 1.5 * bulk_modulus",
        rank_by="hardness_vickers", top_k=None, domain=domain, dedupe=True,
        n_samples=s.n_samples, seed=s.seed, correlation=rho, chunk_size=s.chunk_size,
    )  # fmt: skip
    t = time.perf_counter()
    # every pool row is evaluated by the full models (no funnel: 10^5 rows take seconds), so
    # no checkpoint folder either; top_k=None keeps the whole ranking for the validation
    result = screen.run(executor=executor, progress=progress)
    timings["screen"] = time.perf_counter() - t
    ranked = result.top  # every passing row, best first (top_k=None)
    ranked["known"] = ranked["source"] == "held-out"
    n_ranked = len(ranked)
    held_rank = ranked.loc[ranked["known"], ["formula", "rank"]].set_index("formula")["rank"]
    holdout = held.assign(
        rank=held["formula"].map(held_rank),
        percentile=held["formula"].map(held_rank) / n_ranked * 100,
    )  # fmt: skip
    pred = ranked.set_index("formula")
    for c in ("hardness_vickers", "hardness_vickers_std", "bulk_modulus", "shear_modulus",
              "distance"):  # fmt: skip
        holdout[f"pred_{c}"] = holdout["formula"].map(pred[c]) if len(pred) else np.nan
    recall = {
        f"top_{p}pct": float((holdout["percentile"] <= p).mean()) for p in (1, 5, 10)
    }
    recall["n_heldout"] = int(len(holdout))
    recall["n_ranked"] = int(n_ranked)

    candidates = ranked.drop(columns=["index"])
    candidates.to_parquet(out / "candidates.parquet", index=False)
    top = ranked[~ranked["known"]].reset_index(drop=True)
    top["rank_in_pool"] = np.arange(1, len(top) + 1)
    top.head(s.top_k).to_csv(out / "top.csv", index=False)
    holdout.to_csv(out / "holdout.csv", index=False)

    train_map = pd.DataFrame({
        "formula": train["bulk_modulus"]["formula"].to_numpy(),
        "map_x": domain.train_map_[:, 0], "map_y": domain.train_map_[:, 1],
        "cluster": domain.train_cluster_, "bulk_modulus": 10 ** train["bulk_modulus"]["log10"],
    })  # fmt: skip
    sample = ranked.sample(min(len(ranked), 4000), random_state=s.seed) if len(ranked) else ranked
    timings["total"] = time.perf_counter() - t0
    summary = {**result.summary, "error_correlation": rho}
    return SuperhardResult(
        top=top, results=ranked, holdout=holdout, recall=recall, oof=oof, metrics=metrics,
        provenance=prov, train_map=train_map, pool_map=sample, summary=summary,
        timings=timings, settings=s,
    )  # fmt: skip
