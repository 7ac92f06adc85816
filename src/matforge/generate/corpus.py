"""The training compositions of the generative models, and their held-out splits.

The corpus is the union of the bundled Materials Project-derived datasets (Matbench ``mp_*``
tasks, CrabNet's ``mp_*`` sets, matminer's transport set), reduced to integer formulas and
de-duplicated: 95,657 distinct compositions. Two held-out splits with a fixed seed measure
rediscovery: 10 % of the compositions at random, and 10 % of the chemical systems (every
composition of a held-out system leaves training). ``valid_only`` keeps the charge-neutral,
electronegativity-balanced compositions (SMACT's rules), as MatGAN and the formula transformers
trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from matforge.errors import GenerateError
from matforge.generate.tokens import canonical_formula, integer_counts

__all__ = [
    "MP_DATASETS",
    "Split",
    "canonicalize",
    "canonicalize_valid",
    "chemical_system",
    "load_corpus",
    "mean_by_formula",
    "split_corpus",
]

#: Bundled datasets whose compositions come from the Materials Project.
MP_DATASETS = (
    "matbench_mp_e_form",
    "matbench_mp_gap",
    "matbench_mp_is_metal",
    "mp_bulk_modulus",
    "mp_e_hull",
    "mp_elastic_anisotropy",
    "mp_magnetic_moment",
    "mp_shear_modulus",
    "mp_transport",
)


def canonicalize(formulas) -> list[str]:
    """Canonical integer formulas (token order) of formula strings; raises on a bad one."""
    return [canonical_formula(integer_counts(f)) for f in formulas]


def canonicalize_valid(formulas, *, valid_only: bool = True) -> tuple[list[str], int]:
    """Distinct canonical integer formulas of user data, skipping what is not an integer
    formula (and, with ``valid_only``, what is not charge-neutral and electronegativity-
    balanced); returns them (sorted) and the number of input rows left out. Raises when
    nothing is left."""
    out = set()
    for f in formulas:
        try:
            out.add(canonical_formula(integer_counts(str(f))))
        except Exception:
            continue
    kept = sorted(out)
    if valid_only and kept:
        kept = [f for f, k in zip(kept, valid_mask(kept), strict=True) if k]
    if not kept:
        raise GenerateError("no usable composition: none is an integer formula"
                            + (" that is charge-balanced" if valid_only else ""))
    formulas = list(formulas) if not isinstance(formulas, list) else formulas
    return kept, len(formulas) - len(kept)


def mean_by_formula(formulas, values) -> dict[str, float]:
    """The mean of ``values`` per canonical integer formula of ``formulas`` (the labels of a
    property-conditioned model); rows that are not an integer formula or whose value is not a
    finite number are left out."""
    groups: dict[str, list[float]] = {}
    for f, v in zip(formulas, values, strict=True):
        v = float(v)
        if not np.isfinite(v):
            continue
        try:
            key = canonical_formula(integer_counts(str(f)))
        except Exception:  # not an integer formula: it is not trained on either
            continue
        groups.setdefault(key, []).append(v)
    return {f: float(np.mean(vs)) for f, vs in groups.items()}


@cache
def _mp_compositions() -> tuple[str, ...]:
    from matforge.datasets import load_dataset

    seen: set[str] = set()
    for name in MP_DATASETS:
        for f in load_dataset(name)["formula"].astype(str).unique():
            seen.add(f)
    return tuple(sorted(set(canonicalize(sorted(seen)))))


def chemical_system(formula: str) -> str:
    """``"Fe-O"`` for ``Fe2O3``: the elements, sorted alphabetically, joined by ``-``."""
    return "-".join(sorted(integer_counts(formula)))


def valid_mask(formulas) -> np.ndarray:
    """Charge-neutral and electronegativity-balanced (SMACT's ICSD24 states), per formula."""
    from matforge.chem.batch import CompositionBatch

    return CompositionBatch.from_formulas(list(formulas)).electronegativity_balanced()


@cache
def _valid_mp_compositions() -> tuple[str, ...]:
    # the oxidation-state search over 95k formulas takes ~25 s: done once per process
    comps = _mp_compositions()
    return tuple(c for c, k in zip(comps, valid_mask(comps), strict=True) if k)


def load_corpus(*, valid_only: bool = False) -> list[str]:
    """The distinct Materials Project compositions as canonical integer formulas (sorted)."""
    return list(_valid_mp_compositions() if valid_only else _mp_compositions())


@dataclass(frozen=True)
class Split:
    """A train / held-out partition of the corpus (canonical formulas)."""

    name: str
    train: tuple[str, ...]
    held_out: tuple[str, ...]


def split_corpus(formulas, kind: str = "random", *, fraction: float = 0.1, seed: int = 0) -> Split:
    """Hold out ``fraction`` of the compositions (``kind="random"``) or of the chemical systems
    (``kind="chemsys"``) with a fixed seed."""
    formulas = list(formulas)
    rng = np.random.default_rng(seed)
    if kind == "random":
        out = rng.random(len(formulas)) < fraction
    elif kind == "chemsys":
        systems = [chemical_system(f) for f in formulas]
        distinct = sorted(set(systems))
        chosen = set(np.asarray(distinct)[rng.random(len(distinct)) < fraction].tolist())
        out = np.array([s in chosen for s in systems])
    else:
        raise GenerateError(f"split kind must be 'random' or 'chemsys', got {kind!r}")
    train = tuple(f for f, o in zip(formulas, out, strict=True) if not o)
    held = tuple(f for f, o in zip(formulas, out, strict=True) if o)
    return Split(kind, train, held)
