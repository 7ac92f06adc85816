"""Several featurizers side by side (matminer's ``MultipleFeaturizer``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from matforge.features.base import CompositionFeaturizer
from matforge.features.rowgroups import RowGroup


class FeatureSet(CompositionFeaturizer):
    """Concatenates the columns of ``featurizers``; the input is parsed and grouped once."""

    def __init__(self, featurizers: Sequence[CompositionFeaturizer]):
        self.featurizers = list(featurizers)
        labels = self.feature_labels()
        if len(set(labels)) != len(labels):
            dup = next(x for x in labels if labels.count(x) > 1)
            raise ValueError(f"duplicate feature label {dup!r} in FeatureSet")

    def feature_labels(self) -> list[str]:
        return [label for f in self.featurizers for label in f.feature_labels()]

    def citations(self) -> list[str]:
        return _unique(c for f in self.featurizers for c in f.citations())

    def implementors(self) -> list[str]:
        return _unique(i for f in self.featurizers for i in f.implementors())

    def _featurize_group(self, group: RowGroup) -> np.ndarray:
        return np.concatenate([f._featurize_group(group) for f in self.featurizers], axis=1)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
