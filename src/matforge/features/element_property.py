"""Statistics of elemental properties over a composition (matminer's ``ElementProperty``).

The Magpie preset (Ward et al., npj Comput. Mater. 2016) gives 22 properties x 6 statistics =
132 features, with matminer's labels (``"MagpieData minimum Number"``) and values: for each
property ``x_i`` of the elements of a composition with amounts ``a_i``

* ``minimum``, ``maximum``, ``range`` = max - min;
* ``mean`` = sum(a_i x_i) / sum(a_i);
* ``avg_dev`` = sum(a_i |x_i - mean|) / sum(a_i), the weighted mean absolute deviation;
* ``mode`` = the smallest ``x_i`` among the elements whose amount is within ``np.isclose``
  (rtol 1e-5, atol 1e-8) of the largest amount.

Units are the properties' own (``MeltingT`` K, ``CovalentRadius`` pm, ``GSvolume_pa``
Å^3/atom, ``GSbandgap`` eV, ``GSmagmom`` μB/atom; see :mod:`matforge.chem.elements`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matforge.chem.elements import MAGPIE_PRESET, magpie_property
from matforge.features.base import CompositionFeaturizer
from matforge.features.rowgroups import RowGroup, isclose_to_max, numpy_average, numpy_avg_dev

WARD_2016 = (
    "@article{ward_agrawal_choudary_wolverton_2016, title={A general-purpose "
    "machine learning framework for predicting properties of inorganic materials}, "
    "volume={2}, DOI={10.1038/npjcompumats.2017.28}, number={1}, journal={npj "
    "Computational Materials}, author={Ward, Logan and Agrawal, Ankit and Choudhary, "
    "Alok and Wolverton, Christopher}, year={2016}}"
)

#: the statistics of matminer's Magpie preset, in its order
MAGPIE_STATS: tuple[str, ...] = ("minimum", "maximum", "range", "mean", "avg_dev", "mode")


class ElementProperty(CompositionFeaturizer):
    """Composition-weighted statistics of Magpie element properties.

    Args:
        features: Magpie property names (any of ``matforge.chem.elements.MAGPIE_PROPERTIES``).
        stats: any of ``minimum, maximum, range, mean, avg_dev, mode``.
        impute_nan: replace missing element data by matminer's imputed value (the property's
            mean over all elements), as matminer >= 0.9 does by default; else NaN propagates.
    """

    def __init__(
        self,
        data_source: str = "magpie",
        features: Sequence[str] = MAGPIE_PRESET,
        stats: Sequence[str] = MAGPIE_STATS,
        impute_nan: bool = True,
    ):
        if data_source != "magpie":
            raise ValueError(f"data_source {data_source!r}: only 'magpie' is available")
        unknown = [s for s in stats if s not in MAGPIE_STATS]
        if unknown:
            raise ValueError(f"unknown statistic {unknown[0]!r}; known: {', '.join(MAGPIE_STATS)}")
        self.data_source = data_source
        self.features = tuple(features)
        self.stats = tuple(stats)
        self.impute_nan = impute_nan
        # (103, n_properties) table, row = Z - 1
        self._table = np.column_stack(
            [magpie_property(p, impute_nan=impute_nan) for p in self.features]
        )

    @classmethod
    def from_preset(cls, preset_name: str = "magpie", impute_nan: bool = True) -> ElementProperty:
        """matminer's presets; only ``"magpie"`` is implemented."""
        if preset_name != "magpie":
            raise ValueError(f"preset {preset_name!r} not available; use 'magpie'")
        return cls("magpie", MAGPIE_PRESET, MAGPIE_STATS, impute_nan=impute_nan)

    def feature_labels(self) -> list[str]:
        return [f"MagpieData {stat} {prop}" for prop in self.features for stat in self.stats]

    def citations(self) -> list[str]:
        return [WARD_2016]

    def implementors(self) -> list[str]:
        return [
            "Jiming Chen",
            "Logan Ward",
            "Anubhav Jain",
            "Alex Dunn",
            "Guillaume Brunin (Matgenix)",
        ]

    def _featurize_group(self, group: RowGroup) -> np.ndarray:
        values = self._table[group.elements]  # (k, m, p)
        a = group.amounts
        m, p = values.shape[1], values.shape[2]
        out = np.empty((m, p, len(self.stats)))  # matminer's order: property-major
        col = {s: i for i, s in enumerate(self.stats)}
        lo = values.min(axis=0) if {"minimum", "range"} & col.keys() else None
        hi = values.max(axis=0) if {"maximum", "range"} & col.keys() else None
        for stat, j in col.items():
            if stat == "minimum":
                out[:, :, j] = lo
            elif stat == "maximum":
                out[:, :, j] = hi
            elif stat == "range":
                np.subtract(hi, lo, out=out[:, :, j])
        if {"mean", "avg_dev"} & col.keys():
            mean = numpy_average(values, a)
            if "mean" in col:
                out[:, :, col["mean"]] = mean
            if "avg_dev" in col:
                out[:, :, col["avg_dev"]] = numpy_avg_dev(values, a, mean)
        if "mode" in col:
            # smallest value among the elements tied for the largest amount; NaN propagates
            tied = isclose_to_max(a)
            mode = np.full((m, p), np.inf)
            for j in range(group.k):
                np.minimum(mode, np.where(tied[j][:, None], values[j], np.inf), out=mode)
            out[:, :, col["mode"]] = mode
        return out.reshape(m, -1)


class MagpieFeaturizer(ElementProperty):
    """The 132 Magpie features: ``ElementProperty.from_preset("magpie")``."""

    def __init__(self, impute_nan: bool = True):
        super().__init__("magpie", MAGPIE_PRESET, MAGPIE_STATS, impute_nan=impute_nan)
