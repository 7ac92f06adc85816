"""`matforge datasets ...`: browse and export the bundled real datasets."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

app = typer.Typer(help="Browse and export the bundled datasets (offline).", no_args_is_help=True)


@app.command("list")
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the catalog as JSON."),
) -> None:
    """List the bundled datasets with rows, unit and source."""
    from matforge.datasets import list_datasets

    infos = list_datasets()
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(i) for i in infos], indent=2, default=str))
        return
    import pandas as pd

    from matforge.cli.tables import print_frame

    rows = [
        {
            "name": i.name,
            "rows": f"{i.rows:,}",
            "property": str(i.property),
            "unit": str(i.unit),
            "source": str(i.source).split(":", 1)[0],  # full provenance: `matforge datasets show`
        }
        for i in infos
    ]
    print_frame(
        pd.DataFrame(rows),
        f"{len(infos)} bundled datasets",
        max_rows=len(rows),
        right=("rows",),
        keep=("name",),
        optional=("source",),
    )


@app.command("show")
def show_cmd(name: str = typer.Argument(..., help="Dataset name, e.g. matbench_expt_gap.")) -> None:
    """Show one dataset's metadata, citation and first rows."""
    from rich.console import Console

    from matforge.datasets import dataset_info, load_dataset

    info = dataset_info(name)
    console = Console()
    for field in dataclasses.fields(info):
        value = getattr(info, field.name)
        if field.name == "citation":
            continue
        if isinstance(value, dict | list):
            value = json.dumps(value)
        console.print(f"[bold]{field.name}[/bold]: {value}")
    console.print("[bold]citation[/bold]:")
    console.print(info.citation, markup=False)
    console.print(load_dataset(name).head(10).to_string(), markup=False)


@app.command("export")
def export_cmd(
    name: str = typer.Argument(..., help="Dataset name."),
    out: Path = typer.Argument(..., help="Output file: .csv or .parquet."),
) -> None:
    """Write a bundled dataset to CSV or Parquet."""
    from matforge.datasets import load_dataset
    from matforge.errors import MatforgeError

    df = load_dataset(name)
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(out, index=False)
    elif suffix == ".parquet":
        df.to_parquet(out, index=False)
    else:
        raise MatforgeError(f"{out}: unknown output format {suffix!r} (use .csv or .parquet)")
    typer.echo(f"wrote {len(df):,} rows of {name} to {out}")
