"""The featurizer contract: matminer's surface, computed on whole batches.

A subclass implements :meth:`CompositionFeaturizer.feature_labels` and
:meth:`CompositionFeaturizer._featurize_group`, which turns one block of compositions with the
same number of elements (see :mod:`matforge.features.rowgroups`) into feature rows. Everything
else (parsing, bad rows, DataFrames) lives here, once.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from matforge.chem.batch import CompositionBatch
from matforge.errors import InvalidFormula
from matforge.features.formula_order import appearance_ranks
from matforge.features.rowgroups import RowGroup, group_rows

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: ``(row, message)`` for every entry that could not be featurized
Errors = list[tuple[int, str]]


class CompositionFeaturizer(ABC):
    """Base class of the composition featurizers (matminer's ``BaseFeaturizer`` surface).

    Inputs are formula strings or pymatgen ``Composition`` objects. A formula that fails to
    parse gives a row of NaN and an entry ``(row, message)`` in :attr:`errors_` (and a log
    warning) instead of an exception, unless ``ignore_errors=False``.
    """

    #: ``(row, message)`` of the entries the last ``featurize_many``/``featurize_dataframe``
    #: call could not parse
    errors_: Errors

    # -- what a subclass provides -------------------------------------------------------
    @abstractmethod
    def feature_labels(self) -> list[str]:
        """Column names, in output order (identical to matminer's where one exists)."""

    @abstractmethod
    def _featurize_group(self, group: RowGroup) -> np.ndarray:
        """Features (m, n_features) of the m compositions of one :class:`RowGroup`."""

    def citations(self) -> list[str]:
        """BibTeX entries to cite when using these features."""
        return []

    def implementors(self) -> list[str]:
        """Who wrote the method (the original authors for matminer ports)."""
        return ["matforge developers"]

    # -- batch core ----------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return len(self.feature_labels())

    def featurize_batch(
        self, batch: CompositionBatch, *, order: np.ndarray | None = None
    ) -> np.ndarray:
        """Features of every row of ``batch`` as an (n, n_features) float64 array.

        Rows the batch marks invalid are NaN. ``order`` (aligned with ``batch.amounts.indices``)
        gives each element's rank in its formula; matminer adds in that order, so passing it
        makes results bit-identical to matminer's (``featurize_many`` does this for you).
        Without it, values agree with matminer to ~1e-15 relative, except where matminer's
        answer is itself rounding noise around 0.
        """
        if order is None:
            order = getattr(batch, "appearance", None)
        out = np.full((len(batch), self.n_features), np.nan)
        for group in group_rows(batch.amounts, batch.valid, order=order):
            out[group.rows] = self._featurize_group(group)
        return out

    # -- matminer surface ----------------------------------------------------------------
    def featurize_many(
        self,
        entries: Iterable[Any],
        ignore_errors: bool = True,
        return_errors: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, Errors]:
        """Featurize formula strings or ``Composition`` objects: (n, n_features) array.

        Unparseable entries give NaN rows and are listed in :attr:`errors_` as
        ``(row, message)``; with ``return_errors=True`` that list is also returned. With
        ``ignore_errors=False`` the first bad entry raises :class:`InvalidFormula`.
        """
        features, self.errors_ = self._featurize_collect(entries, ignore_errors)
        return (features, self.errors_) if return_errors else features

    def featurize_with_errors(self, entries: Iterable[Any]) -> tuple[np.ndarray, Errors]:
        """``featurize_many(entries, return_errors=True)`` without recording :attr:`errors_`.

        The featurizer is left as it was, so one instance can serve several threads at once
        (a model's ``predict`` uses this): the ``(row, message)`` list is this call's alone.
        """
        return self._featurize_collect(entries, ignore_errors=True)

    def _featurize_collect(
        self, entries: Iterable[Any], ignore_errors: bool
    ) -> tuple[np.ndarray, Errors]:
        batch, order = _parse(entries, ignore_errors)
        errors = list(batch.errors)
        for row, message in errors[:5]:
            log.warning("%s: row %d not featurized: %s", type(self).__name__, row, message)
        if len(errors) > 5:
            log.warning("%s: %d rows not featurized", type(self).__name__, len(errors))
        return self.featurize_batch(batch, order=order), errors

    def featurize_dataframe(
        self,
        df: pd.DataFrame,
        col_id: str = "formula",
        ignore_errors: bool = True,
        return_errors: bool = False,
        inplace: bool = False,
    ) -> pd.DataFrame | None:
        """``df`` with one column per feature appended (matminer's ``featurize_dataframe``).

        ``col_id`` names the column of formula strings or ``Composition`` objects. With
        ``return_errors=True`` a ``"<Featurizer> Exceptions"`` column holds each failed row's
        message (NaN where it succeeded), as in matminer.
        """
        import pandas as pd

        labels = self.feature_labels()
        clash = [c for c in labels if c in df.columns]
        if clash:
            raise ValueError(f"{clash[0]!r} exists in input dataframe")
        features, errors = self.featurize_many(
            df[col_id].tolist(), ignore_errors=ignore_errors, return_errors=True
        )
        new = pd.DataFrame(features, index=df.index, columns=labels)
        if return_errors:
            messages = np.full(len(df), np.nan, dtype=object)
            for row, message in errors:
                messages[row] = message
            new[f"{type(self).__name__} Exceptions"] = messages
        if inplace:
            df[new.columns.tolist()] = new
            return None
        return pd.concat([df, new], axis=1)

    def featurize(self, entry: Any) -> list[float]:
        """Features of one composition, as matminer's ``featurize`` returns them."""
        return self.featurize_many([entry], ignore_errors=False)[0].tolist()

    # -- scikit-learn transformer --------------------------------------------------------
    def fit(self, X: Any = None, y: Any = None) -> CompositionFeaturizer:
        """Nothing to learn; returns self (so featurizers sit in a scikit-learn Pipeline)."""
        return self

    def transform(self, X: Iterable[Any]) -> np.ndarray:
        """Same as :meth:`featurize_many`."""
        return self.featurize_many(X)

    def __repr__(self) -> str:
        params = ", ".join(
            f"{k}={v!r}"
            for k, v in vars(self).items()
            if not (k.startswith("_") or k.endswith("_"))
        )
        return f"{type(self).__name__}({params})"


def _parse(entries: Iterable[Any], ignore_errors: bool) -> tuple[CompositionBatch, np.ndarray]:
    """Batch plus appearance ranks for formula strings and/or pymatgen Compositions."""
    if isinstance(entries, str):
        raise TypeError("featurize_many takes a sequence of formulas, not one string")
    formulas: Sequence[Any] = [_as_formula(e) for e in entries]
    batch = CompositionBatch.from_formulas(formulas, errors="collect")
    if batch.errors and not ignore_errors:
        raise InvalidFormula(batch.errors[0][1])
    return batch, appearance_ranks(formulas, batch.amounts)


def _as_formula(entry: Any) -> Any:
    """A pymatgen Composition becomes a formula string that parses back to identical amounts
    in the same element order (``repr`` of a float round-trips exactly)."""
    if isinstance(entry, str) or not hasattr(entry, "element_composition"):
        return entry
    return "".join(f"{el.symbol}{amt!r}" for el, amt in entry.element_composition.items())
