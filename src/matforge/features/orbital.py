"""Valence-shell occupations (matminer's ``ValenceOrbital``).

``avg X valence electrons`` is the composition-weighted mean number of valence electrons in
the X (s, p, d, f) shell; ``frac X valence electrons`` divides it by the mean total number of
valence electrons. Magpie element data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matforge.chem.elements import magpie_property
from matforge.features.base import CompositionFeaturizer
from matforge.features.element_property import WARD_2016
from matforge.features.rowgroups import RowGroup, numpy_average

DEML_2016 = (
    "@article{deml_ohayre_wolverton_stevanovic_2016, title={Predicting density "
    "functional theory total energies and enthalpies of formation of metal-nonmetal "
    "compounds by linear regression}, volume={47}, DOI={10.1002/chin.201644254}, "
    "number={44}, journal={ChemInform}, author={Deml, Ann M. and Ohayre, Ryan and "
    "Wolverton, Chris and Stevanovic, Vladan}, year={2016}}"
)


class ValenceOrbital(CompositionFeaturizer):
    """Mean valence electrons per shell (``avg``) and their share of all valence electrons
    (``frac``), for ``orbitals`` among s, p, d, f."""

    def __init__(
        self,
        orbitals: Sequence[str] = ("s", "p", "d", "f"),
        props: Sequence[str] = ("avg", "frac"),
        impute_nan: bool = True,
    ):
        if not set(orbitals) <= {"s", "p", "d", "f"} or not set(props) <= {"avg", "frac"}:
            raise ValueError("orbitals must be among s, p, d, f and props among avg, frac")
        self.orbitals = tuple(orbitals)
        self.props = tuple(props)
        self.impute_nan = impute_nan
        names = [f"N{o}Valence" for o in self.orbitals] + ["NValence"]
        self._table = np.column_stack([magpie_property(n, impute_nan=impute_nan) for n in names])

    def feature_labels(self) -> list[str]:
        return [f"{prop} {orb} valence electrons" for prop in self.props for orb in self.orbitals]

    def citations(self) -> list[str]:
        return [WARD_2016, DEML_2016]

    def implementors(self) -> list[str]:
        return ["Jiming Chen", "Logan Ward"]

    def _featurize_group(self, group: RowGroup) -> np.ndarray:
        means = numpy_average(self._table[group.elements], group.amounts)
        avg, total = means[:, :-1], means[:, -1:]
        parts = {"avg": avg, "frac": avg / total}
        return np.concatenate([parts[p] for p in self.props], axis=1)
