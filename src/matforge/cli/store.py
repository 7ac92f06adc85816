"""`matforge ingest` and `matforge export`: move measurements into and out of the store."""

from __future__ import annotations

from pathlib import Path

import typer

from matforge.cli.tables import decimal_option, sep_option, sheet_option

_DB_HELP = (
    "Store: a SQLite path or SQLAlchemy URL (default: $MATFORGE_DB or ~/.matforge/matforge.db)."
)


def _parse_map(items: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        col, sep, field = item.rpartition("=")
        if not sep or not col or not field:
            raise typer.BadParameter(f"expected COLUMN=FIELD, got {item!r}", param_hint="--map")
        mapping[col] = field
    return mapping


def ingest(
    file: Path = typer.Argument(
        ...,
        help="Table with a header line: .csv (',' ';' or tab; decimal point or comma), .tsv, "
        ".xlsx or .parquet.",
        exists=True,
        dir_okay=False,
    ),
    project: str = typer.Option(..., "--project", "-p", help="Project the measurements belong to."),
    property: str = typer.Option(..., "--property", help="Property measured, e.g. bulk_modulus."),
    unit: str = typer.Option(
        ..., "--unit", help="Unit of the values (rows with their own unit column override it)."
    ),
    map_: list[str] = typer.Option(
        [],
        "--map",
        metavar="COLUMN=FIELD",
        help="COLUMN=FIELD, repeatable. Fields: formula, value, uncertainty, unit; "
        "another name renames a condition column; '-' drops the column.",
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Write the valid rows; put the bad ones in a rejects CSV."
    ),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Rejects file (default: FILE.rejects.csv next to FILE)."
    ),
    method: str = typer.Option(
        "experiment", "--method", help="experiment, computation or prediction."
    ),
    source: str | None = typer.Option(
        None, "--source", help="Provenance, e.g. a DOI (default: the file's path)."
    ),
    allow_duplicate: bool = typer.Option(
        False, "--allow-duplicate", help="Ingest a file already ingested into this project."
    ),
    new_property: bool = typer.Option(
        False,
        "--new-property",
        help="Register --property even if a known property is spelled alike (bandgap vs band_gap).",
    ),
    allow_unphysical: bool = typer.Option(
        False,
        "--allow-unphysical",
        help="Store values outside the property's physical range (a modulus <= 0 GPa, a "
        "negative band gap), marked in their flag column.",
    ),
    max_columns: int = typer.Option(
        1000,
        "--max-columns",
        min=1,
        help="Refuse a file with more columns than this, from its header alone.",
    ),
    sep: str | None = sep_option(),
    decimal: str | None = decimal_option(),
    sheet: str | None = sheet_option(),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Validate a table file row by row and add its measurements to the store.

    All or nothing: if any row is invalid, nothing is written and every bad cell is listed
    (file, line, column). With --skip-invalid the valid rows are written. A value outside its
    property's physical range is invalid unless --allow-unphysical.
    """
    mapping = _parse_map(map_)  # a malformed --map fails before the store's imports

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from matforge.store import Store, ingest_csv

    console = Console(stderr=True)
    with Store(db) as store:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(f"{stage} {file.name}", total=total)
                bar.update(tasks[stage], completed=done)

            report = ingest_csv(
                store,
                file,
                project=project,
                property=property,
                unit=unit,
                mapping=mapping,
                skip_invalid=skip_invalid,
                rejects_path=rejects,
                method=method,
                source=source,
                progress=progress,
                allow_duplicate=allow_duplicate,
                force_new_property=new_property,
                allow_unphysical=allow_unphysical,
                sep=sep,
                decimal=decimal,
                sheet=sheet,
                max_columns=max_columns,
            )
    if report.assumed:
        typer.echo(f"note: {report.assumed} (--sep and --decimal say otherwise)", err=True)
    typer.echo(str(report))


def export(
    output: Path = typer.Option(
        ..., "--output", "-o", help="Output file: .csv, .csv.gz or .parquet."
    ),
    project: str | None = typer.Option(None, "--project", "-p", help="Only this project."),
    property: str | None = typer.Option(None, "--property", help="Only this property."),
    method: str | None = typer.Option(None, "--method", help="Only this method."),
    elements: str | None = typer.Option(
        None, "--elements", help="Only materials containing all these elements, e.g. Fe-O."
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Export measurements (values in each property's canonical unit) to CSV or Parquet.

    Each row has the material's normalised formula and, next to it, formula_as_ingested (the
    formula as the ingested row wrote it), and a flag column (the physical ranges a value
    stored with --allow-unphysical breaks).
    """
    from matforge.store import Store

    with Store(db, create=False) as store:
        n = store.export(
            output, project=project, property=property, method=method, elements=elements
        )
    typer.echo(f"exported {n:,} measurements to {output}")


def backup(
    output: Path = typer.Argument(..., help="Backup file to write, e.g. lab-2026-12-06.db."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing backup file."),
) -> None:
    """Copy a SQLite store to one file, consistently even while a server writes to it.

    PostgreSQL stores are backed up with pg_dump -Fc (see docs/security.md).
    """
    from matforge.store.backup import backup_store

    path = backup_store(db, output, force=force)
    typer.echo(f"backed up the store to {path} ({path.stat().st_size / 1e6:.1f} MB)")


def restore(
    backup_file: Path = typer.Argument(..., help="A file written by matforge backup."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    force: bool = typer.Option(False, "--force", help="Replace an existing store."),
) -> None:
    """Put a backup in place as the store (upgraded to this matforge's schema).

    Stop a server that uses the store first. An existing store is replaced only with --force.
    """
    from matforge.store.backup import restore_store

    path = restore_store(backup_file, db, force=force)
    typer.echo(f"restored {backup_file} as the store {path}")


def register(app: typer.Typer) -> None:
    """Add ``ingest``, ``export``, ``backup`` and ``restore`` to the top-level command."""
    app.command("ingest")(ingest)
    app.command("export")(export)
    app.command("backup")(backup)
    app.command("restore")(restore)
