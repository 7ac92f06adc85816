"""Adding measurements: JSON batches and CSV uploads, validated row by row like
``matforge ingest`` (same code: :meth:`Store.add_measurements` and :func:`ingest_csv`).

All or nothing by default: any bad row answers 400 with every bad cell and writes nothing.
A CSV file with more columns than ``max_upload_columns`` is answered 413 from its header line
alone, before its rows are read.
With ``skip_invalid`` the valid rows are written and the bad cells listed in ``rejected``. A value
outside its property's physical range is a bad row unless ``allow_unphysical``; a file or batch
already in the project answers 409 unless ``allow_duplicate``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, File, Form, UploadFile

from matforge.errors import DuplicateIngest, IngestError, MatforgeError
from matforge.server.api import (
    ERROR_RESPONSES,
    ApiError,
    CurrentUser,
    ServerState,
    State,
    decode,
    project_role,
)
from matforge.server.schemas import IngestOut, MeasurementBatch, Method, RowErrorOut
from matforge.server.tempdirs import upload_tempdir
from matforge.store.repositories import projects as projects_repo
from matforge.store.validation import FIELDS, TooManyColumns

router = APIRouter(tags=["uploads"], responses=ERROR_RESPONSES)

_COPY_CHUNK = 1 << 20
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
#: column-name prefix that marks a JSON row's conditions while it is a DataFrame
CONDITION = "condition:"


def _writable_project(state: ServerState, user, project_id: str) -> str:
    """Store name of a project the caller may add to (editor or owner)."""
    pid = decode(state, "project", project_id, "project")
    with state.engine.connect() as conn:
        project_role(conn, user, pid, "editor")
        return projects_repo.name(conn, pid)


def _row_errors(rows: list) -> list[RowErrorOut]:
    return [
        RowErrorOut(line=int(line), column=str(col), reason=str(reason))
        for line, col, reason in rows
    ]


def _refused(exc: MatforgeError, where: str | None = None, name: str = "", codec=None) -> ApiError:
    """400 for bad input, 409 for a file or batch already in the project, 413 for a table
    wider than the server takes."""
    detail = str(exc)
    if isinstance(exc, DuplicateIngest) and codec is not None:  # a public id, not a row number
        detail = exc.naming(codec.encode("dataset", exc.dataset_id))
    if where:  # never show the server's temporary paths
        detail = detail.replace(where, name)
    rows = _row_errors(exc.rows) if isinstance(exc, IngestError) and exc.rows else None
    status = 409 if isinstance(exc, DuplicateIngest) else 400
    if isinstance(exc, TooManyColumns):
        status = 413
    return ApiError(status, detail, rows)


def _structure_errors(batch: MeasurementBatch) -> tuple[list[RowErrorOut], list]:
    """Parse every row's structure with pymatgen (a dict that is not one is a row error) and
    check it is the row's formula; returns the errors and the normalised dicts."""
    if not any(r.structure is not None for r in batch.rows):
        return [], [None] * len(batch.rows)
    from pymatgen.core import Structure

    from matforge.chem import parse_formula

    errors, out = [], []
    for i, row in enumerate(batch.rows):
        if row.structure is None:
            out.append(None)
            continue
        try:
            structure = Structure.from_dict(row.structure)
        except Exception as exc:  # pymatgen raises anything from KeyError to ValueError
            errors.append(
                RowErrorOut(
                    line=i,
                    column="structure",
                    reason=f"not a pymatgen structure: {type(exc).__name__}: {exc}",
                )
            )
            out.append(None)
            continue
        try:
            comp = parse_formula(row.formula.strip())
        except MatforgeError:
            out.append(None)  # the formula's own error is reported by the store's validation
            continue
        if not structure.composition.reduced_composition.almost_equals(comp.reduced_composition):
            errors.append(
                RowErrorOut(
                    line=i,
                    column="structure",
                    reason=f"structure composition {structure.composition.reduced_formula} "
                    f"does not match formula {row.formula!r}",
                )
            )
        out.append(structure.as_dict())
    return errors, out


@router.post("/projects/{project_id}/measurements", status_code=201, response_model=IngestOut)
def add_measurements(
    project_id: str, body: MeasurementBatch, state: State, user: CurrentUser
) -> IngestOut:
    """Add a batch of measurements of one property (editors and owners). ``unit`` is the unit
    of rows without their own; values are stored in the property's canonical unit (a new
    property is registered with ``unit``). Errors name the row (0-based) and field. The same
    batch again is refused with 409 unless ``allow_duplicate``; values outside their property's
    physical range are bad rows unless ``allow_unphysical``."""
    if len(body.rows) > state.settings.max_upload_rows:
        raise ApiError(
            413,
            f"{len(body.rows)} rows; the server takes at most {state.settings.max_upload_rows} per request",
        )
    project = _writable_project(state, user, project_id)
    errors, structures = _structure_errors(body)
    reserved = {f.lower() for f in FIELDS}
    for i, row in enumerate(body.rows):
        for name in row.conditions or {}:
            if name.strip().lower() in reserved or not name.strip():
                errors.append(
                    RowErrorOut(
                        line=i,
                        column=f"conditions.{name}",
                        reason=f"condition name {name!r} is reserved or empty",
                    )
                )
    if errors:
        raise ApiError(
            400,
            f"{len({e.line for e in errors})} of {len(body.rows)} rows are invalid; nothing was written",
            errors,
        )
    # every distinct condition name becomes a column of the table that is validated
    names = {name for row in body.rows for name in row.conditions or {}}
    width = len(FIELDS) + len(names)
    if width > state.settings.max_upload_columns:
        raise ApiError(
            413,
            f"the request has {len(names):,} distinct condition names; the server takes at most "
            f"{state.settings.max_upload_columns - len(FIELDS):,} per request",
        )
    records = []
    for row, structure in zip(body.rows, structures, strict=True):
        record = {
            "formula": row.formula,
            "value": row.value,
            "uncertainty": row.uncertainty,
            "unit": row.unit,
            "structure": structure,
        }
        for name, value in (row.conditions or {}).items():
            record[f"{CONDITION}{name}"] = value
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    if frame["structure"].isna().all():
        frame = frame.drop(columns=["structure"])
    mapping = {c: c[len(CONDITION) :] for c in frame.columns if c.startswith(CONDITION)}
    try:
        written = state.store._add_frame(
            frame,
            project=project,
            property=body.property,
            unit=body.unit,
            method=body.method,
            source=body.source,
            created_by=user.name,
            dataset=body.dataset,
            mapping=mapping,
            force_new_property=False,
            allow_duplicate=body.allow_duplicate,
            allow_unphysical=body.allow_unphysical,
            where="the request",
            max_columns=None,  # checked above, with a message about condition names
        )
    except MatforgeError as exc:
        error = _refused(exc, codec=state.codec)
        for e in error.errors or []:
            if e.column.startswith(CONDITION):
                e.column = "conditions." + e.column[len(CONDITION) :]
        raise error from None
    return IngestOut(
        dataset_id=state.codec.encode("dataset", written.dataset_id),
        property=body.property,
        unit=written.canonical_unit,
        n_rows=len(body.rows),
        n_written=written.n_written,
        n_rejected=0,
        n_flagged=written.n_flagged,
        new_property=written.new_property,
        rejected=[],
    )


def _save_upload(upload: UploadFile, dest: Path, max_bytes: int, max_rows: int) -> None:
    """Copy the upload to ``dest``, refusing it (413) past ``max_bytes`` or ``max_rows`` lines."""
    size = lines = 0
    with open(dest, "wb") as out:
        while chunk := upload.file.read(_COPY_CHUNK):
            size += len(chunk)
            lines += chunk.count(b"\n")
            if size > max_bytes:
                raise ApiError(
                    413, f"the upload is larger than the server's limit of {max_bytes:,} bytes"
                )
            # The header is a line; a final line without a newline is not counted, and quoted
            # fields spanning lines count double: a conservative bound on data rows.
            if lines > max_rows + 1:
                raise ApiError(
                    413, f"the upload has more than the server's limit of {max_rows:,} rows"
                )
            out.write(chunk)


@router.post("/projects/{project_id}/uploads", status_code=201, response_model=IngestOut)
def upload_csv(
    project_id: str,
    state: State,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description="CSV with a header line.")],
    property: Annotated[str, Form(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")],
    unit: Annotated[str, Form(min_length=1, max_length=100)],
    method: Annotated[Method, Form()] = "experiment",
    source: Annotated[str | None, Form(max_length=1000)] = None,
    mapping: Annotated[
        str | None,
        Form(max_length=10_000, description='JSON object COLUMN → FIELD, e.g. {"Eg": "value"}.'),
    ] = None,
    skip_invalid: Annotated[bool, Form()] = False,
    allow_duplicate: Annotated[
        bool, Form(description="Ingest a file already ingested into the project (else 409).")
    ] = False,
    allow_unphysical: Annotated[
        bool,
        Form(description="Store values outside their property's physical range, flagged."),
    ] = False,
) -> IngestOut:
    """Upload a CSV of measurements of one property (editors and owners), validated like
    ``matforge ingest``: errors name the file's line (header = line 1) and column. A file
    already ingested into the project is refused with 409 unless ``allow_duplicate``."""
    from matforge.store import ingest_csv

    project = _writable_project(state, user, project_id)
    columns = None
    if mapping:
        try:
            columns = json.loads(mapping)
        except ValueError as exc:
            raise ApiError(400, f"mapping is not JSON: {exc}") from None
        if not isinstance(columns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in columns.items()
        ):
            raise ApiError(400, "mapping must be a JSON object of column name → field name")
    upload_name = file.filename or "upload.csv"
    name = _SAFE_NAME.sub("_", Path(upload_name).name)[:200].lstrip(".") or "upload.csv"
    # in the server's own folder, which start-up empties of what a killed server left
    with upload_tempdir(state.settings.upload_dir) as tmpdir:
        path = tmpdir / name
        _save_upload(file, path, state.settings.max_upload_bytes, state.settings.max_upload_rows)
        kwargs = dict(
            project=project,
            property=property,
            unit=unit,
            mapping=columns,
            method=method,
            source=source if source is not None else f"upload:{upload_name[:500]}",
            created_by=user.name,
            allow_duplicate=allow_duplicate,
            allow_unphysical=allow_unphysical,
            max_columns=state.settings.max_upload_columns,
        )
        rejected: list[RowErrorOut] = []
        try:
            report = ingest_csv(state.store, path, **kwargs)
        except IngestError as exc:
            if not skip_invalid or not exc.rows:
                raise _refused(exc, str(path), name, state.codec) from None
            rejected = _row_errors(exc.rows)
            try:
                report = ingest_csv(
                    state.store,
                    path,
                    skip_invalid=True,
                    rejects_path=tmpdir / ".rejects.csv",
                    **kwargs,
                )
            except MatforgeError as exc2:
                raise _refused(exc2, str(path), name, state.codec) from None
        except MatforgeError as exc:
            raise _refused(exc, str(path), name, state.codec) from None
    return IngestOut(
        dataset_id=None
        if report.dataset_id is None
        else state.codec.encode("dataset", report.dataset_id),
        property=property,
        unit=report.unit,
        n_rows=report.n_rows,
        n_written=report.n_written,
        n_rejected=report.n_rejected,
        n_flagged=report.n_flagged,
        new_property=report.new_property,
        rejected=rejected,
    )
