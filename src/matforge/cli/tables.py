"""Printing a small table on the terminal, for the CLI's commands.

On a terminal: a rich table that fits its width — numbers are never wrapped or cut, text
columns wrap, and when even that does not fit, one block of ``column: value`` lines per row.
When the output is piped or redirected (or with ``matforge --plain``): tab-separated values,
every row, floats in full precision, for ``cut``, ``awk`` or ``pandas.read_csv(sep="\\t")``;
the title then goes to stderr.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection
from pathlib import Path

import typer

#: set (to anything but 0) to print tables as TSV even on a terminal, like ``matforge --plain``
PLAIN_ENV = "MATFORGE_PLAIN"
#: ``matforge --plain`` of the command being run (set by the root callback on every run)
_plain_flag = False


def set_plain(value: bool) -> None:
    """Record ``matforge --plain`` for this run."""
    global _plain_flag
    _plain_flag = bool(value)


#: narrowest a wrapped text column is counted as, before columns are dropped or rows become
#: blocks
_MIN_TEXT = 10
#: longest word a wrapped text column is made wide enough for
_MAX_WORD = 20


def plain_output() -> bool:
    """True when tables should be TSV: ``--plain`` was given or stdout is not a terminal
    (rich's detection, so ``TTY_COMPATIBLE=1`` forces a table)."""
    if _plain_flag or os.environ.get(PLAIN_ENV, "") not in ("", "0"):
        return True
    from rich.console import Console

    return not Console().is_terminal


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _is_number(df, column) -> bool:
    import pandas as pd

    dtype = df[column].dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def print_frame(
    df,
    title: str,
    max_rows: int = 30,
    *,
    right: Collection[str] = (),
    keep: Collection[str] = (),
    optional: Collection[str] = (),
    plain: bool | None = None,
) -> None:
    """Print ``df`` under ``title``: its first ``max_rows`` rows, then how many were left out.

    Floats show 4 significant digits. Numeric columns and those in ``right`` are right-aligned;
    they and the text columns in ``keep`` (names, identifiers) are never wrapped; other text
    columns wrap. Columns in ``optional`` are left out, last first, while the table is too
    wide for the terminal, and if it still is, each row becomes a block of ``column: value``
    lines. With :func:`plain_output` (or ``plain``): TSV of every row and column.
    """
    if plain_output() if plain is None else plain:
        if title:
            typer.echo(title, err=True)
        sys.stdout.write(df.to_csv(sep="\t", index=False, lineterminator="\n"))
        sys.stdout.flush()
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    shown = df.head(max_rows)
    columns = [str(c) for c in df.columns]
    cells = {str(c): [_cell(v) for v in shown[c]] for c in df.columns}
    rigid = {str(c) for c in df.columns if c in right or c in keep or _is_number(df, c)}
    widths = {c: _need(c, cells[c], c in rigid) for c in columns}
    # headers on one line where the terminal has room; broken (before "_", after " ") in
    # the columns that gain most from it until the table fits
    whole = {c: max(widths[c], len(c)) for c in columns}
    gains = sorted(columns, key=lambda c: widths[c] - whole[c])
    while gains and _width(columns, whole) > console.width:
        c = gains.pop(0)
        whole[c] = widths[c]
    widths = whole
    dropped = []
    droppable = [str(c) for c in optional if str(c) in cells]
    while _width(columns, widths) > console.width and droppable:
        dropped.append(droppable.pop())
        columns.remove(dropped[-1])
    if _width(columns, widths) > console.width:  # blocks have room for every column
        columns, dropped = [str(c) for c in df.columns], []
        rows = [[cells[c][i] for c in columns] for i in range(len(shown))]
        _print_blocks(console, title, columns, rows)
    else:
        natural = {c: max([len(c), *(len(v) for v in cells[c])]) for c in columns}
        text = [c for c in columns if c not in rigid]
        final = _fit_text({c: widths[c] for c in columns}, natural, text, console.width)
        wraps = any(final[c] < natural[c] for c in text)
        table = Table(title=title, show_lines=wraps)
        for name in columns:  # fixed widths: rich lays out exactly what was measured here
            if name in rigid:
                justify = "left" if name in keep else "right"
                header = _header(name, final[name])
                table.add_column(header, justify=justify, no_wrap=True, width=final[name])
            else:
                table.add_column(name, overflow="fold", width=final[name])
        for i in range(len(shown)):
            table.add_row(*[cells[c][i] for c in columns])
        console.print(table)
    if dropped:
        typer.echo(f"(not shown at this width: {', '.join(reversed(dropped))}; "
                   "matforge --plain ... prints every column)")  # fmt: skip
    if len(df) > max_rows:
        typer.echo(f"... {len(df) - max_rows} more rows (matforge --plain ... prints them all)")


def _parts(name: str) -> list[str]:
    """A column name cut before each ``_`` and after each space: where its header may break
    onto a new line."""
    return [p for p in re.split(r"(?=_)|(?<= )", name) if p]


def _need(name: str, values: list[str], rigid: bool) -> int:
    """Width a column is given: its widest value (wrapped text: at most a few words) and at
    least the longest piece of its name."""
    widest = max([0, *(len(v) for v in values)])
    least = max(len(p.strip()) for p in _parts(name)) if name.strip() else 0
    if not rigid:  # wrapped, but not inside a word (a longer one still folds)
        word = max([0, *(len(w) for v in values for w in v.split())])
        widest = max(min(widest, _MIN_TEXT), min(word, _MAX_WORD))
    return max(widest, least)


def _fit_text(widths: dict[str, int], natural: dict[str, int], text: list[str], total: int):
    """``widths`` with the room left on a ``total``-column terminal shared by the ``text``
    columns: each gets its natural width if all fit, else its least width plus a share of the
    rest in proportion to what it lacks."""
    out = dict(widths)
    room = total - _width(list(widths), widths)
    lack = {c: max(natural[c] - widths[c], 0) for c in text}
    if sum(lack.values()) <= room:
        return {**out, **{c: widths[c] + lack[c] for c in text}}
    shares = {c: room * lack[c] // max(sum(lack.values()), 1) for c in text}
    return {**out, **{c: widths[c] + shares[c] for c in text}}


def _width(columns: list[str], widths: dict[str, int]) -> int:
    """Terminal columns a table of ``columns`` takes (a border and a space each side of
    every column)."""
    return sum(widths[c] for c in columns) + 3 * len(columns) + 1


def _header(name: str, width: int) -> str:
    """``name`` on as many lines of at most ``width`` as it needs, broken before ``_``."""
    lines = [""]
    for part in _parts(name):
        if lines[-1] and len(lines[-1]) + len(part.rstrip()) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(line.rstrip() for line in lines)


def _print_blocks(console, title: str, columns: list[str], cells: list[list[str]]) -> None:
    """One ``column: value`` block per row, for a table too wide for the terminal."""
    from rich.markup import escape

    if title:
        console.print(f"[bold]{escape(title)}[/bold]")
    width = max(len(c) for c in columns)
    for i, row in enumerate(cells):
        console.print(f"[dim]── {i + 1} ──[/dim]")
        for name, value in zip(columns, row, strict=True):
            console.print(
                f"{name:>{width}}: {value}", markup=False, highlight=False, soft_wrap=True
            )


# -- reading the tables users hand over (--sep, --decimal, --sheet) ----------------------
def sep_option():
    return typer.Option(
        None, "--sep", help="Field separator of a text table: ',', ';' or tab (default: sniffed)."
    )


def decimal_option():
    return typer.Option(
        None,
        "--decimal",
        help="Decimal mark of a text table, '.' or ',' (default: '.', or ',' "
        "when a ';'- or tab-separated file writes its numbers so).",
    )


def sheet_option():
    return typer.Option(None, "--sheet", help="Sheet of an .xlsx workbook (default: the first).")


def read_user_table(
    path: Path,
    what: str,
    sep: str | None = None,
    decimal: str | None = None,
    sheet: str | None = None,
    text_columns=("formula",),
):
    """A table file (CSV in any common dialect, .xlsx, .parquet) read by
    :func:`matforge.tables.read_table`; what it guessed about the dialect goes to stderr."""
    from matforge.tables import read_table

    df = read_table(
        path,
        sep=sep,
        decimal=decimal,
        sheet=sheet,
        what=what,
        text_columns=tuple(dict.fromkeys(["formula", *text_columns])),
    )
    if df.attrs.get("assumed"):
        typer.echo(f"note: {df.attrs['assumed']} (--sep and --decimal say otherwise)", err=True)
    return df
