"""Atomic fraction of every element (matminer's ``ElementFraction``)."""

from __future__ import annotations

import numpy as np

from matforge.chem import SYMBOLS
from matforge.chem.formula import AMOUNT_TOLERANCE
from matforge.features.base import CompositionFeaturizer
from matforge.features.rowgroups import RowGroup, sequential_sum

# matminer's vector runs to Z = 118; a batch holds Z <= 103, so these columns are always 0
_SUPERHEAVY = (
    "Rf",
    "Db",
    "Sg",
    "Bh",
    "Hs",
    "Mt",
    "Ds",
    "Rg",
    "Cn",
    "Nh",
    "Fl",
    "Mc",
    "Lv",
    "Ts",
    "Og",
)


class ElementFraction(CompositionFeaturizer):
    """118 columns, one per element in Z order (labels = symbols), as in matminer 0.10."""

    def feature_labels(self) -> list[str]:
        return list(SYMBOLS + _SUPERHEAVY)

    def implementors(self) -> list[str]:
        return ["Ashwin Aggarwal", "Logan Ward"]

    def _featurize_group(self, group: RowGroup) -> np.ndarray:
        a = group.amounts
        x = a / sequential_sum(a)  # pymatgen's fractional_composition
        x[x < AMOUNT_TOLERANCE] = 0.0  # pymatgen drops amounts below its tolerance
        out = np.zeros((len(group.rows), len(SYMBOLS) + len(_SUPERHEAVY)))
        out[np.arange(len(group.rows)), group.elements] = x
        return out
