"""The :class:`Store`: a lab's materials, measurements and their provenance in one database."""

from __future__ import annotations

import getpass
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from matforge.errors import DuplicateIngest, IngestError, InvalidFormula, StoreError, UnitError
from matforge.store import schema, units
from matforge.store.database import (
    create_engine,
    ensure_schema,
    missing_sqlite_file,
    resolve_url,
    write_transaction,
)
from matforge.store.repositories import display_url
from matforge.store.repositories import measurements as repo
from matforge.store.repositories import projects as projects_repo
from matforge.store.validation import (
    FIELDS,
    IGNORE,
    MAX_COLUMNS,
    ValidRows,
    check_width,
    ingest_error,
    validate_rows,
)

#: Rows per INSERT batch: large enough to amortise round trips, small enough to bound memory.
BATCH_ROWS = 10_000
# Keys per `IN (...)` lookup; SQLite allows 32766 bound parameters per statement.
_KEYS_PER_QUERY = 5_000
# Rows per multi-row INSERT on PostgreSQL (at most 65535 parameters per statement).
_ROWS_PER_VALUES = 1_000

Progress = Callable[[str, int, int], None]



@dataclass(frozen=True)
class Written:
    """What one write stored: the new dataset (None when no row was valid), the canonical unit
    the values were stored in, whether the property was new, and the rows written and flagged."""

    dataset_id: int | None
    canonical_unit: str
    new_property: bool
    n_written: int
    n_flagged: int


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return os.environ.get("USER", "unknown")


def element_list(elements: str | Iterable[str]) -> list[str]:
    """The sorted distinct symbols of an elements filter (``"Fe-O"``, ``"Fe, O"``,
    ``["Fe", "O"]``), as the store and the server read it; :class:`InvalidFormula` names
    unknown symbols."""
    from matforge.chem import Z

    if isinstance(elements, str):
        items = elements.replace(",", " ").replace("-", " ").split()
    else:
        items = [str(e).strip() for e in elements]
    unknown = [e for e in items if e not in Z]
    if unknown:
        raise InvalidFormula(f"unknown element symbol(s) {unknown} in elements filter {elements!r}")
    return sorted(set(items))


def _as_list(x: str | Iterable[str] | None) -> list[str] | None:
    if x is None:
        return None
    return [x] if isinstance(x, str) else list(x)


def _bulk_insert(
    conn: sa.Connection,
    table: sa.Table,
    columns: dict[str, list],
    *,
    constants: dict | None = None,
    ignore_conflicts_on: str | None = None,
) -> None:
    """INSERT the rows given column-wise (plus ``constants``, the same in every row).

    Bypasses SQLAlchemy's per-row parameter handling (which costs more than the database's
    work for 10^5 rows): each column's bind processor (JSON, SQLite datetimes) is applied
    column-wise, then the driver gets plain tuples. With ``ignore_conflicts_on``, rows whose
    value in that unique column is already stored (by anyone) are skipped, on SQLite and
    PostgreSQL alike (``ON CONFLICT DO NOTHING``).
    """
    n = len(next(iter(columns.values())))
    if n == 0:
        return
    dialect = conn.dialect

    def processor(name):
        return table.c[name].type.dialect_impl(dialect).bind_processor(dialect)

    names, values = [], []
    for name, column in columns.items():
        process = processor(name)
        names.append(name)
        values.append([process(v) for v in column] if process else column)
    for name, value in (constants or {}).items():
        process = processor(name)
        names.append(name)
        values.append([process(value) if process else value] * n)
    quote = dialect.identifier_preparer.quote
    target = f"{quote(table.name)} ({', '.join(quote(c) for c in names)})"
    rows = list(zip(*values, strict=True))
    if dialect.name == "sqlite":
        # In-process: one prepared statement stepped per row is as fast as SQLite gets.
        sql = f"INSERT INTO {target} VALUES ({', '.join(['?'] * len(names))})"
        if ignore_conflicts_on is not None:
            sql += f" ON CONFLICT ({quote(ignore_conflicts_on)}) DO NOTHING"
        conn.exec_driver_sql(sql, rows)
    elif ignore_conflicts_on is None:
        # PostgreSQL: COPY streams the rows in one command, several times faster than
        # executemany's one INSERT per row (same transaction: same DBAPI connection).
        with (
            conn.connection.dbapi_connection.cursor() as cursor,
            cursor.copy(f"COPY {target} FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    else:
        # PostgreSQL with ON CONFLICT (which COPY lacks): multi-row VALUES statements.
        one = f"({', '.join(['%s'] * len(names))})"
        conflict = f" ON CONFLICT ({quote(ignore_conflicts_on)}) DO NOTHING"
        for start in range(0, len(rows), _ROWS_PER_VALUES):
            chunk = rows[start : start + _ROWS_PER_VALUES]
            sql = f"INSERT INTO {target} VALUES {', '.join([one] * len(chunk))}{conflict}"
            conn.exec_driver_sql(sql, tuple(v for row in chunk for v in row))


def _frame_checksum(df: pd.DataFrame, property: str, unit, method: str, mapping) -> str:
    """sha256 of a table as written (its columns and cells as text), its property, unit,
    method and column mapping: the identity of an ``add_measurements`` call."""
    import hashlib

    key = (property, unit, method, sorted((mapping or {}).items()))
    digest = hashlib.sha256(repr(key).encode())
    digest.update(df.to_csv(index=False).encode())
    return digest.hexdigest()


def _property_key(name: str) -> str:
    return "".join(c for c in name.lower() if c not in " _-")


class Store:
    """A persistent store of materials measurements.

    ``Store()`` opens ``$MATFORGE_DB`` (a path or SQLAlchemy URL) or ``~/.matforge/matforge.db``;
    ``Store("lab.db")`` a SQLite file; ``Store("postgresql://user:pw@host/db")`` a PostgreSQL
    database. Opening creates the schema in an empty database, upgrades an older one and refuses
    (with :class:`StoreError`) one written by a newer matforge. ``create=False`` refuses a SQLite
    file that does not exist instead of creating an empty store (for commands that only read:
    a mistyped path is an error, not an empty answer).

    Every value is stored in its property's canonical unit (``bulk_modulus`` in GPa,
    ``formation_energy_per_atom`` in eV/atom; see :meth:`properties`), converted with pint on
    the way in. A write is one transaction: all of it lands, or none.
    """

    def __init__(self, url: str | os.PathLike | None = None, *, create: bool = True):
        if not create:
            missing = missing_sqlite_file(url)
            if missing is not None:
                raise StoreError(
                    f"no store at {missing}: check the path (--db or $MATFORGE_DB); a store is "
                    "created by the commands that write to it (ingest, campaign new, user add)"
                )
        self.url = resolve_url(url)
        self._engine = create_engine(self.url)
        self._where = display_url(self.url)
        try:
            ensure_schema(self._engine, self._where)
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"Store({self._where!r})"

    def close(self) -> None:
        """Close every pooled connection (a SQLite file's WAL is checkpointed)."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine, for queries this class does not offer."""
        return self._engine

    # --- reference tables ------------------------------------------------------------------

    def add_project(self, name: str, description: str = "") -> None:
        """Create project ``name`` if it does not exist yet."""
        with write_transaction(self._engine) as conn:
            self._project_id(conn, name, description)

    def add_property(self, name: str, canonical_unit: str, description: str = "") -> None:
        """Register property ``name`` whose values are stored in ``canonical_unit`` (a pint unit).

        Re-registering with the same unit does nothing; with another unit raises StoreError.
        """
        units.check_unit(canonical_unit, canonical_unit, property=name)
        with write_transaction(self._engine) as conn:
            _, unit = self._property_id(conn, name, canonical_unit, description)
        if unit != canonical_unit:
            raise StoreError(
                f"property '{name}' exists with canonical unit '{unit}', not '{canonical_unit}'"
            )

    def property_unit(self, name: str) -> str | None:
        """The canonical unit of property ``name``, or None if the store does not know it."""
        with self._engine.connect() as conn:
            return repo.property_unit(conn, name)

    def properties(self) -> pd.DataFrame:
        """Known properties: ``name``, ``canonical_unit``, ``description``."""
        return self._frame(repo.select_properties())

    def projects(self) -> pd.DataFrame:
        """Projects with ``name``, ``description``, ``created_at``, ``n_datasets``, ``n_measurements``."""
        stmt = projects_repo.select_summaries()
        return self._dates(self._frame(stmt), "created_at")

    def datasets(self, project: str | None = None) -> pd.DataFrame:
        """One row per write (an ingested file or an ``add_measurements`` call), with provenance."""
        stmt = projects_repo.select_datasets(project)
        return self._dates(self._frame(stmt), "created_at")

    # --- writing ---------------------------------------------------------------------------

    def add_measurements(
        self,
        df: pd.DataFrame,
        *,
        project: str,
        property: str,
        unit: str | None = None,
        method: str = "experiment",
        source: str | None = None,
        created_by: str | None = None,
        dataset: str = "DataFrame",
        mapping: dict[str, str] | None = None,
        force_new_property: bool = False,
        allow_duplicate: bool = False,
        allow_unphysical: bool = False,
        max_columns: int | None = MAX_COLUMNS,
    ) -> int:
        """Validate and store the rows of ``df``; return the number of measurements written.

        ``df`` needs a ``formula`` column (strings or pymatgen Compositions) and a ``value``
        column; optional ``uncertainty`` (same unit as the value), ``unit`` (per row; empty
        cells fall back to ``unit``) and ``structure`` (pymatgen Structure or its dict) columns.
        Every other column is a measurement condition (e.g. ``temperature_K``) kept as JSON.
        ``mapping`` renames columns first (``{"Eg": "value"}``; ``"-"`` drops a column).

        Values are converted from their unit to the property's canonical unit; a property the
        store does not know yet is registered with ``unit`` as its canonical unit, unless its
        name is a known property's spelled differently (``bandgap`` for ``band_gap``: an error
        that names it; ``force_new_property=True`` registers it all the same).

        All or nothing: if any row is invalid, :class:`IngestError` lists every bad cell
        ("row 3" is ``df.iloc[3]``) and nothing is written.

        The same table of the same property and unit added to the same project again is refused
        (its rows would be stored twice), as ``matforge ingest`` refuses a repeated file, unless
        ``allow_duplicate=True``.

        A value outside its property's physical range (a modulus <= 0 or above 500 GPa, a
        negative band gap; the table is :data:`matforge.store.ranges.RANGES`) is an invalid row,
        unless ``allow_unphysical=True``: then it is stored with the range's code in its
        ``flag``. Each row keeps its formula as written (``formula_as_ingested``).

        A table of more than ``max_columns`` columns (default
        :data:`~matforge.store.validation.MAX_COLUMNS`; None: no limit) is refused with
        :class:`~matforge.store.validation.TooManyColumns` before any row is looked at.
        """
        return self._add_frame(
            df,
            project=project,
            property=property,
            unit=unit,
            method=method,
            source=source,
            created_by=created_by,
            dataset=dataset,
            mapping=mapping,
            force_new_property=force_new_property,
            allow_duplicate=allow_duplicate,
            allow_unphysical=allow_unphysical,
            max_columns=max_columns,
        ).n_written

    def _add_frame(
        self,
        df: pd.DataFrame,
        *,
        project: str,
        property: str,
        unit: str | None,
        method: str,
        source: str | None,
        created_by: str | None,
        dataset: str,
        mapping: dict[str, str] | None,
        force_new_property: bool,
        allow_duplicate: bool,
        allow_unphysical: bool,
        where: str = "the DataFrame",
        max_columns: int | None = MAX_COLUMNS,
    ) -> Written:
        """:meth:`add_measurements`, telling what it wrote (the server needs the dataset id);
        ``where`` names the table in errors (row ``i`` is ``df.iloc[i]``)."""
        check_width(df.shape[1], max_columns, where=where)
        columns, conditions = resolve_columns(list(df.columns), mapping or {}, where=where)
        canonical, new_property = self._prepare_write(
            project, property, unit, method, force_new_property=force_new_property
        )
        checksum = _frame_checksum(df, property, unit, method, mapping)
        if not allow_duplicate:
            self._refuse_duplicate(project, checksum, f"the same {where.removeprefix('the ')}")
        table = df.reset_index(drop=True)
        valid, errors = validate_rows(
            table,
            columns,
            conditions=conditions,
            property=property,
            canonical_unit=canonical,
            default_unit=unit,
            lines=np.arange(len(table)),
            allow_unphysical=allow_unphysical,
        )
        if errors:
            raise ingest_error(errors, len(table), where=where, line_word="row")
        dataset_id = None
        if len(valid):
            dataset_id = self._insert(
                valid,
                project=project,
                property=property,
                canonical_unit=canonical,
                method=method,
                source=source,
                created_by=created_by,
                dataset=dataset,
                checksum=checksum,
            )
        return Written(dataset_id, canonical, new_property, len(valid), valid.n_flagged)

    def _refuse_duplicate(self, project: str, checksum: str, what: str) -> None:
        """Raise :class:`DuplicateIngest` if a dataset with ``checksum`` is in ``project``."""
        done = self.datasets(project)
        done = done[done["checksum"] == checksum]
        if len(done):
            first = done.iloc[0]
            raise DuplicateIngest(
                f"{what} was already ingested into project {project!r} (dataset ",
                int(first["id"]),
                f", {first['name']!r}, {int(first['n_rows'])} rows, "
                f"{first['created_at']:%Y-%m-%d %H:%M}); ingesting it again would store its "
                "measurements twice. Use allow_duplicate=True (CLI: --allow-duplicate; API: "
                '"allow_duplicate": true) if you mean it.'
            )

    def similar_property(self, name: str) -> str | None:
        """A known property whose name differs from ``name`` only by case, spaces, hyphens or
        underscores (``bandgap`` -> ``band_gap``), or None."""
        key = _property_key(name)
        p = schema.properties
        with self._engine.connect() as conn:
            names = conn.execute(sa.select(p.c.name)).scalars().all()
        return next((n for n in sorted(names) if n != name and _property_key(n) == key), None)

    def _prepare_write(
        self,
        project: str,
        property: str,
        unit: str | None,
        method: str,
        *,
        force_new_property: bool = False,
    ) -> tuple[str, bool]:
        """Check a write's arguments before any row is read.

        Returns the property's canonical unit and whether the property is new (then ``unit``
        becomes its canonical unit); raises if ``unit`` cannot be converted to it, and for a new
        property whose name is a known one's spelled differently unless ``force_new_property``.
        """
        for what, value in (("project", project), ("property", property)):
            if not value or not isinstance(value, str):
                raise IngestError(f"{what} must be a non-empty string, got {value!r}")
        if method not in schema.METHODS:
            raise IngestError(f"method must be one of {schema.METHODS}, got {method!r}")
        canonical = self.property_unit(property)
        new = canonical is None
        if new and not force_new_property:
            similar = self.similar_property(property)
            if similar is not None:
                raise IngestError(
                    f"property '{property}' is not in the store, but '{similar}' is: did you "
                    f"mean '{similar}'? (to store '{property}' as a property of its own, pass "
                    "force_new_property=True, or --new-property on the command line)"
                )
        if new:
            if unit is None:
                raise UnitError(
                    f"property '{property}' is not in the store; give its unit to register it"
                )
            canonical = unit
        if unit is not None:
            units.check_unit(unit, canonical, property=property)
        return canonical, new

    def _insert(
        self,
        valid: ValidRows,
        *,
        project: str,
        property: str,
        canonical_unit: str,
        method: str,
        source: str | None,
        created_by: str | None,
        dataset: str,
        checksum: str | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Write rows checked by :meth:`_prepare_write` and ``validate_rows`` in one transaction;
        return the new dataset's id."""
        created_by = created_by or _user()
        now = datetime.now(UTC)
        n = len(valid)
        d, meas = schema.datasets, schema.measurements
        with write_transaction(self._engine) as conn:
            project_id = self._project_id(conn, project)
            property_id, unit = self._property_id(conn, property, canonical_unit)
            if unit != canonical_unit:  # another writer registered it meanwhile, differently
                raise StoreError(
                    f"property '{property}' was registered with unit '{unit}' while this write "
                    f"was converting to '{canonical_unit}'; nothing was written, try again"
                )
            dataset_id = conn.execute(
                sa.insert(d).values(
                    project_id=project_id,
                    name=dataset,
                    source=source,
                    checksum=checksum,
                    n_rows=n,
                    created_at=now,
                    created_by=created_by,
                )
            ).inserted_primary_key[0]

            used = np.unique(valid.material)
            material_ids = self._material_ids(conn, [valid.materials[i] for i in used])
            lookup = np.zeros(len(valid.materials), dtype=np.int64)
            lookup[used] = material_ids
            row_material = lookup[valid.material].tolist()

            columns = {
                "material_id": row_material,
                "value": valid.value.tolist(),
                "uncertainty": [None if np.isnan(u) else u for u in valid.uncertainty.tolist()],
                "raw_value": valid.raw_value.tolist(),
                "raw_unit": valid.raw_unit.tolist(),
                "conditions": valid.conditions,
                "formula_as_ingested": valid.formula_text,
                "flag": valid.flag,
            }
            constants = {
                "property_id": property_id,
                "dataset_id": dataset_id,
                "unit": canonical_unit,
                "method": method,
                "source": source,
                "created_at": now,
                "created_by": created_by,
            }
            if progress:
                progress("write", 0, n)
            for start in range(0, n, BATCH_ROWS):
                stop = min(start + BATCH_ROWS, n)
                batch = {name: col[start:stop] for name, col in columns.items()}
                _bulk_insert(conn, meas, batch, constants=constants)
                if progress:
                    progress("write", stop, n)
        return dataset_id

    def _project_id(self, conn: sa.Connection, name: str, description: str = "") -> int:
        p = schema.projects
        row = {"name": [name], "description": [description], "created_at": [datetime.now(UTC)]}
        _bulk_insert(conn, p, row, ignore_conflicts_on="name")
        return conn.execute(sa.select(p.c.id).where(p.c.name == name)).scalar_one()

    def _property_id(
        self, conn: sa.Connection, name: str, unit: str, description: str = ""
    ) -> tuple[int, str]:
        p = schema.properties
        row = {"name": [name], "canonical_unit": [unit], "description": [description]}
        _bulk_insert(conn, p, row, ignore_conflicts_on="name")
        return tuple(
            conn.execute(sa.select(p.c.id, p.c.canonical_unit).where(p.c.name == name)).one()
        )

    def _material_ids(self, conn: sa.Connection, records: list) -> list[int]:
        """Ids of ``records`` (MaterialRecord), inserting the ones not stored yet."""
        mat = schema.materials
        # Sorted, so concurrent PostgreSQL writers lock keys in one order and cannot deadlock.
        ordered = sorted(records, key=lambda r: r.key)
        for start in range(0, len(ordered), BATCH_ROWS):
            batch = ordered[start : start + BATCH_ROWS]
            columns = {
                name: [getattr(r, name) for r in batch]
                for name in (
                    "key",
                    "formula",
                    "reduced_formula",
                    "elements",
                    "nelements",
                    "structure",
                )
            }
            _bulk_insert(conn, mat, columns, ignore_conflicts_on="key")
        ids: dict[str, int] = {}
        keys = [r.key for r in ordered]
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = keys[start : start + _KEYS_PER_QUERY]
            ids.update(
                conn.execute(sa.select(mat.c.key, mat.c.id).where(mat.c.key.in_(chunk))).all()
            )
        return [ids[r.key] for r in records]

    # --- deleting --------------------------------------------------------------------------

    def delete_measurements(self, ids: Iterable[int], *, actor: str | None = None) -> int:
        """Delete the measurements ``ids`` (the ``id`` column of :meth:`measurements`); each is
        kept whole in the audit log (:meth:`audit`), with ``actor`` (default: the OS user) and
        the time. Returns how many were deleted; raises StoreError naming ids that do not exist,
        and then deletes nothing."""
        from matforge.store import audit

        ids = sorted({int(i) for i in ids})
        with write_transaction(self._engine) as conn:
            found = {r.id for r in audit.measurement_rows(conn, ids)}
            missing = [i for i in ids if i not in found]
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
                raise StoreError(f"no measurement with id {shown}; nothing was deleted")
            return len(audit.delete_measurements(conn, ids, actor or _user()))

    def delete_dataset(self, dataset_id: int, *, actor: str | None = None) -> int:
        """Delete dataset ``dataset_id`` (the ``id`` column of :meth:`datasets`) with all its
        measurements, recorded in the audit log (:meth:`audit`). Returns the number of
        measurements deleted."""
        from matforge.store import audit

        with write_transaction(self._engine) as conn:
            entry = audit.delete_dataset(conn, int(dataset_id), actor or _user())
        if entry is None:
            raise StoreError(f"no dataset with id {dataset_id}")
        return sum(entry["detail"]["measurements_deleted"].values())

    def audit(self, project: str | None = None) -> pd.DataFrame:
        """The audit log, oldest first: ``id``, ``project``, ``at``, ``actor``, ``action``
        (``delete_measurement`` or ``delete_dataset``), ``target_id`` and ``detail`` (what was
        deleted: the whole measurement, or the dataset's provenance and counts)."""
        from matforge.store import audit

        stmt = audit.select_log(project)
        return self._dates(self._frame(stmt), "at")

    # --- reading ---------------------------------------------------------------------------

    def measurements(
        self,
        property: str | Iterable[str] | None = None,
        elements: str | Iterable[str] | None = None,
        project: str | Iterable[str] | None = None,
        method: str | Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Measurements as a DataFrame, oldest first, filtered by any of the arguments.

        ``elements`` keeps materials that contain *all* the given elements (``["Fe", "O"]`` or
        ``"Fe-O"``; other elements may be present too). Columns: ``id``, ``project``,
        ``dataset_id``, ``material_id``, ``formula`` (the material's, normalised),
        ``formula_as_ingested`` (as the row wrote it; None for rows stored before matforge
        kept it), ``reduced_formula``, ``elements`` (``"Fe-O"``), ``property``, ``value`` and
        ``uncertainty`` (in ``unit``, the property's canonical unit), ``method``,
        ``conditions`` (JSON text or None), ``source``, ``raw_value``, ``raw_unit`` (as
        received), ``flag`` (codes of the physical ranges a value stored with
        ``allow_unphysical`` breaks, else None), ``created_at`` (UTC), ``created_by``.
        """
        q = repo.MeasurementQuery(
            property=_as_list(property),
            projects=_as_list(project),
            method=_as_list(method),
            elements=None if elements is None else element_list(elements),
        )
        stmt = repo.select(q, project_names=True, conditions_as_text=True)
        df = self._frame(stmt, columns=repo.columns(project_names=True))
        df["elements"] = df["elements"].str.slice(1, -1)
        return self._dates(df, "created_at")

    def materials(
        self,
        elements: str | Iterable[str] | None = None,
        project: str | Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Materials (``id``, ``formula``, ``reduced_formula``, ``elements``, ``nelements``,
        ``has_structure``), those containing all ``elements`` and measured in ``project``."""
        q = repo.MaterialQuery(
            projects=_as_list(project),
            elements=None if elements is None else element_list(elements),
        )
        stmt = repo.select_materials(q)
        df = self._frame(stmt)
        df["elements"] = df["elements"].str.slice(1, -1)
        df["has_structure"] = df["has_structure"].astype(bool)
        return df

    def structure(self, material_id: int):
        """The pymatgen ``Structure`` stored for a material, or None if it has none."""
        mat = schema.materials
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(mat.c.structure).where(mat.c.id == material_id)).first()
        if row is None:
            raise StoreError(f"no material with id {material_id} in {self._where}")
        if row.structure is None:
            return None
        from pymatgen.core import Structure

        return Structure.from_dict(row.structure)

    def export(
        self,
        path: str | os.PathLike,
        *,
        project: str | Iterable[str] | None = None,
        property: str | Iterable[str] | None = None,
        method: str | Iterable[str] | None = None,
        elements: str | Iterable[str] | None = None,
    ) -> int:
        """Write :meth:`measurements` to a ``.csv`` (``.csv.gz``) or ``.parquet`` file.

        Its columns are those of :meth:`measurements`: ``formula_as_ingested`` next to the
        normalised ``formula`` (empty for rows stored before matforge kept it), ``flag``.

        The file is written next to its destination and renamed into place, so a reader never
        sees half a file. In a CSV, text cells a spreadsheet would run as a formula (starting
        with ``=``, ``+``, ``-``, ``@``, tab or CR) get a leading ``'``
        (:mod:`matforge.store.spreadsheet`); numbers are unchanged. Returns the number of rows
        written.
        """
        from matforge.store.spreadsheet import safe_frame

        path = Path(path)
        name = path.name.lower()
        if name.endswith(".parquet"):
            kind = "parquet"
        elif name.endswith((".csv", ".csv.gz")):
            kind = "csv"
        else:
            raise StoreError(f"cannot export to {str(path)!r}: name a .csv or .parquet file")
        df = self.measurements(property=property, elements=elements, project=project, method=method)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            if kind == "parquet":
                df.to_parquet(tmp, index=False)
            else:
                compression = "gzip" if name.endswith(".gz") else None
                # a text cell such as "=HYPERLINK(...)" must not run when a spreadsheet opens
                # it; CRLF rows (RFC 4180, as the server's export) quote a cell holding a CR
                safe_frame(df).to_csv(
                    tmp, index=False, compression=compression, lineterminator="\r\n"
                )
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(df)

    # --- helpers ---------------------------------------------------------------------------

    def _frame(self, stmt, columns: list[str] | None = None) -> pd.DataFrame:
        try:
            with self._engine.connect() as conn:
                result = conn.execute(stmt)
                keys = list(result.keys())
                rows = result.all()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot read from {self._where}: {exc.orig}") from None
        df = pd.DataFrame.from_records(rows, columns=keys)
        return df[columns] if columns else df

    @staticmethod
    def _dates(df: pd.DataFrame, column: str) -> pd.DataFrame:
        # SQLite returns naive datetimes (written as UTC), PostgreSQL aware ones: make both UTC.
        df[column] = pd.to_datetime(df[column], utc=True)
        return df

    def _repr_html_(self) -> str:
        from matforge.notebook import store_html

        return store_html(self)


def resolve_columns(
    names: list[str], mapping: dict[str, str], *, where: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Split a table's columns into fields and conditions.

    Returns ``(fields, conditions)``: ``fields`` maps ``formula``/``value``/... to a column name,
    ``conditions`` a condition name to a column name. A column is a field when ``mapping`` maps
    it to one or when its own name is one (case and surrounding spaces ignored); ``"-"`` drops
    it; any other target renames it as a condition.
    """
    names = [str(c) for c in names]
    unknown = [c for c in mapping if c not in names]
    if unknown:
        raise IngestError(
            f"mapping names column(s) {unknown} that {where} does not have; its columns are {names}"
        )
    fields: dict[str, str] = {}
    conditions: dict[str, str] = {}
    for col in names:
        target = mapping.get(col)
        if target is None:
            target = col.strip().lower() if col.strip().lower() in FIELDS else col
        if target == IGNORE:
            continue
        bucket = fields if target in FIELDS else conditions
        if target in bucket:
            raise IngestError(
                f"columns {bucket[target]!r} and {col!r} of {where} both map to {target!r}"
            )
        bucket[target] = col
    missing = [f for f in ("formula", "value") if f not in fields]
    if missing:
        hint = ", ".join(f"{{'COLUMN': '{f}'}}" for f in missing)
        raise IngestError(
            f"{where} has no {' or '.join(repr(f) for f in missing)} column (its columns are "
            f"{names}); name one with mapping={hint} (CLI: --map COLUMN=FIELD)"
        )
    return fields, conditions
