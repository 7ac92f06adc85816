"""p-norms of the atomic fractions (matminer's ``Stoichiometry``).

For a composition with atomic fractions ``x_i``: the 0-norm is the number of elements; the
p-norm is ``(sum x_i**p) ** (1/p)``. Dimensionless.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matforge.features.base import CompositionFeaturizer
from matforge.features.element_property import WARD_2016
from matforge.features.rowgroups import RowGroup, sequential_sum


class Stoichiometry(CompositionFeaturizer):
    """Lp norms of the fraction vector; ``p_list`` as in matminer (default 0, 2, 3, 5, 7, 10).

    matminer's ``num_atoms=True`` option (atoms per reduced formula unit) is not provided.
    """

    def __init__(self, p_list: Sequence[int] = (0, 2, 3, 5, 7, 10)):
        if any(p < 0 for p in p_list):
            raise ValueError("p-norm not defined for p < 0")
        self.p_list = tuple(p_list)

    def feature_labels(self) -> list[str]:
        return [f"{int(p)}-norm" for p in self.p_list]  # matminer: "%d-norm"

    def citations(self) -> list[str]:
        return [WARD_2016]

    def implementors(self) -> list[str]:
        return ["Jiming Chen", "Logan Ward"]

    def _featurize_group(self, group: RowGroup) -> np.ndarray:
        a = group.amounts
        # matminer: n = sum(amounts) and sum((a / n) ** p), both left to right
        x = a / sequential_sum(a)
        out = np.empty((len(group.rows), len(self.p_list)))
        for j, p in enumerate(self.p_list):
            if p == 0:
                out[:, j] = group.k
            else:
                out[:, j] = sequential_sum(x**p) ** (1.0 / p)
        return out
