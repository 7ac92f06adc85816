"""Metrics of generated compositions that cannot be gamed by repeating oneself.

All metrics work on integer reduced formulas, so ``Fe4O6`` and ``Fe2O3`` are one composition.

* validity: charge-neutral (CN) and charge-neutral + electronegativity-balanced (CN+EB) with
  SMACT's ICSD24 oxidation states, and ``smact_valid`` (SMACT's own screen, which also passes
  all-metal alloys) -- all from :mod:`matforge.chem`;
* uniqueness = distinct / N; novelty = distinct and not in training / distinct;
* rediscovery on a held-out set: precision = held-out hits among the novel distinct samples /
  novel distinct, recall = hits / size of the held-out set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from matforge.generate.corpus import canonicalize

__all__ = ["annotate", "generation_metrics", "validity"]


def validity(formulas: Sequence[str]) -> pd.DataFrame:
    """Columns ``cn``, ``cn_eb``, ``smact_valid`` (bool) per formula.

    CN+EB implies CN, so the (slower) charge-neutrality search runs only on the rows that are
    not CN+EB."""
    from matforge.chem.batch import CompositionBatch

    formulas = list(formulas)
    batch = CompositionBatch.from_formulas(formulas)
    cn_eb = batch.electronegativity_balanced()
    cn = cn_eb.copy()
    rest = np.flatnonzero(~cn_eb)
    if rest.size:
        cn[rest] = CompositionBatch.from_formulas([formulas[i] for i in rest]).charge_balanced()
    return pd.DataFrame({"cn": cn, "cn_eb": cn_eb, "smact_valid": batch.smact_valid()})


def generation_metrics(
    samples: Sequence[str],
    train: Iterable[str],
    held_out: Iterable[str] | None = None,
) -> dict[str, float]:
    """Validity, uniqueness, novelty and (with ``held_out``) rediscovery of ``samples``.

    ``train`` and ``held_out`` must be canonical formulas (:func:`canonicalize`); ``samples``
    may be any integer formulas. Validity is averaged over all samples (repeats included).
    """
    samples = canonicalize(samples)
    n = len(samples)
    if n == 0:
        return {"n": 0}
    train = set(train)
    unique = set(samples)
    novel = unique - train
    v = validity(samples)
    out = {
        "n": n,
        "cn": float(v["cn"].mean()),
        "cn_eb": float(v["cn_eb"].mean()),
        "smact_valid": float(v["smact_valid"].mean()),
        "uniqueness": len(unique) / n,
        "novelty": len(novel) / len(unique),
    }
    if held_out is not None:
        held = set(held_out)
        hits = novel & held
        out["rediscovered"] = len(hits)
        out["precision"] = len(hits) / max(len(novel), 1)
        out["recall"] = len(hits) / max(len(held), 1)
    return out


def _fraction_matrix(formulas: Sequence[str]):
    from matforge.chem.batch import CompositionBatch

    return CompositionBatch.from_formulas(list(formulas)).fractions


@lru_cache(maxsize=2)
def _known_index(known: tuple[str, ...]):
    """Distinct canonical formulas of ``known``, their set, their NearestNeighbors index of
    atomic fractions and the dense fraction matrix (cached: the corpus is the usual reference,
    and canonicalising and indexing its 95,657 formulas takes seconds)."""
    from sklearn.neighbors import NearestNeighbors

    formulas = list(dict.fromkeys(canonicalize(known)))
    K = _fraction_matrix(formulas).toarray().astype(np.float32) if formulas else None
    index = NearestNeighbors(algorithm="brute").fit(K) if formulas else None
    return formulas, frozenset(formulas), index, K


def annotate(samples: Sequence[str], known: Sequence[str], *, candidates: int = 10) -> pd.DataFrame:
    """One row per sample: ``formula`` (canonical), validity columns, ``novel`` (not in
    ``known``), ``nearest_known`` and ``nearest_distance`` (L1 distance of atomic fractions,
    0 = same composition, 2 = no element in common). The nearest is searched by L1 among the
    ``candidates`` nearest in Euclidean distance (a fast matrix product; exact L1 search over
    100,000 compositions takes minutes)."""
    formulas = canonicalize(samples)
    known, known_set, index, K = _known_index(tuple(known))
    out = pd.DataFrame({"formula": formulas})
    out = pd.concat([out, validity(formulas)], axis=1)
    out["novel"] = [f not in known_set for f in formulas]
    if known:
        S = _fraction_matrix(formulas).toarray().astype(np.float32)
        k = min(candidates, len(known))
        _, idx = index.kneighbors(S, n_neighbors=k)
        dist = np.stack([np.abs(K[idx[:, j]] - S).sum(axis=1) for j in range(k)], 1).astype(float)
        best = idx[np.arange(len(idx)), dist.argmin(axis=1)]
        out["nearest_known"] = np.asarray(known, dtype=object)[best]
        out["nearest_distance"] = dist.min(axis=1)
    return out
