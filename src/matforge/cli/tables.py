"""Printing a small DataFrame as a table on the terminal (rich), for the CLI's commands."""

from __future__ import annotations

from collections.abc import Collection

import typer


def print_frame(df, title: str, max_rows: int = 30, *, right: Collection[str] = ()) -> None:
    """``df``'s first ``max_rows`` rows under ``title`` (floats to 4 significant digits, the
    columns in ``right`` right-aligned), then how many rows were left out."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in df.columns:
        table.add_column(str(c), justify="right" if c in right else "left", overflow="fold")
    for row in df.head(max_rows).itertuples(index=False):
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)
    if len(df) > max_rows:
        typer.echo(f"... {len(df) - max_rows} more rows")
