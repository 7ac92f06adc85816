"""The design space a table of experiments implies (``matforge campaign new``): which columns
describe an experiment, and as what (a pool of candidate formulas or rows, process parameters,
a formulation), inferred from the data and the columns the user declares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from matforge.design.campaign import CampaignError
from matforge.design.spaces import (
    CompositionPool,
    DesignSpace,
    DiscretePool,
    FormulationSpace,
    ParameterSpace,
)
from matforge.errors import DesignSpaceError

__all__ = ["infer_parameter", "infer_space"]


def _numeric_levels(levels: Sequence, column: str) -> list:
    """Declared levels (text, from the command line) of a column that holds numbers, as
    numbers (whole ones as integers), so that they match the table's values."""
    out = []
    for v in levels:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise CampaignError(
                f"level {v!r} of column {column!r} is not a number, but the column holds numbers"
            ) from None
        out.append(int(x) if x.is_integer() else x)
    return out


def _design_levels(declared: Mapping[str, Sequence | None] | None, column: str,
                   values: pd.Series) -> list | None:
    """The levels declared for ``column`` (None: none declared), typed like its values."""
    levels = (declared or {}).get(column)
    if levels is None:
        return None
    numeric = pd.to_numeric(values.dropna(), errors="coerce").notna().all() and \
        values.notna().any()
    return _numeric_levels(levels, column) if numeric else [str(v) for v in levels]


def _declarations(spec, what: str) -> dict[str, list | None]:
    if spec is None:
        return {}
    if isinstance(spec, str):
        return {spec: None}
    if isinstance(spec, Mapping):
        return {str(k): None if v is None else list(v) for k, v in spec.items()}
    if isinstance(spec, Sequence):
        return dict.fromkeys((str(c) for c in spec), None)
    raise CampaignError(f"{what} must be column names or a mapping of column to levels")


def infer_parameter(column: str, values: pd.Series, *,
                    categorical: Mapping[str, Sequence | None] | None = None,
                    ordinal: Mapping[str, Sequence | None] | None = None,
                    continuous: Sequence[str] = ()):
    """The parameter a table column implies (see :func:`infer_space`)."""
    from matforge.design.spaces import Categorical, Continuous, Integer, Ordinal

    observed = values.dropna()
    if not len(observed):
        raise CampaignError(f"column {column!r} has no value to infer its range or levels from")
    numeric = pd.to_numeric(observed, errors="coerce")
    is_numeric = bool(numeric.notna().all()) and not pd.api.types.is_bool_dtype(observed)
    levels = [v.item() if isinstance(v, np.generic) else v for v in observed.unique().tolist()]
    try:
        if column in (categorical or {}):
            declared = _design_levels(categorical, column, values)
            return Categorical(column, tuple(declared if declared is not None
                                             else sorted(levels, key=str)))
        if column in (ordinal or {}):
            declared = _design_levels(ordinal, column, values)
            if declared is None:
                if not is_numeric:
                    raise CampaignError(
                        f"column {column!r} holds text: give its ordinal levels lowest first "
                        f"({column}=low,medium,high)"
                    )
                declared = sorted(numeric.unique().tolist())
                declared = [int(x) if float(x).is_integer() else float(x) for x in declared]
            return Ordinal(column, tuple(declared))
        if not is_numeric:
            return Categorical(column, tuple(sorted(levels, key=str)))
        lo, hi = float(numeric.min()), float(numeric.max())
        whole = bool((numeric == np.round(numeric)).all())
        if whole and column not in continuous:
            return Integer(column, int(lo), int(hi))
        return Continuous(column, lo, hi)
    except DesignSpaceError as exc:
        raise CampaignError(f"column {column!r}: {exc}") from None


def infer_space(data: pd.DataFrame, *, formula: str | None = None,
                features: Sequence[str] | None = None,
                formulation: Sequence[str] | None = None, max_components: int | None = None,
                pool: pd.DataFrame | None = None, targets: Sequence[str] = (),
                id_column: str | None = None,
                categorical: Sequence[str] | Mapping[str, Sequence | None] | None = None,
                ordinal: Sequence[str] | Mapping[str, Sequence | None] | None = None,
                continuous: Sequence[str] = ()) -> DesignSpace:
    """The design space a CSV-based campaign implies (see ``matforge campaign new``).

    * ``formula``: a :class:`CompositionPool` of the rows of ``pool``, or else of the rows of
      ``data`` whose targets are all missing (the candidates); ``features`` are then other
      columns the surrogate sees beside the composition (numbers as they are, text one-hot);
    * ``features`` alone: a :class:`DiscretePool` of ``pool`` on those columns, or else a
      :class:`ParameterSpace` spanning the data: a column of whole numbers becomes an
      :class:`~matforge.design.spaces.Integer` over its range (unless named in
      ``continuous``), other numbers a :class:`~matforge.design.spaces.Continuous` range, text
      a :class:`~matforge.design.spaces.Categorical` of its levels;
    * ``formulation``: a :class:`DiscretePool` of ``pool``, or else a :class:`FormulationSpace`
      of those ingredients summing to the data's typical row total (1 or 100 when the rows sum
      to that within 1 %), with at most ``max_components`` present, and ``features`` as its
      process parameters (inferred as above).

    ``categorical`` and ``ordinal`` declare columns (names, or a mapping to their levels):
    a categorical column is one-hot even if it holds numbers (a catalyst code), and its
    declared levels may include ones the data lacks; an ordinal column's levels are ordered,
    lowest first (numbers: by value, unless declared). Declared columns are design columns
    even if ``features`` does not name them.
    """
    given = [x is not None for x in (formula, formulation)]
    categorical = _declarations(categorical, "categorical")
    ordinal = _declarations(ordinal, "ordinal")
    both = sorted(set(categorical) & set(ordinal))
    if both:
        raise CampaignError(f"column(s) {both} declared both categorical and ordinal")
    declared = [c for c in [*categorical, *ordinal] if c not in (features or [])]
    if declared:
        features = [*(features or []), *declared]
    if sum(given) > 1 or (not any(given) and features is None):
        raise CampaignError("describe the experiments with exactly one of formula, features "
                            "and formulation (features may also go beside formula or "
                            "formulation: other design columns, process parameters)")
    unknown = [c for c in continuous if c not in (features or [])]
    if unknown:
        raise CampaignError(f"continuous column(s) {unknown} are not design features")
    unlabelled = None
    if targets:
        present = [t for t in targets if t in data.columns]
        if present:
            vals = data[present].apply(pd.to_numeric, errors="coerce")
            unlabelled = data[vals.isna().all(axis=1)]
    if formula is not None:
        if formula not in data.columns:
            raise CampaignError(f"no formula column {formula!r}; have {list(data.columns)}")
        cands = pool if pool is not None else unlabelled
        if cands is None or not len(cands):
            raise CampaignError(
                "a formula campaign chooses among candidates: give a pool of candidate "
                "formulas (--pool), or rows without results in the data file"
            )
        cands = cands.drop(columns=[t for t in targets if t in cands.columns])
        extra = list(features or [])
        missing = [c for c in extra if c not in cands.columns]
        if missing:
            raise CampaignError(f"column(s) {missing} not in the candidates; have "
                                f"{list(cands.columns)}")
        try:
            return CompositionPool(cands.reset_index(drop=True), formula_column=formula,
                                   id_column=id_column, feature_columns=extra,
                                   categorical=_typed(categorical, cands),
                                   ordinal=_typed(ordinal, cands))
        except DesignSpaceError as exc:
            raise CampaignError(str(exc)) from None
    cols = list(formulation if formulation is not None else features)
    params = list(features or []) if formulation is not None else []
    missing = [c for c in cols + params if c not in data.columns]
    if missing:
        raise CampaignError(f"column(s) {missing} not in the data; have {list(data.columns)}")
    if pool is not None:
        allcols = cols + [c for c in params if c not in cols]
        miss = [c for c in allcols if c not in pool.columns]
        if miss:
            raise CampaignError(f"column(s) {miss} not in the candidate pool")
        keep = [c for c in pool.columns if c not in targets]
        try:
            return DiscretePool(pool[keep].reset_index(drop=True), id_column=id_column,
                                feature_columns=allcols, categorical=_typed(categorical, pool),
                                ordinal=_typed(ordinal, pool))
        except DesignSpaceError as exc:
            raise CampaignError(str(exc)) from None
    kinds = {"categorical": categorical, "ordinal": ordinal, "continuous": continuous}
    if features is not None and formulation is None:
        return ParameterSpace([infer_parameter(c, data[c], **kinds) for c in cols])
    amounts = data[cols].apply(pd.to_numeric, errors="coerce")
    if amounts.isna().any().any():
        bad = amounts.isna().any(axis=1).to_numpy()
        raise CampaignError(f"ingredient amounts missing or not numbers in row(s) "
                            f"{(np.flatnonzero(bad)[:5] + 1).tolist()}")
    total = float(np.median(amounts.sum(axis=1)))
    for nice in (1.0, 100.0):
        if abs(total - nice) <= 0.01 * nice:
            total = nice
    parameters = [infer_parameter(c, data[c], **kinds) for c in params] or None
    return FormulationSpace(cols, total=total, max_components=max_components,
                            parameters=parameters)


def _typed(declared: dict[str, list | None], table: pd.DataFrame) -> dict | None:
    """Declared levels typed like the table's columns (numbers stay numbers)."""
    out = {c: (_design_levels(declared, c, table[c]) if c in table.columns else levels)
           for c, levels in declared.items()}
    return out or None
