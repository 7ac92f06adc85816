"""`matforge demo ...`: end-to-end runs on bundled data."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="End-to-end demonstrations on bundled real data.", no_args_is_help=True)

# (dataset, property name in the store, unit of the dataset's target column)
_FOUNDATION_SETS = [
    ("matbench_expt_gap", "band_gap", "eV"),
    ("elasticity", "bulk_modulus", "GPa"),
    ("exp_formation_enthalpy", "formation_enthalpy", "eV/atom"),
]


@app.command("foundation")
def foundation(
    out: Path = typer.Option(Path("results/demo"), help="Folder for the store and exports."),
) -> None:
    """Ingest bundled datasets into a fresh store through the CSV ingest path and summarise it.

    Exercises datasets -> CSV -> validated, unit-converted ingest -> SQLite store -> query ->
    Parquet export, the path a lab's own files take.
    """
    import pandas as pd
    from rich.console import Console

    from matforge.cli.tables import print_frame
    from matforge.datasets import dataset_info, load_dataset
    from matforge.store import Store, ingest_csv

    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    db = out / "matforge.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = Store(f"sqlite:///{db}")

    for name, prop, unit in _FOUNDATION_SETS:
        info = dataset_info(name)
        df = load_dataset(name)
        csv = out / f"{name}.csv"
        df[["formula", info.target]].rename(columns={info.target: "value"}).to_csv(csv, index=False)
        with console.status(f"ingesting {len(df):,} rows of {name} ..."):
            # rows the dataset flags as physically impossible are refused: set them aside
            report = ingest_csv(
                store, csv, project="demo", property=prop, unit=unit, skip_invalid=True
            )
        console.print(f"[green]ingested[/green] {name}: {report}")

    summary = store.measurements(project="demo")
    rows = [
        {
            "property": prop,
            "unit": str(grp["unit"].iloc[0]),
            "rows": len(grp),
            "materials": grp["formula"].nunique(),
            "min": grp["value"].min(),
            "median": grp["value"].median(),
            "max": grp["value"].max(),
        }
        for prop, grp in summary.groupby("property")
    ]
    print_frame(pd.DataFrame(rows), f"store {db}", max_rows=len(rows))

    hard = store.measurements(property="bulk_modulus", elements=["C"], project="demo")
    # Polymorphs share a reduced formula: show each compound once, with its stiffest entry.
    top = (
        hard.groupby("reduced_formula")["value"]
        .agg(bulk_modulus_GPa="max", entries="count")
        .sort_values("bulk_modulus_GPa", ascending=False)
        .head(10)
    )
    console.print("[bold]Stiffest carbon-bearing compounds in the store[/bold]")
    console.print(top.to_string(), markup=False)

    export = out / "measurements.parquet"
    summary.to_parquet(export, index=False)
    console.print(f"exported {len(summary):,} measurements to {export}")
