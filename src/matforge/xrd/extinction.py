"""Which space groups a powder pattern can tell apart: reflection-condition classes.

A powder pattern shows *where* peaks can occur (the lattice metric and the systematic absences of
the space group) and how strong they are. Space groups with the same lattice metric and the same
systematically allowed reflections put peaks at the same places for every structure: enantiomorphs
(P4₁/P4₃, P6₁/P6₅, …) give identical patterns (Friedel's law), and the point groups of one Laue
class with the same absences (Pmmm, P222, Pmm2, …) differ only through intensity statistics.
Crystallographers therefore assign an *extinction symbol* from a powder pattern, not a space group.

:func:`powder_classes` groups the 230 space groups (standard settings, general position) by
metric family and allowed reflections; :func:`position_ceiling` is the best top-k accuracy any
classifier that reads only peak positions can reach on a set of labels. Space groups are told apart
here only where the allowed ``hkl`` sets differ, so the classes are never coarser than what peak
positions reveal and the ceiling is an upper bound for such a classifier. A model that also reads
intensities can in principle do better on some groups (e.g. centric against acentric), never on
enantiomorphs.

    >>> classes = powder_classes()
    >>> int(classes[76 - 1]) == int(classes[78 - 1])  # P4_1 and P4_3
    True
    >>> int(classes[225 - 1]) == int(classes[227 - 1])  # Fm-3m and Fd-3m
    False
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

__all__ = ["METRIC_FAMILIES", "metric_family", "position_ceiling", "powder_classes"]

#: lattice metrics a powder pattern distinguishes; trigonal groups with a primitive hexagonal cell
#: share the hexagonal metric, rhombohedral ones are told apart by their R-centring absences
METRIC_FAMILIES = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "hexagonal", "cubic")

#: largest |h|, |k|, |l| inspected; 4₁ against 4₂ needs 00l up to l = 4 and 6₁ against 6₂ up to 6
MAX_INDEX = 6


def metric_family(number: int) -> str:
    """Lattice-metric family of space group ``number`` (1–230)."""
    if not 1 <= number <= 230:
        raise ValueError(f"space-group number must be 1–230, got {number}")
    for upper, name in ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"),
                        (142, "tetragonal"), (194, "hexagonal")):  # fmt: skip
        if number <= upper:
            return name
    return "cubic"


def _allowed(number: int, hkl: np.ndarray) -> np.ndarray:
    """Which reflections ``hkl`` (n × 3) the general position of space group ``number`` allows.

    ``hkl`` is systematically absent when an operation (R, t) maps it onto itself (hR = h) with a
    phase h·t that is not a whole number of cycles.
    """
    from pymatgen.symmetry.groups import SpaceGroup

    ops = SpaceGroup.from_int_number(number).symmetry_ops
    allowed = np.ones(len(hkl), dtype=bool)
    for op in ops:
        rot = np.rint(op.rotation_matrix).astype(int)
        fixed = np.all(hkl @ rot == hkl, axis=1)
        phase = hkl @ op.translation_vector
        allowed &= ~(fixed & (np.abs(phase - np.rint(phase)) > 1e-6))
    return allowed


def _index_grid() -> np.ndarray:
    r = np.arange(-MAX_INDEX, MAX_INDEX + 1)
    g = np.array(list(itertools.product(r, r, r)))
    return g[np.any(g != 0, axis=1)]


def _signature(family: str, hkl: np.ndarray, allowed: np.ndarray) -> tuple:
    """The peak positions that the allowed reflections occupy, for a generic cell of the family.

    Reflections are reduced to what fixes their d-spacing (h² + k² + l² for cubic cells, h² + k²
    and |l| for tetragonal, h² + hk + k² and |l| for hexagonal, |h|, |k|, |l| for orthorhombic up
    to a permutation of the axes, since the lattice constants are free; the (h, l) pair up to sign
    and |k| for monoclinic), so two groups match when they put peaks at the same places."""
    present = {tuple(h) for h in hkl[allowed]}
    if family == "cubic":  # d depends on h² + k² + l² only
        return tuple(sorted({h[0] ** 2 + h[1] ** 2 + h[2] ** 2 for h in present}))
    if family == "tetragonal":  # d depends on h² + k² and l²
        return tuple(sorted({(h[0] ** 2 + h[1] ** 2, abs(h[2])) for h in present}))
    if family == "hexagonal":
        # d depends on h² + hk + k² and l²
        return tuple(sorted({(h[0] ** 2 + h[0] * h[1] + h[1] ** 2, abs(h[2])) for h in present}))
    if family == "orthorhombic":
        sigs = []
        for perm in itertools.permutations(range(3)):
            sigs.append(tuple(sorted({tuple(abs(h[p]) for p in perm) for h in present})))
        return min(sigs)
    if family == "monoclinic":  # unique axis b: (h, k, l) and (-h, -k, -l), (h, -k, l) coincide
        return tuple(sorted({(h[0], abs(h[1]), h[2]) if h[0] > 0 or (h[0] == 0 and h[2] >= 0)
                             else (-h[0], abs(h[1]), -h[2]) for h in present}))  # fmt: skip
    return tuple(sorted(present))  # triclinic: P1 and P-1, no absences


@lru_cache(maxsize=1)
def powder_classes() -> np.ndarray:
    """Class index of each space group (position ``number - 1``): equal indices share the metric
    family and the allowed reflections, so no peak position separates them. About 2 s, cached."""
    hkl = _index_grid()
    index: dict[tuple, int] = {}
    out = np.empty(230, dtype=np.int64)
    for number in range(1, 231):
        family = metric_family(number)
        sig = (family, _signature(family, hkl, _allowed(number, hkl)))
        out[number - 1] = index.setdefault(sig, len(index))
    return out


def position_ceiling(labels, k: int = 1, groups=None) -> float:
    """Best top-``k`` accuracy on ``labels`` of a classifier that sees only peak positions.

    ``groups`` gives each sample's position class (default: ``powder_classes()[labels]``, for
    ``labels`` = space group − 1). Within a class the best guess is its ``k`` most frequent
    labels, so the ceiling is the sum over classes of those counts, over the number of samples.
    Pass crystal-system labels with ``groups = powder_classes()[spacegroup_labels]`` for the
    crystal-system ceiling (trigonal groups with a primitive cell look hexagonal).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        raise ValueError("no labels")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    groups = powder_classes()[labels] if groups is None else np.asarray(groups)
    if groups.shape != labels.shape:
        raise ValueError(f"groups has shape {groups.shape}, labels {labels.shape}")
    hits = 0
    for g in np.unique(groups):
        counts = np.bincount(labels[groups == g])
        hits += np.sort(counts)[::-1][:k].sum()
    return float(hits / labels.size)
