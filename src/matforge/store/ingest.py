"""CSV ingest: read, validate every row, convert units, write all of it in one transaction.

Line numbers are those of the file as a text editor shows them (the header is line 1; a quoted
field that spans lines counts every line), so an error can be found and fixed in the file.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matforge.errors import IngestError
from matforge.store.store import Progress, Store, resolve_columns
from matforge.store.validation import (
    MAX_COLUMNS,
    RowError,
    check_width,
    ingest_error,
    validate_rows,
)

#: a number written with a decimal comma, the whole cell (``-0,25``, ``1,5e3``)
_COMMA_NUMBER = r"^(\s*[+-]?\d*),(\d+(?:[eE][+-]?\d+)?\s*)$"

REJECT_COLUMNS = ("line", "column", "reason")
_HEADER_CHUNK = 1 << 20  # characters read at a time while counting the header's fields


@dataclass
class IngestReport:
    """What an ingest did. ``rejects_path`` is set when ``skip_invalid`` wrote a rejects file."""

    path: Path
    project: str
    property: str
    unit: str  # canonical unit the values were stored in
    n_rows: int  # data rows in the file
    n_written: int
    n_rejected: int
    rejects_path: Path | None = None
    dataset_id: int | None = None
    new_property: bool = False
    n_flagged: int = 0  # written although outside their property's physical range
    assumed: str | None = None  # what was guessed about the file's dialect (separator, ...)

    def __str__(self) -> str:
        text = (
            f"{self.n_written:,} of {self.n_rows:,} rows of {self.path.name} written to project "
            f"'{self.project}' as {self.property} ({self.unit})"
        )
        if self.new_property:
            text += f"; new property {self.property} registered with canonical unit {self.unit}"
        if self.n_flagged:
            text += (
                f"; {self.n_flagged:,} outside the physical range of {self.property}, stored "
                "as asked and marked in their flag column"
            )
        if self.n_rejected:
            text += f"; {self.n_rejected:,} rejected"
            if self.rejects_path:
                text += f", see {self.rejects_path}"
        return text


@dataclass
class _CsvTable:
    header: list[str]
    records: list[list[str]]  # rows with the header's number of fields
    lines: np.ndarray  # first line of each record
    shape_errors: list[RowError]  # rows with too few or too many fields
    shape_rows: list[tuple[int, list[str]]]  # (line, fields) of those rows
    decimal: str = "."  # decimal mark of the numbers
    assumed: str | None = None  # what was guessed about the file's dialect, for the user


def _read_table(
    path: Path, sep=None, decimal=None, sheet=None, max_columns: int | None = MAX_COLUMNS
) -> _CsvTable:
    """The cells of a table file as text: a CSV (any of the dialects
    :func:`matforge.tables.sniff_dialect` knows) read line by line so that errors name the
    file's lines, or an .xlsx/.parquet file (line = spreadsheet row). A file with more than
    ``max_columns`` columns is refused from its header line (a workbook's first row, a Parquet
    file's schema) alone, before the body is read."""
    from matforge.tables import (
        EXCEL_SUFFIXES,
        PARQUET_SUFFIXES,
        TableError,
        read_table,
        sniff_dialect,
    )

    try:
        if path.suffix.lower() in EXCEL_SUFFIXES + PARQUET_SUFFIXES:
            df = read_table(
                path, sheet=sheet, as_text=True, what="measurements file", max_columns=max_columns
            )
            header = [str(c) for c in df.columns]
            records = df.astype(str).to_numpy().tolist()
            lines = np.arange(2, len(df) + 2, dtype=np.int64)
            return _CsvTable(header, records, lines, [], [])
        dialect = sniff_dialect(path, sep, decimal)
    except TableError as exc:
        raise IngestError(str(exc)) from None
    where = f"{path}, line 1: the header"
    if max_columns is not None:
        check_width(header_width(path, dialect.sep, dialect.encoding), max_columns, where=where)
    table = _read_csv(path, dialect.sep, dialect.encoding)
    # the count above is exact for every header a CSV writer writes; this one for the rest
    # (a stray quote inside an unquoted name)
    check_width(len(table.header), max_columns, where=where)
    table.decimal, table.assumed = dialect.decimal, dialect.assumed
    return table


def header_width(path: Path, sep: str = ",", encoding: str = "utf-8-sig") -> int:
    """Number of fields of a CSV file's header line, counted without parsing the fields (or
    reading past the header): separators outside double quotes up to the first line end
    outside them. A quote inside a quoted field is written twice (``""``), which leaves the
    count of quotes even, so the in-quotes state is the parity of the quotes seen (exact for
    fields quoted as a whole, as every CSV writer quotes them)."""
    width, quoted = 1, False
    try:
        with open(path, newline="", encoding=encoding, errors="replace") as f:
            while chunk := f.read(_HEADER_CHUNK):
                for k, part in enumerate(chunk.split('"')):
                    if k:
                        quoted = not quoted
                    if quoted:
                        continue
                    ends = [i for i in (part.find("\n"), part.find("\r")) if i >= 0]
                    if ends:
                        return width + part.count(sep, 0, min(ends))
                    width += part.count(sep)
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror}") from None
    return width


def _read_csv(path: Path, sep: str = ",", encoding: str = "utf-8-sig") -> _CsvTable:
    try:
        handle = open(path, newline="", encoding=encoding)  # noqa: SIM115
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle, delimiter=sep)
        try:
            header = next(reader)
        except StopIteration:
            raise IngestError(f"{path} is empty: expected a header line") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise IngestError(f"{path}, line 1: cannot read the header: {exc}") from None
        width = len(header)
        records, lines, shape_errors, shape_rows = [], [], [], []
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                raise IngestError(f"{path}, line {start}: cannot read the file: {exc}") from None
            if not fields or (len(fields) == 1 and not fields[0].strip() and width > 1):
                continue  # blank line
            if len(fields) == width:
                records.append(fields)
                lines.append(start)
                continue
            if len(fields) < width:
                column = header[len(fields)]
                reason = f"missing: the row has {len(fields)} fields, the header {width}"
            else:
                column = f"#{width + 1}"
                reason = f"extra field(s): the row has {len(fields)} fields, the header {width}"
            shape_errors.append(RowError(start, column, reason))
            shape_rows.append((start, fields))
    return _CsvTable(header, records, np.asarray(lines, dtype=np.int64), shape_errors, shape_rows)


def _checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_header(table: _CsvTable, path: Path) -> None:
    seen: set[str] = set()
    for i, name in enumerate(table.header):
        if name in seen:
            raise IngestError(f"{path}, line 1: column name {name!r} appears twice")
        seen.add(name)
        if not name.strip() and any(r[i].strip() for r in table.records):
            raise IngestError(f"{path}, line 1: column {i + 1} has values but no name")


def write_rejects(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]], errors: list[RowError]
) -> None:
    """CSV of the rejected rows: the original columns, then ``line``, ``column``, ``reason``.

    One row per rejected line; several bad cells of one line are joined with ``; ``.
    """
    by_line: dict[int, list[RowError]] = {}
    for e in errors:
        by_line.setdefault(e.line, []).append(e)
    fields = {line: f for line, f in rows}
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*header, *REJECT_COLUMNS])
        for line in sorted(by_line):
            original = (fields[line] + [""] * len(header))[: len(header)]
            errs = by_line[line]
            writer.writerow(
                [
                    *original,
                    line,
                    ";".join(dict.fromkeys(e.column for e in errs)),
                    "; ".join(e.reason for e in errs),
                ]
            )
    os.replace(tmp, path)


def ingest_csv(
    store: Store,
    path: str | os.PathLike,
    project: str,
    property: str,
    unit: str,
    mapping: dict[str, str] | None = None,
    skip_invalid: bool = False,
    rejects_path: str | os.PathLike | None = None,
    *,
    method: str = "experiment",
    source: str | None = None,
    created_by: str | None = None,
    progress: Progress | None = None,
    allow_duplicate: bool = False,
    force_new_property: bool = False,
    allow_unphysical: bool = False,
    sep: str | None = None,
    decimal: str | None = None,
    sheet: str | int | None = None,
    max_columns: int | None = MAX_COLUMNS,
) -> IngestReport:
    """Ingest a table file (CSV, .xlsx, .parquet) of measurements of one property into ``store``.

    The file needs a header line and columns for the formula and the value (named ``formula``
    and ``value``, or mapped: ``mapping={"Composition": "formula", "K (MPa)": "value"}``).
    Optional ``uncertainty`` and ``unit`` columns; every other column is a condition (mapped
    names rename it, ``"-"`` drops it). ``unit`` is the unit of values whose row has no unit
    cell; values are stored converted to the property's canonical unit.

    Every row is checked (formula parses, value a finite number, unit known to pint and
    compatible with the property, value inside the property's physical range: see
    :mod:`matforge.store.ranges`; ``allow_unphysical=True`` stores such a value with the range's
    code in its ``flag``). Each row keeps its formula as written (``formula_as_ingested``).

    By default the ingest is all or nothing: if any row is bad, :class:`IngestError` names
    every bad cell by file, line (the header is line 1) and column, and the store is left
    unchanged. With ``skip_invalid=True`` the valid rows are written and
    the bad ones go to ``rejects_path`` (default ``FILE.rejects.csv`` next to the file): their
    original columns plus ``line``, ``column`` and ``reason``.

    A CSV file's separator (``,`` ``;`` or tab) and decimal mark are sniffed unless ``sep`` and
    ``decimal`` are given (see :func:`matforge.tables.sniff_dialect`; what was guessed is in the
    report's ``assumed``); an .xlsx file is read from its first sheet unless ``sheet`` names one,
    and its lines are the spreadsheet's rows.

    ``progress(stage, done, total)`` is called as the ingest advances (stages ``"validate"``
    and ``"write"``).

    A file whose exact bytes were already ingested into ``project`` is refused (its rows would
    be stored twice) unless ``allow_duplicate=True``. A new property whose name is a known
    one's spelled differently (``bandgap`` for ``band_gap``) is refused unless
    ``force_new_property=True``.

    A file of more than ``max_columns`` columns (default
    :data:`~matforge.store.validation.MAX_COLUMNS`; None: no limit) is refused with
    :class:`~matforge.store.validation.TooManyColumns` naming both numbers; a CSV file is
    refused from its header line, before its rows are read.
    """
    path = Path(path)
    table = _read_table(path, sep, decimal, sheet, max_columns)
    _check_header(table, path)
    columns, conditions = resolve_columns(table.header, mapping or {}, where=str(path))
    canonical, new_property = store._prepare_write(
        project, property, unit, method, force_new_property=force_new_property
    )
    # after the checks of the request itself, as add_measurements does: a bad mapping is
    # reported as such, also for a file already ingested
    checksum = _checksum(path) if path.is_file() else None
    if checksum is not None and not allow_duplicate:
        store._refuse_duplicate(project, checksum, f"{path}: the same file")
    n_rows = len(table.records) + len(table.shape_rows)
    if progress:
        progress("validate", 0, n_rows)
    frame = pd.DataFrame(
        {name: [r[i] for r in table.records] for i, name in enumerate(table.header)},
        dtype=object,
        columns=table.header,
    )
    if table.decimal == ",":  # 0,25 -> 0.25 in every cell that is such a number
        frame = frame.replace(_COMMA_NUMBER, r"\1.\2", regex=True)
    valid, errors = validate_rows(
        frame,
        columns,
        conditions=conditions,
        property=property,
        canonical_unit=canonical,
        default_unit=unit,
        lines=table.lines,
        allow_unphysical=allow_unphysical,
    )
    errors = sorted(table.shape_errors + errors, key=lambda e: e.line)
    if progress:
        progress("validate", n_rows, n_rows)

    report = IngestReport(
        path=path,
        project=project,
        property=property,
        unit=canonical,
        n_rows=n_rows,
        n_written=0,
        n_rejected=len({e.line for e in errors}),
        new_property=new_property,
        assumed=table.assumed,
    )
    if errors and not skip_invalid:
        raise ingest_error(errors, n_rows, where=str(path))
    if skip_invalid:
        report.rejects_path = (
            Path(rejects_path) if rejects_path else path.with_suffix(".rejects.csv")
        )
        bad_lines = {e.line for e in errors}
        rows = [
            (int(ln), r)
            for ln, r in zip(table.lines, table.records, strict=True)
            if ln in bad_lines
        ]
        write_rejects(report.rejects_path, table.header, rows + table.shape_rows, errors)
    if len(valid):
        report.dataset_id = store._insert(
            valid,
            project=project,
            property=property,
            canonical_unit=canonical,
            method=method,
            source=source if source is not None else str(path.resolve()),
            created_by=created_by,
            dataset=path.name,
            checksum=checksum,
            progress=progress,
        )
        report.n_written = len(valid)
        report.n_flagged = valid.n_flagged
    return report
