"""Composition-based feature vectors (CBFV) from element embedding tables.

Each element has a vector (mat2vec: 200 learned dimensions; oliynyk, jarvis, magpie: tabulated
properties); a composition is described by statistics of its elements' vectors, as the CBFV
package and CrabNet do. With atomic fractions ``x_i``, amounts ``a_i`` (atoms per formula unit)
and element vectors ``v_i``:

* ``mean`` = sum x_i v_i;  ``sum`` = sum a_i v_i;  ``var`` = sum x_i (v_i - mean)^2;
* ``avg_dev`` = sum x_i |v_i - mean|;  ``min``, ``max``, ``range`` = max - min;
* ``mode`` = v of the most abundant element (smallest value among ties, as in CBFV).

Compositions containing an element the table lacks get NaN (CBFV skips them). The tables are
float32 (see ``data/embeddings.json`` for provenance); arithmetic is float64.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib.resources import files

import numpy as np

from matforge.errors import MatforgeError
from matforge.features.base import CompositionFeaturizer
from matforge.features.rowgroups import RowGroup, isclose_to_max

EMBEDDINGS = ("mat2vec", "oliynyk", "jarvis", "magpie")
STATS = ("mean", "sum", "var", "avg_dev", "range", "min", "max", "mode")


@cache
def _archive() -> dict[str, np.ndarray]:
    with files("matforge.features").joinpath("data", "embeddings.npz").open("rb") as fh:
        with np.load(fh) as npz:
            return {k: npz[k] for k in npz.files}


@cache
def provenance() -> dict:
    """Source, licence and citations of the bundled embedding tables."""
    text = files("matforge.features").joinpath("data", "embeddings.json").read_text("utf-8")
    return json.loads(text)


def embedding_table(name: str) -> tuple[np.ndarray, list[str]]:
    """The (103, d) float32 table of ``name`` (rows Z = 1..103, NaN = missing) and its columns."""
    if name not in EMBEDDINGS:
        raise MatforgeError(f"unknown embedding {name!r}; known: {', '.join(EMBEDDINGS)}")
    data = _archive()
    return data[name], [str(c) for c in data[f"{name}__columns"]]


class ElementEmbeddingFeaturizer(CompositionFeaturizer):
    """CBFV-style statistics of element embeddings (``name`` in mat2vec, oliynyk, jarvis,
    magpie). Labels are ``"{name} {stat} {column}"``, statistic-major."""

    def __init__(
        self,
        name: str = "mat2vec",
        stats: Sequence[str] = ("mean", "sum", "range", "var", "min", "max"),
    ):
        unknown = [s for s in stats if s not in STATS]
        if unknown:
            raise ValueError(f"unknown statistic {unknown[0]!r}; known: {', '.join(STATS)}")
        self.name = name
        self.stats = tuple(stats)
        table, self._columns = embedding_table(name)
        self._table = table.astype(np.float64)

    def feature_labels(self) -> list[str]:
        return [f"{self.name} {s} {c}" for s in self.stats for c in self._columns]

    def citations(self) -> list[str]:
        meta = provenance()
        return [meta["tables"][self.name]["citation"], meta["cbfv_citation"]]

    def implementors(self) -> list[str]:
        return ["Ryan Murdock", "Steven Kauwe", "Anthony Yu-Tung Wang", "Taylor Sparks"]

    def _featurize_group(self, group: RowGroup) -> np.ndarray:
        v = self._table[group.elements]  # (k, m, d)
        a = group.amounts
        x = (a / a.sum(axis=0))[:, :, None]
        need = set(self.stats)
        out: dict[str, np.ndarray] = {}
        if need & {"mean", "var", "avg_dev"}:
            out["mean"] = (x * v).sum(axis=0)
        if "sum" in need:
            out["sum"] = (a[:, :, None] * v).sum(axis=0)
        if need & {"var", "avg_dev"}:
            dev = v - out["mean"]
            if "var" in need:
                out["var"] = (x * dev**2).sum(axis=0)
            if "avg_dev" in need:
                out["avg_dev"] = (x * np.abs(dev)).sum(axis=0)
        if need & {"min", "range"}:
            out["min"] = v.min(axis=0)
        if need & {"max", "range"}:
            out["max"] = v.max(axis=0)
        if "range" in need:
            out["range"] = out["max"] - out["min"]
        if "mode" in need:
            out["mode"] = np.where(isclose_to_max(a)[:, :, None], v, np.inf).min(axis=0)
        return np.concatenate([out[s] for s in self.stats], axis=1)
