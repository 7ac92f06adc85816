"""Bundled real datasets: offline, versioned, with units, provenance and data-quality flags.

The Parquet files and ``data/catalog.json`` are produced by ``scripts/build_datasets.py`` from
pinned registry packages (CrabNet, Matbench, matminer, pymatgen, Olympus, BoFire) and committed;
nothing is downloaded at run time. See DATASETS.md for the list, the fold verification and the
flag rules.

>>> from matforge.datasets import load_dataset, matbench_folds
>>> df = load_dataset("matbench_expt_gap")          # formula, gap_expt (eV), fold, flag
>>> train_idx, test_idx = matbench_folds("matbench_expt_gap")[0]

Every dataset has a ``flag`` column: ``""`` for a clean row, otherwise ``;``-joined codes of
the data-quality rules the row breaks (rows are never dropped).

Importing this module is cheap: pandas, pyarrow and pymatgen load inside the functions.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from matforge.errors import DatasetError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    from pymatgen.core import Structure

__all__ = [
    "DatasetInfo",
    "dataset_info",
    "list_datasets",
    "load_dataset",
    "load_structures",
    "matbench_folds",
]


@dataclass(frozen=True)
class DatasetInfo:
    """Catalog entry of one bundled dataset.

    ``unit`` is the unit of ``target`` (``None`` target: an unlabelled pool or a structure
    library); ``task`` is ``"regression"``, ``"classification"`` or ``"unlabelled"``; ``input``
    is ``"composition"``, ``"structure"``, ``"formulation"``, ``"process"`` (process or geometry
    parameters) or ``"surface"`` (bimetallic surfaces in :mod:`matforge.catalysis` notation,
    column ``surface``). ``columns`` describes every
    column with its unit, ``flags`` maps each data-quality code checked to its rule and the
    number of rows it flags, ``matbench`` holds the fold verification of Matbench tasks.
    """

    name: str
    description: str
    property: str
    unit: str
    target: str | None
    task: str
    input: str
    rows: int
    source: str
    citation: str
    licence: str
    split: str
    columns: dict[str, str] = field(default_factory=dict)
    flags: dict[str, dict[str, Any]] = field(default_factory=dict)
    file: str = ""
    sha256: str = ""
    source_files: list[dict[str, str]] = field(default_factory=list)
    matbench: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _data_dir():
    return resources.files(__name__) / "data"


@lru_cache(maxsize=1)
def _catalog() -> dict[str, DatasetInfo]:
    path = _data_dir() / "catalog.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = raw["datasets"]
        return {e["name"]: DatasetInfo(**e) for e in entries}
    except FileNotFoundError as exc:
        raise DatasetError(
            f"bundled catalog missing: {path} (run scripts/build_datasets.py)"
        ) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"bundled catalog {path} is damaged: {exc}") from exc


def list_datasets() -> list[DatasetInfo]:
    """All bundled datasets, in catalog order (Matbench tasks first)."""
    return list(_catalog().values())


def dataset_info(name: str) -> DatasetInfo:
    """Catalog entry of ``name``; raises :class:`DatasetError` (with close matches) if unknown."""
    catalog = _catalog()
    try:
        return catalog[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(catalog), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise DatasetError(
            f"unknown dataset {name!r}{hint} ({len(catalog)} bundled datasets: see list_datasets())"
        ) from None


def load_dataset(name: str) -> pd.DataFrame:
    """The dataset ``name`` as a DataFrame, in the source's row order, with a ``flag`` column.

    Units of every column are in ``dataset_info(name).columns``. Raises :class:`DatasetError`
    for an unknown name or a missing/damaged file (row count differing from the catalog).
    """
    import pyarrow.parquet as pq

    info = dataset_info(name)
    path = _data_dir() / info.file
    try:
        with resources.as_file(path) as p:
            table = pq.read_table(p)
    except FileNotFoundError as exc:
        raise DatasetError(f"{name}: bundled file {info.file} is missing") from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid & co. on a corrupt file
        raise DatasetError(f"{name}: bundled file {info.file} is damaged: {exc}") from exc
    if table.num_rows != info.rows:
        raise DatasetError(
            f"{name}: bundled file {info.file} has {table.num_rows} rows, the catalog says {info.rows}"
        )
    return table.to_pandas()


def load_structures(name: str = "aflow_prototypes") -> list[Structure]:
    """The crystal structures of a structure dataset as pymatgen ``Structure`` objects, in row order."""
    from pymatgen.core import Structure

    info = dataset_info(name)
    if "structure_json" not in info.columns:
        with_structures = [i.name for i in list_datasets() if "structure_json" in i.columns]
        raise DatasetError(
            f"{name!r} holds no structures; datasets with structures: {with_structures}"
        )
    df = load_dataset(name)
    return [Structure.from_dict(json.loads(s)) for s in df["structure_json"]]


def matbench_folds(name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 5 official Matbench v0.1 folds of ``name`` as (train_idx, test_idx) row positions.

    Row positions index :func:`load_dataset` ``(name)``; they are the official folds of
    ``matbench_v0.1_validation.json`` (ids are 1-based: ``mb-...-0001`` is row 0).
    """
    import numpy as np

    info = dataset_info(name)
    if info.matbench is None:
        tasks = [i.name for i in list_datasets() if i.matbench is not None]
        raise DatasetError(f"{name!r} is not a Matbench task; Matbench tasks: {tasks}")
    fold = load_dataset(name)["fold"].to_numpy()
    rows = np.arange(len(fold))
    return [(rows[fold != k], rows[fold == k]) for k in range(5)]
