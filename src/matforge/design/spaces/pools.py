"""Fixed tables of candidates: :class:`DiscretePool` (any columns) and
:class:`CompositionPool` (formulas, seen through composition descriptors), which share
:class:`CandidateTable`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from matforge.design.spaces.base import (
    DesignSpace,
    _json_value,
    _require_columns,
    _rng,
    _row_frame,
    _show,
)
from matforge.design.spaces.parameters import (
    Ordinal,
    _checked_levels,
    check_column_levels,
)
from matforge.errors import DesignSpaceError
from matforge.jsonable import to_jsonable

# -----------------------------------------------------------------------------------------------
# A fixed pool of candidates
# -----------------------------------------------------------------------------------------------


def _declared(spec, what: str) -> dict[str, list | None]:
    """``categorical=`` / ``ordinal=`` of a pool as ``{column: levels or None}``."""
    if spec is None:
        return {}
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, Mapping):
        return {str(k): (None if v is None else list(v)) for k, v in spec.items()}
    if not isinstance(spec, Iterable):
        raise DesignSpaceError(f"DiscretePool: {what} must be column names or a mapping")
    return dict.fromkeys((str(c) for c in spec), None)


def _stored_value(v):
    """A table cell as JSON: numbers, text, None and pandas timestamps as
    :func:`~matforge.jsonable.to_jsonable` writes them (non-finite numbers None, which
    PostgreSQL's JSON needs; timestamps ISO text), any other object its ``str`` (pool keys are
    built from these cells: they stay what they were)."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, bool | int | float | str | pd.Timestamp):
        return to_jsonable(v)
    return str(v)


class CandidateTable(DesignSpace):
    """What every fixed table of candidates shares (:class:`DiscretePool`,
    :class:`CompositionPool`): rows with unique ids, matched to given rows by id or by what the
    candidates are (``_match``, per subclass), drawn and excluded by position, and serialised as
    their columns, dtypes and values."""

    df: pd.DataFrame
    id_column: str | None
    _ids: pd.Index

    def __len__(self) -> int:
        return len(self.df)

    @property
    def ids(self) -> pd.Index:
        """Candidate ids, in pool order."""
        return self._ids

    @property
    def columns(self) -> list[str]:
        return list(self.df.columns)

    def _match(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (row of df, pool position) that refer to the same candidate."""
        raise NotImplementedError

    def _match_ids(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`_match` by id, when ``df`` carries the id column (else None)."""
        if self.id_column is None or self.id_column not in df.columns:
            return None
        pos = self._ids.get_indexer(pd.Index(df[self.id_column]))
        rows = np.flatnonzero(pos >= 0)
        return rows, pos[rows]

    def positions(self, items) -> np.ndarray:
        """Pool positions of candidates given as ids (list-like) or rows (DataFrame)."""
        if isinstance(items, pd.DataFrame):
            return np.unique(self._match(items)[1])
        ids = pd.Index(list(items) if not isinstance(items, pd.Index) else items)
        pos = self._ids.get_indexer(ids)
        if (pos < 0).any():
            unknown = list(ids[pos < 0][:5])
            raise DesignSpaceError(f"{type(self).__name__}: unknown candidate id(s) {unknown}")
        return pos

    def available(self, exclude=None) -> np.ndarray:
        """Boolean mask over the pool: candidates not in ``exclude`` (ids or rows, e.g. the
        already-observed and pending experiments)."""
        mask = np.ones(len(self), dtype=bool)
        if exclude is not None and len(exclude):
            mask[self.positions(exclude)] = False
        return mask

    def candidates(self, exclude=None) -> pd.DataFrame:
        """The candidate rows, without those in ``exclude`` (ids or rows)."""
        return self.df[self.available(exclude)]

    def sample(self, n: int, rng=None, exclude=None) -> pd.DataFrame:
        """``n`` distinct candidates drawn uniformly at random (without those in ``exclude``)."""
        pos = np.flatnonzero(self.available(exclude))
        if n > len(pos):
            raise DesignSpaceError(
                f"{type(self).__name__}: asked for {n} candidates, {len(pos)} available"
            )
        return self.df.iloc[np.sort(_rng(rng).choice(pos, size=int(n), replace=False))]

    def contains(self, df: pd.DataFrame) -> np.ndarray:
        """Which rows of ``df`` are pool candidates (by id, or by what they are)."""
        ok = np.zeros(len(df), dtype=bool)
        ok[self._match(df)[0]] = True
        return ok

    def _table_dict(self, value=_json_value) -> dict:
        """The candidate table as JSON: ``columns``, ``dtypes`` and ``data`` (by column)."""
        return {
            "columns": [str(c) for c in self.df.columns],
            "dtypes": [str(t) for t in self.df.dtypes],
            "data": {str(c): [value(v) for v in self.df[c].tolist()] for c in self.df.columns},
        }

    @staticmethod
    def _table_from_dict(d: dict) -> pd.DataFrame:
        """The candidate table of :meth:`_table_dict`, with its dtypes where they apply."""
        df = pd.DataFrame({c: d["data"][c] for c in d["columns"]}, columns=d["columns"])
        for c, t in zip(d["columns"], d["dtypes"], strict=True):
            try:
                df[c] = df[c].astype(t)
            except (TypeError, ValueError):
                pass
        return df


class DiscretePool(CandidateTable):
    """A fixed table of candidates: a dataset, a screen's output, a CSV of possible experiments.

    Parameters
    ----------
    df : DataFrame
        One row per candidate.
    id_column : str, optional
        Column of unique candidate ids; without it the DataFrame's (unique) index is the id.
    feature_columns : list of str, optional
        Columns the surrogate sees. Numeric and boolean columns are used as they are, other
        columns are one-hot encoded with the pool's levels. Default: every numeric column
        except ``id_column``, and the columns named in ``categorical`` and ``ordinal``.
    categorical : list of str, or mapping of column to levels, optional
        Columns one-hot encoded even if they hold numbers (a catalyst code), and, with a
        mapping, every level such a column may take (the pool's own levels must be among them;
        a level the pool lacks lets past results with it be recorded).
    ordinal : mapping of column to levels, lowest first, optional
        Columns whose levels are ordered ("low" < "medium" < "high"; numbers may be given as
        a list of column names instead, ordered by value): encoded by rank, scaled to [0, 1].

    Text and declared columns refuse a level they do not have in :meth:`check_levels`
    (results, past experiments).

    Rows given to :meth:`contains`, :meth:`positions` or ``exclude=`` are matched by id when
    they carry ``id_column``, otherwise by their feature values (numbers rounded to 9 decimals),
    so that every pool row with those features matches.
    """

    def __init__(self, df: pd.DataFrame, id_column: str | None = None,
                 feature_columns: Sequence[str] | None = None,
                 categorical: Sequence[str] | Mapping[str, Sequence] | None = None,
                 ordinal: Sequence[str] | Mapping[str, Sequence] | None = None):
        if not isinstance(df, pd.DataFrame):
            raise DesignSpaceError(f"DiscretePool needs a DataFrame, got {type(df).__name__}")
        if len(df) == 0:
            raise DesignSpaceError("DiscretePool: the candidate table is empty")
        declared_cat = _declared(categorical, "categorical")
        declared_ord = _declared(ordinal, "ordinal")
        both = sorted(set(declared_cat) & set(declared_ord))
        if both:
            raise DesignSpaceError(f"DiscretePool: {both} declared both categorical and ordinal")
        _require_columns(df, [*declared_cat, *declared_ord], "DiscretePool")
        if id_column is not None:
            _require_columns(df, [id_column], "DiscretePool")
            ids = pd.Index(df[id_column])
            if ids.hasnans:
                raise DesignSpaceError(f"DiscretePool: missing ids in column {id_column!r}")
        else:
            ids = df.index
        if not ids.is_unique:
            dupes = list(ids[ids.duplicated()].unique()[:5])
            where = f"column {id_column!r}" if id_column else "the index"
            raise DesignSpaceError(f"DiscretePool: duplicate candidate ids in {where}: {dupes}")
        if feature_columns is None:
            feature_columns = [c for c in df.columns if c != id_column
                               and (pd.api.types.is_numeric_dtype(df[c])
                                    or pd.api.types.is_bool_dtype(df[c])
                                    or c in declared_cat or c in declared_ord)]
            if not feature_columns:
                raise DesignSpaceError(
                    "DiscretePool: no numeric column to use as features; pass feature_columns"
                )
        feature_columns = list(feature_columns)
        _require_columns(df, feature_columns, "DiscretePool")
        if id_column in feature_columns:
            raise DesignSpaceError(f"DiscretePool: the id column {id_column!r} is not a feature")
        undeclared = [c for c in [*declared_cat, *declared_ord] if c not in feature_columns]
        if undeclared:
            raise DesignSpaceError(
                f"DiscretePool: {undeclared} are declared categorical/ordinal but are not "
                f"feature columns {feature_columns}"
            )
        self.df = df.copy()
        self.id_column = id_column
        self.feature_columns = feature_columns
        self._ids = ids
        self._levels: dict[str, list] = {}  # one-hot columns and their levels
        self._ordinal: dict[str, list] = {}  # ordinal columns and their levels, lowest first
        self._declared = {"categorical": {}, "ordinal": {}}  # as given (for as_dict)
        for c in feature_columns:
            col = df[c]
            if c in declared_cat or c in declared_ord or not (
                    pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                bad = col.isna().to_numpy()
            else:
                bad = ~np.isfinite(col.to_numpy(dtype=float))
            if bad.any():
                raise DesignSpaceError(
                    f"DiscretePool: feature {c!r} is missing or not finite for candidate(s) "
                    f"{list(ids[bad][:5])}"
                )
            present = [_json_value(v) for v in col.unique().tolist()]
            if c in declared_ord:
                levels = declared_ord[c]
                if levels is None:
                    if not pd.api.types.is_numeric_dtype(col):
                        raise DesignSpaceError(
                            f"DiscretePool: the ordinal column {c!r} holds text; give its "
                            f"levels lowest first (ordinal={{{c!r}: [...]}})"
                        )
                    levels = sorted(present)
                self._declared["ordinal"][c] = declared_ord[c]
                levels = list(Ordinal(c, tuple(levels)).levels)
                self._ordinal[c] = levels
            elif c in declared_cat or c not in self._ordinal and not (
                    pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                levels = declared_cat.get(c)
                if c in declared_cat:
                    self._declared["categorical"][c] = levels
                if levels is None:
                    levels = sorted(present, key=str)
                else:
                    levels = list(_checked_levels(c, levels, "categorical column"))
                self._levels[c] = levels
            else:
                continue
            check_column_levels(c, col, levels, "DiscretePool: the candidate table",
                                "declared levels")
        self._features = self._encode(self.df)

    def __repr__(self) -> str:
        feats = self.feature_columns
        shown = ", ".join(feats[:6]) + (f", … ({len(feats)} in all)" if len(feats) > 6 else "")
        ident = f", id={self.id_column!r}" if self.id_column else ""
        return f"DiscretePool({len(self)} candidates{ident}, features=[{shown}])"

    @property
    def feature_names(self) -> list[str]:
        names = []
        for c in self.feature_columns:
            names += [f"{c}={v}" for v in self._levels[c]] if c in self._levels else [c]
        return names

    def check_levels(self, df: pd.DataFrame, source: str = "rows") -> None:
        for c, levels in (*self._levels.items(), *self._ordinal.items()):
            if c in df.columns:
                check_column_levels(c, df[c], levels, source, "levels of the pool's column")

    def _encode(self, df: pd.DataFrame) -> np.ndarray:
        blocks = []
        for c in self.feature_columns:
            if c in self._levels:
                levels = {v: i for i, v in enumerate(self._levels[c])}
                codes = np.array([levels.get(_json_value(v), -1) for v in df[c]], dtype=int)
                block = np.zeros((len(df), len(levels)))
                ok = codes >= 0
                block[np.flatnonzero(ok), codes[ok]] = 1.0
            elif c in self._ordinal:
                levels = {v: i for i, v in enumerate(self._ordinal[c])}
                codes = np.array([levels.get(_json_value(v), -1) for v in df[c]], dtype=float)
                span = max(len(levels) - 1, 1)
                block = np.where(codes >= 0, codes / span, np.nan)[:, None]
            else:
                block = df[c].to_numpy(dtype=float)[:, None]
            blocks.append(block)
        return np.hstack(blocks)

    def to_features(self, df: pd.DataFrame | None = None) -> np.ndarray:
        """Features of ``df`` (default: the whole pool, in pool order). Categories the pool
        does not have encode as all-zero one-hot blocks."""
        if df is None:
            return self._features.copy()
        _require_columns(df, self.feature_columns, "DiscretePool")
        F = self._encode(df)
        if not np.isfinite(F).all():
            row = df.index[int(np.flatnonzero(~np.isfinite(F).all(axis=1))[0])]
            raise DesignSpaceError(f"DiscretePool: missing or non-finite feature in row {row!r}")
        return F

    def _keys(self, df: pd.DataFrame) -> pd.DataFrame:
        keys = {}
        for c in self.feature_columns:
            if c in self._levels or c in self._ordinal:
                keys[c] = df[c].astype(str).to_numpy()
            else:
                keys[c] = np.round(df[c].to_numpy(dtype=float), 9)
        return pd.DataFrame(keys)

    def _match(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (row of df, pool position) that refer to the same candidate."""
        by_id = self._match_ids(df)
        if by_id is not None:
            return by_id
        _require_columns(df, self.feature_columns, "DiscretePool")
        left = self._keys(df).assign(_row=np.arange(len(df)))
        right = self._keys(self.df).assign(_pos=np.arange(len(self)))
        merged = left.merge(right, on=self.feature_columns, how="inner")
        return merged["_row"].to_numpy(), merged["_pos"].to_numpy()

    def infeasible_reason(self, row) -> str | None:
        frame = _row_frame(row)
        if self.contains(frame)[0]:
            return None
        if self.id_column is not None and self.id_column in frame.columns:
            return f"no candidate with {self.id_column} = {_show(frame[self.id_column].iloc[0])}"
        return "no pool candidate has these feature values"

    def as_dict(self) -> dict:
        return {
            "@class": "DiscretePool",
            "id_column": self.id_column,
            "feature_columns": self.feature_columns,
            **self._table_dict(),
            "index": None if self.id_column else [_json_value(v) for v in self.df.index.tolist()],
            **{k: v for k, v in self._declared.items() if v},
        }

    @classmethod
    def _from_dict(cls, d: dict) -> DiscretePool:
        df = cls._table_from_dict(d)
        if d.get("index") is not None:
            df.index = d["index"]
        return cls(df, id_column=d["id_column"], feature_columns=d["feature_columns"],
                   categorical=d.get("categorical"), ordinal=d.get("ordinal"))


# -----------------------------------------------------------------------------------------------
# Candidate compositions
# -----------------------------------------------------------------------------------------------


def composition_keys(formulas: Sequence[str], source: str | None = None) -> list[str]:
    """Canonical key of each formula: its elements and atomic fractions (6 significant
    digits), so ``"Fe2O3"``, ``"O3Fe2"`` and ``"Fe0.4O0.6"`` share one key.

    Raises :class:`~matforge.errors.InvalidFormula` naming the first formula that does not parse.
    The rule is :func:`matforge.chem.identity.composition_key_strings`.
    """
    from matforge.chem.identity import composition_key_strings

    return composition_key_strings(formulas, source=source)


class CompositionPool(CandidateTable):
    """A fixed table of candidate compositions (a formula column, plus any other columns).

    The surrogate sees composition descriptors of the formulas (``featurizer``, a
    :func:`~matforge.models.pipeline.build_featurizer` spec; ``"auto"``:
    :func:`~matforge.design.strategy.composition_feature_spec` of the pool, i.e. element
    fractions for a pool of at most 16 elements, Magpie statistics and fractions beyond).
    ``feature_columns``: other design columns the surrogate sees beside the composition (a
    synthesis route, a solvent, an annealing temperature), encoded as in a
    :class:`DiscretePool` (numbers as they are, text one-hot, and ``categorical`` /
    ``ordinal`` as declared there). Rows are matched by ``id_column`` when given rows carry
    it, otherwise by composition (see :func:`composition_keys`) and the values of
    ``feature_columns``, so every pool row of that composition (and those values) matches.
    """

    def __init__(self, df: pd.DataFrame, formula_column: str = "formula",
                 id_column: str | None = None, featurizer: Sequence[str] | str = "auto",
                 feature_columns: Sequence[str] = (), categorical=None, ordinal=None):
        if not isinstance(df, pd.DataFrame) or len(df) == 0:
            raise DesignSpaceError("CompositionPool needs a non-empty DataFrame of candidates")
        if formula_column not in df.columns:
            raise DesignSpaceError(
                f"CompositionPool: no formula column {formula_column!r}; have {list(df.columns)}"
            )
        if id_column is not None:
            if id_column not in df.columns:
                raise DesignSpaceError(f"CompositionPool: no id column {id_column!r}")
            ids = pd.Index(df[id_column])
        else:
            ids = pd.RangeIndex(len(df))
        if not ids.is_unique:
            raise DesignSpaceError(
                f"CompositionPool: duplicate ids in {id_column!r}: "
                f"{list(ids[ids.duplicated()].unique()[:5])}"
            )
        self.df = df.reset_index(drop=True)
        self.formula_column = formula_column
        self.id_column = id_column
        if isinstance(featurizer, str):
            if featurizer != "auto":
                raise DesignSpaceError(f"featurizer must be 'auto' or a list, got {featurizer!r}")
            from matforge.design.strategy import composition_feature_spec

            featurizer = composition_feature_spec(self.df[formula_column].tolist())
        self.featurizer = list(featurizer)
        self._ids = ids
        self.extra_columns = [str(c) for c in feature_columns]
        bad = [c for c in self.extra_columns if c in (formula_column, id_column)]
        if bad:
            raise DesignSpaceError(f"CompositionPool: {bad} cannot be extra feature columns")
        # the other design columns are encoded (and their levels checked) by a DiscretePool
        self._extra = DiscretePool(self.df, feature_columns=self.extra_columns,
                                   categorical=categorical, ordinal=ordinal) \
            if self.extra_columns else None
        self._keys = self._with_extras(
            np.array(composition_keys(self.df[formula_column].tolist(),
                                      source="candidate pool"), dtype=object), self.df)
        self._features = None

    def _with_extras(self, keys: np.ndarray, df: pd.DataFrame) -> np.ndarray:
        """Composition keys, followed by the extra feature columns' values when there are."""
        if self._extra is None:
            return keys
        missing = [c for c in self.extra_columns if c not in df.columns]
        if missing:
            raise DesignSpaceError(f"rows need the column(s) {missing}")
        extra = self._extra._keys(df)
        tails = [json.dumps([_stored_value(v) for v in row]) for row in extra.to_numpy().tolist()]
        return np.array([f"{k} | {t}" for k, t in zip(keys, tails, strict=True)], dtype=object)

    def check_levels(self, df: pd.DataFrame, source: str = "rows") -> None:
        if self._extra is not None:
            self._extra.check_levels(df, source)

    def __repr__(self) -> str:
        return f"CompositionPool({len(self)} candidates, formula={self.formula_column!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, CompositionPool) and self.as_dict() == other.as_dict()

    __hash__ = None

    @property
    def feature_names(self) -> list[str]:
        from matforge.models.pipeline import build_featurizer

        extra = self._extra.feature_names if self._extra is not None else []
        return list(build_featurizer(self.featurizer).feature_labels()) + extra

    def keys(self, df: pd.DataFrame) -> np.ndarray:
        """Composition keys of the rows of ``df`` (pool rows: cached)."""
        if df is self.df:
            return self._keys
        if self.formula_column not in df.columns:
            raise DesignSpaceError(f"rows need a {self.formula_column!r} column")
        return self._with_extras(
            np.array(composition_keys(df[self.formula_column].tolist()), dtype=object), df)

    def to_features(self, df: pd.DataFrame | None = None) -> np.ndarray:
        """Composition descriptors of ``df`` (default: the pool, computed once)."""
        from matforge.design.strategy import composition_features

        if df is None:
            if self._features is None:
                F = composition_features(self.df[self.formula_column].tolist(), self.featurizer)
                if self._extra is not None:
                    F = np.hstack([F, self._extra.to_features()])
                self._features = F
            return self._features
        if self.formula_column not in df.columns:
            raise DesignSpaceError(f"rows need a {self.formula_column!r} column")
        F = composition_features(df[self.formula_column].tolist(), self.featurizer)
        if self._extra is not None:
            F = np.hstack([F, self._extra.to_features(df)])
        return F

    def _match(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        by_id = self._match_ids(df)
        if by_id is not None:
            return by_id
        left = pd.DataFrame({"k": self.keys(df), "_row": np.arange(len(df))})
        right = pd.DataFrame({"k": self._keys, "_pos": np.arange(len(self))})
        m = left.merge(right, on="k")
        return m["_row"].to_numpy(), m["_pos"].to_numpy()

    def infeasible_reason(self, row) -> str | None:
        frame = _row_frame(row)
        if self.contains(frame)[0]:
            return None
        return f"{frame[self.formula_column].iloc[0]!r} is not a candidate of the pool"

    def as_dict(self) -> dict:
        d = {
            "@class": "CompositionPool",
            "formula_column": self.formula_column,
            "id_column": self.id_column,
            "featurizer": self.featurizer,
            **self._table_dict(_stored_value),
        }
        if self._extra is not None:  # absent: a pool of compositions alone (as before)
            d["feature_columns"] = list(self.extra_columns)
            declared = self._extra.as_dict()
            d.update({k: declared[k] for k in ("categorical", "ordinal") if k in declared})
        return d

    @classmethod
    def _from_dict(cls, d: dict) -> CompositionPool:
        from matforge.design.strategy import COMPOSITION_FEATURES

        return cls(cls._table_from_dict(d), d["formula_column"], d.get("id_column"),
                   d.get("featurizer", COMPOSITION_FEATURES),
                   feature_columns=d.get("feature_columns", ()),
                   categorical=d.get("categorical"), ordinal=d.get("ordinal"))
