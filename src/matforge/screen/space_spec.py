"""How a candidate space is spelled on the command line: :func:`space_from_spec`.

=============================  ==============================================================
spec                           space
=============================  ==============================================================
``enumerate``                  :class:`~matforge.screen.candidate_spaces.EnumeratedSpace` of ``elements``
                               (``"B,C,N"``), ``max_atoms``, ``arities`` (``"2,3"``) and
                               ``balance`` (``"charge"`` or ``"en"``)
``substitute:SOURCE``          :class:`~matforge.screen.candidate_spaces.SubstitutionSpace` of the
                               formulas of a bundled dataset or a CSV/Parquet file
``store:URL``                  the materials of a matforge store
a bundled dataset name         its formula column (``column``)
a CSV/Parquet file             its formula column (``column``)
=============================  ==============================================================

``exclude`` (a dataset or file, as ``SOURCE``) names known compositions to leave out. A spec
that names nothing of these raises :class:`~matforge.errors.SpaceSpecError`, whose ``option``
says which command-line option was at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matforge.errors import SpaceSpecError

__all__ = ["absolute_spec", "formulas_from_source", "space_from_spec"]


def _items(value: str | Sequence | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value]


def formulas_from_source(source: str, column: str = "formula") -> list[str]:
    """The formulas of a bundled dataset (its ``formula`` column) or of ``column`` of a
    CSV/Parquet file."""
    from matforge.datasets import list_datasets, load_dataset

    if source in {d.name for d in list_datasets()}:
        return load_dataset(source)["formula"].astype(str).tolist()
    path = Path(source)
    if not path.exists():
        raise SpaceSpecError(f"{source!r}: not a bundled dataset or an existing file")
    import pandas as pd

    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return df[column].astype(str).tolist()


def space_from_spec(
    spec: str,
    *,
    column: str = "formula",
    elements: str | Sequence[str] | None = None,
    max_atoms: int = 8,
    arities: str | Sequence[int] = (2, 3),
    balance: str | None = None,
    exclude: str | None = None,
    unique: bool = True,
):
    """The :class:`~matforge.screen.candidate_spaces.CandidateSpace` a spec string names (see the module
    docstring); ``exclude`` is a dataset or file of known compositions to leave out."""
    from matforge.datasets import list_datasets
    from matforge.screen.candidate_spaces import EnumeratedSpace, FormulaSpace, SubstitutionSpace

    excl = formulas_from_source(exclude, column) if exclude else None
    if spec == "enumerate":
        symbols = _items(elements)
        if not symbols:
            raise SpaceSpecError("enumerate needs --elements B,C,N,...", option="--elements")
        return EnumeratedSpace(
            symbols, max_atoms, tuple(int(a) for a in _items(arities)),
            charge_balanced=balance == "charge", electronegativity_balanced=balance == "en",
            exclude=excl,
        )  # fmt: skip
    if spec.startswith("substitute:"):
        return SubstitutionSpace(formulas_from_source(spec.split(":", 1)[1], column), exclude=excl)
    if spec.startswith("store:"):
        return FormulaSpace.from_store(spec.split(":", 1)[1], unique=unique, exclude=excl)
    if spec in {d.name for d in list_datasets()}:
        return FormulaSpace.from_dataset(spec, column, unique=unique, exclude=excl)
    path = Path(spec)
    if path.exists():
        return FormulaSpace.from_file(path, column, unique=unique, exclude=excl)
    raise SpaceSpecError(f"{spec!r} is not a dataset, a file, store:URL, enumerate or "
                         "substitute:...", option="SPACE")  # fmt: skip


def absolute_spec(spec: str | None) -> str | None:
    """``spec`` (a space or exclude spec) with its file path made absolute, so that it names
    the same file from another working directory (a resumed screen)."""
    if spec is None:
        return None
    prefix = "substitute:" if spec.startswith("substitute:") else ""
    path = Path(spec[len(prefix):])
    return prefix + str(path.resolve()) if path.exists() else spec
