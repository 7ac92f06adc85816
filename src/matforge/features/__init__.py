"""Composition featurizers: matminer's surface and values, computed on whole batches.

>>> from matforge.features import MagpieFeaturizer
>>> X = MagpieFeaturizer().featurize_many(["Fe2O3", "NaCl"])   # (2, 132), matminer's values
>>> df = MagpieFeaturizer().featurize_dataframe(df, col_id="formula")

Every featurizer takes formula strings or pymatgen ``Composition`` objects
(``featurize_many``, ``featurize_dataframe``, ``featurize``) or a parsed
:class:`~matforge.chem.batch.CompositionBatch` (``featurize_batch``), and has matminer's
``feature_labels()``, ``citations()`` and ``implementors()``. Unparseable formulas give NaN
rows and ``(row, message)`` entries in ``featurizer.errors_``.
"""

from matforge.features.base import CompositionFeaturizer
from matforge.features.element_property import ElementProperty, MagpieFeaturizer
from matforge.features.embedding import ElementEmbeddingFeaturizer
from matforge.features.feature_set import FeatureSet
from matforge.features.fraction import ElementFraction
from matforge.features.ion import IonProperty
from matforge.features.orbital import ValenceOrbital
from matforge.features.stoichiometry import Stoichiometry

__all__ = [
    "CompositionFeaturizer",
    "ElementEmbeddingFeaturizer",
    "ElementFraction",
    "ElementProperty",
    "FeatureSet",
    "IonProperty",
    "MagpieFeaturizer",
    "Stoichiometry",
    "ValenceOrbital",
]
