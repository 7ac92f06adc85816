"""`matforge ingest-structures` and `matforge export-structures`: crystal structures in and out
of the store."""

from __future__ import annotations

from pathlib import Path

import typer

_DB_HELP = (
    "Store: a SQLite path or SQLAlchemy URL (default: $MATFORGE_DB or ~/.matforge/matforge.db)."
)
_METHODS = "experiment, refinement, dft, ml_relaxation or xrd_match"


def ingest_structures(
    source: Path = typer.Argument(
        ...,
        help="A folder (read recursively), an archive (.zip, .tar, .tar.gz) or one file of "
        "structures: .cif, POSCAR/CONTCAR or .vasp, .xyz/.extxyz, ASE .db, pymatgen .json.",
        exists=True,
    ),
    project: str = typer.Option(..., "--project", "-p", help="Project the structures belong to."),
    method: str = typer.Option(
        "experiment", "--method", help=f"How they were obtained: {_METHODS}."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Store the valid structures; list the files refused."
    ),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="With --skip-invalid: also write the refused files to this CSV."
    ),
    keep_duplicates: bool = typer.Option(
        False,
        "--keep-duplicates",
        help="Store structures that match one already in the input or the project.",
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Read structure files, check each and add them to the store with their space group.

    All or nothing: if any file is unreadable or not a valid crystal structure, nothing is
    written and every bad file is named with the reason. With --skip-invalid the valid ones
    are written. A structure the same as another (pymatgen's StructureMatcher) is stored once.
    """
    from matforge.store import Store
    from matforge.store.structures import ingest_structures as ingest
    from matforge.store.structures import write_rejects

    with Store(db) as store:
        report = ingest(
            store,
            source,
            project,
            method=method,
            skip_invalid=skip_invalid,
            dedupe=not keep_duplicates,
        )
    for name, twin in report.duplicates:
        typer.echo(f"duplicate: {name} is the same structure as {twin}", err=True)
    for error in report.errors:
        typer.echo(f"refused: {error}", err=True)
    if rejects is not None and report.errors:
        write_rejects(rejects, report.errors)
    typer.echo(str(report))


def export_structures(
    output: Path = typer.Argument(..., help="New (or empty) folder to write the files into."),
    fmt: str = typer.Option("cif", "--format", "-f", help="cif, poscar or extxyz."),
    project: str | None = typer.Option(None, "--project", "-p", help="Only this project."),
    elements: str | None = typer.Option(
        None, "--elements", help="Only structures containing all these elements, e.g. Zn-O."
    ),
    spacegroup: int | None = typer.Option(
        None, "--spacegroup", help="Only this space group (International number, 1-230)."
    ),
    method: str | None = typer.Option(None, "--method", help=f"Only this method: {_METHODS}."),
    with_measurements: bool = typer.Option(
        False,
        "--with-measurements",
        help="Also write measurements.csv: every measurement of the structures' materials.",
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Write stored structures as CIF, POSCAR or extended XYZ files, one per structure, with
    an index structures.csv (id, file, formula, space group, method, source, ...)."""
    from matforge.store import Store
    from matforge.store.structures import export_structures as export

    with Store(db, create=False) as store:
        report = export(
            store,
            output,
            fmt.lower(),
            project=project,
            elements=elements,
            spacegroup=spacegroup,
            method=method,
            with_measurements=with_measurements,
        )
    typer.echo(str(report))


def register(app: typer.Typer) -> None:
    """Add ``ingest-structures`` and ``export-structures`` to the top-level command."""
    app.command("ingest-structures")(ingest_structures)
    app.command("export-structures")(export_structures)
