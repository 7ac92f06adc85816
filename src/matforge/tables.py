"""Read the tables users hand to matforge: CSV in any common dialect, Excel and Parquet.

>>> df = read_table("past.csv")                          # ',' ';' or tab, sniffed
>>> df = read_table("past.csv", sep=";", decimal=",")    # the European dialect, said outright
>>> df = read_table("past.xlsx", sheet="blends")         # first sheet by default

One reader for every command that takes a table (``campaign new --from/--pool``,
``campaign observe``, ``benchmark campaign --csv``, ...), so they all read a file the same way:

* ``.csv``, ``.txt`` (and a file without a suffix): the separator is sniffed among ``,``
  ``;`` and tab unless ``sep`` is given; ``.tsv``: tab. With ``;`` or tab as separator and
  ``decimal`` not given, numbers written with a decimal comma (``0,25``) are read as such when
  no cell of the sample writes one with a decimal point. What was sniffed other than the
  plain ``,``/``.`` dialect is said in ``df.attrs["assumed"]`` (a sentence, for the user).
  Text is UTF-8 (a byte-order mark is dropped); a file that is not is read as Windows-1252
  (Excel's CSV export on Windows), and that is said too.
* ``.xlsx``/``.xlsm``: through openpyxl, the first sheet unless ``sheet`` names one.
* ``.parquet``: as written.

Columns in ``text_columns`` (formulas, by default) are text: ``NaN`` (sodium nitride) and
``NA`` stay formulas instead of becoming missing values; an empty cell is still missing. A
header naming a column twice is refused (pandas would silently rename the second one).
Every failure is a :class:`TableError` naming the file.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matforge.errors import MatforgeError, TableError

__all__ = ["TEXT_SUFFIXES", "TableError", "TextDialect", "read_table", "sniff_dialect"]

TEXT_SUFFIXES = (".csv", ".txt", ".tsv", "")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: the suffixes that name a table file (a text file may also have none)
TABLE_SUFFIXES = tuple(s for s in TEXT_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES if s)

# How much of a text file the dialect is guessed from.
SNIFF_BYTES = 1 << 16
SEPARATORS = (",", ";", "\t")

_COMMA_NUMBER = re.compile(r"^[+-]?\d+,\d+(?:[eE][+-]?\d+)?$")
_POINT_NUMBER = re.compile(r"^[+-]?\d*\.\d+(?:[eE][+-]?\d+)?$")
_SEP_NAMES = {",": "','", ";": "';'", "\t": "tab"}


@dataclass(frozen=True)
class TextDialect:
    """How a text table is written: field separator, decimal mark, encoding, and a sentence
    saying what was guessed (None when nothing was, or only the plain ``,``/``.`` dialect)."""

    sep: str
    decimal: str
    encoding: str
    assumed: str | None = None


def _check_mark(value: str | None, what: str, path: Path) -> str | None:
    if value is None:
        return None
    value = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(value, value)
    if len(value) != 1:
        raise TableError(f"{path}: {what} must be one character (or 'tab'), got {value!r}")
    return value


def _sample(path: Path) -> tuple[str, str, str | None]:
    """The start of a text file, its encoding, and a note if it is not UTF-8."""
    with open(path, "rb") as f:
        raw = f.read(SNIFF_BYTES)
    if len(raw) == SNIFF_BYTES:  # do not cut a multi-byte character (or a line) in two
        raw = raw[: raw.rfind(b"\n") + 1] or raw
    try:
        return raw.decode("utf-8-sig"), "utf-8-sig", None
    except UnicodeDecodeError:
        return (
            raw.decode("cp1252", errors="replace"),
            "cp1252",
            "as Windows-1252 text (it is not UTF-8)",
        )


def _rows(text: str, sep: str) -> list[list[str]]:
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may end inside a row
    return [r for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=sep) if r]


def _guess_sep(text: str) -> str:
    """The separator that splits every sampled row into the same number (> 1) of fields,
    the most fields winning ties of consistency; ',' when none does."""
    best, best_width = ",", 1
    for sep in SEPARATORS:
        widths = {len(r) for r in _rows(text, sep)}
        if len(widths) == 1 and (w := widths.pop()) > best_width:
            best, best_width = sep, w
    return best


def _guess_decimal(text: str, sep: str) -> str:
    """',' when some sampled cell is a decimal-comma number and none a decimal-point one."""
    if sep == ",":
        return "."
    comma = point = 0
    for row in _rows(text, sep)[1:]:
        for cell in row:
            cell = cell.strip()
            comma += bool(_COMMA_NUMBER.match(cell))
            point += bool(_POINT_NUMBER.match(cell))
    return "," if comma and not point else "."


def sniff_dialect(
    path: str | Path, sep: str | None = None, decimal: str | None = None
) -> TextDialect:
    """The dialect of a text table: ``sep`` and ``decimal`` as given, the rest guessed (see
    the module docstring). Raises :class:`TableError` for a missing or empty file."""
    path = Path(path)
    sep = _check_mark(sep, "the separator", path)
    decimal = _check_mark(decimal, "the decimal mark", path)
    _check_file(path, "table")
    text, encoding, note = _sample(path)
    if not text.strip():
        raise TableError(f"{path} is empty: expected a header line")
    notes = [note] if note else []
    if sep is None:
        sep = "\t" if path.suffix.lower() == ".tsv" else _guess_sep(text)
        if sep != ",":
            notes.append(f"{_SEP_NAMES[sep]}-separated")
    if decimal is None:
        decimal = _guess_decimal(text, sep)
        if decimal == ",":
            notes.append("with decimal commas (0,5 = 0.5)")
    if sep == decimal:
        raise TableError(
            f"{path}: the separator and the decimal mark are both {sep!r}; "
            f"give --sep ';' with --decimal ','"
        )
    assumed = f"read {path.name} " + ", ".join(notes) if notes else None
    return TextDialect(sep, decimal, encoding, assumed)


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise TableError(f"{what} {path}: no such file")
    if path.is_dir():
        raise TableError(f"{what} {path} is a folder; give a file")


def _duplicates(names: Sequence) -> list:
    seen, dupes = set(), []
    for n in names:
        key = str(n).strip()
        if key in seen and key not in dupes:
            dupes.append(key)
        seen.add(key)
    return dupes


def read_table(
    path: str | Path,
    *,
    sep: str | None = None,
    decimal: str | None = None,
    sheet: str | int | None = None,
    text_columns: Sequence[str] = ("formula",),
    what: str = "table",
    as_text: bool = False,
    max_columns: int | None = None,
):
    """A table file as a DataFrame (see the module docstring for the formats and guesses).

    Parameters
    ----------
    path : the file; its suffix picks the format (.csv .tsv .txt or none, .xlsx .xlsm,
        .parquet).
    sep : field separator of a text file (``","``, ``";"``, ``"\\t"`` or ``"tab"``); default
        sniffed.
    decimal : decimal mark of a text file (``"."`` or ``","``); default ``"."`` unless the
        separator is ``;`` or tab and the numbers are written with commas.
    sheet : an Excel sheet's name (or 0-based position); default the first.
    text_columns : columns read as text, so that the formula ``NaN`` is not a missing value.
    what : what the file is, for error messages (``"results file"``).
    as_text : every cell as the text it holds (blank cells as ``""``, nothing converted): for
        callers that validate and convert cell by cell themselves.
    max_columns : refuse a workbook or Parquet file with more columns than this
        (:class:`matforge.store.validation.TooManyColumns`), from its first row or its schema,
        before the cells are read.

    Returns a DataFrame; ``df.attrs["assumed"]`` is a sentence saying what was guessed about
    a text file's dialect or encoding when it was anything but plain UTF-8 ``,``/``.``
    (else None). Raises :class:`TableError` naming the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    _check_file(path, what)
    if suffix in TEXT_SUFFIXES:
        dialect = sniff_dialect(path, sep, decimal)
        df = _read_text(path, dialect, text_columns, what, as_text)
        df.attrs["assumed"] = dialect.assumed
    elif suffix in EXCEL_SUFFIXES:
        df = _read_excel(path, sheet, text_columns, what, as_text, max_columns)
        df.attrs["assumed"] = None
    elif suffix in PARQUET_SUFFIXES:
        df = _read_parquet(path, what, as_text, max_columns)
        df.attrs["assumed"] = None
    elif suffix == ".xls":
        raise TableError(
            f"{what} {path}: the old .xls format is not read; save it as .xlsx or .csv"
        )
    else:
        raise TableError(
            f"{what} {path}: unknown file type {path.suffix!r}; use .csv, .tsv, "
            f".txt, .xlsx or .parquet"
        )
    return df


def _refuse_duplicates(names: Sequence, path: Path, what: str) -> None:
    dupes = _duplicates(names)
    if dupes:
        raise TableError(
            f"{what} {path}: column(s) {dupes} appear more than once in the "
            f"header; rename one of each"
        )


def _text_kwargs(as_text: bool) -> dict:
    return {"dtype": str, "keep_default_na": False, "na_filter": False} if as_text else {}


def _with_text_columns(df, reread, text_columns: Sequence[str]):
    """``df`` with its ``text_columns`` replaced by their cells as text (blank: missing),
    from ``reread(usecols, **kwargs)``, a second read of the same rows."""
    wanted = [c for c in dict.fromkeys(text_columns) if c in df.columns]
    if not wanted:
        return df
    text = reread(wanted, dtype=str, keep_default_na=False, na_values=[""])
    for c in wanted:
        df[c] = text[c].to_numpy()
    return df


def _read_text(path: Path, dialect: TextDialect, text_columns, what: str, as_text: bool):
    import pandas as pd

    def read(usecols=None, **kwargs):
        return pd.read_csv(
            path,
            sep=dialect.sep,
            decimal=dialect.decimal,
            encoding=dialect.encoding,
            usecols=usecols,
            **kwargs,
        )

    try:
        with open(path, newline="", encoding=dialect.encoding, errors="replace") as f:
            header = next(csv.reader(f, delimiter=dialect.sep), [])
        _refuse_duplicates(header, path, what)
        df = read(**_text_kwargs(as_text))
        if not as_text:
            df = _with_text_columns(df, read, text_columns)
    except MatforgeError:  # TableError, TooManyColumns: already say what is wrong
        raise
    except (
        OSError,
        ValueError,
        UnicodeDecodeError,
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
    ) as exc:
        raise TableError(f"cannot read {what} {path}: {_reason(exc)}") from None
    return df


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_excel(path: Path, sheet, text_columns, what: str, as_text: bool, max_columns=None):
    import zipfile

    import pandas as pd

    try:
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException
    except ImportError:  # pragma: no cover - a declared dependency
        raise TableError(f"reading {path} needs openpyxl: pip install openpyxl") from None
    try:
        book = load_workbook(path, read_only=True, data_only=True)
        try:
            names = book.sheetnames
            if sheet is None:
                sheet = names[0]
            elif isinstance(sheet, int) and not isinstance(sheet, bool):
                if not 0 <= sheet < len(names):
                    raise TableError(
                        f"{what} {path} has {len(names)} sheet(s), no sheet "
                        f"#{sheet}; its sheets are {names}"
                    )
                sheet = names[sheet]
            elif sheet not in names:
                raise TableError(f"{what} {path} has no sheet {sheet!r}; its sheets are {names}")
            first = next(book[sheet].iter_rows(max_row=1, values_only=True), ())
        finally:
            book.close()
        _check_width(
            len(_trimmed(first)), max_columns, f"{path}, sheet {sheet!r}, row 1: the header"
        )
        _refuse_duplicates([c for c in first if c is not None], path, what)

        def read(usecols=None, **kwargs):
            return pd.read_excel(
                path, sheet_name=sheet, engine="openpyxl", usecols=usecols, **kwargs
            )

        df = read(**_text_kwargs(as_text))
        if not as_text:
            df = _with_text_columns(df, read, text_columns)
    except MatforgeError:  # TableError, TooManyColumns: already say what is wrong
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, InvalidFileException) as exc:
        raise TableError(
            f"cannot read {what} {path} as an Excel workbook: {_reason(exc)}"
        ) from None
    return df


def _trimmed(row) -> tuple:
    """A spreadsheet row without the empty cells at its end."""
    row = tuple(row)
    end = len(row)
    while end and row[end - 1] is None:
        end -= 1
    return row[:end]


def _check_width(n_columns: int, max_columns: int | None, where: str) -> None:
    if max_columns is not None:
        from matforge.store.validation import check_width

        check_width(n_columns, max_columns, where=where)


def _read_parquet(path: Path, what: str, as_text: bool, max_columns=None):
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        # from the file's footer, before any column is read
        n_columns = len(pq.read_schema(path).names) if max_columns is not None else 0
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
        raise TableError(f"cannot read {what} {path} as Parquet: {_reason(exc)}") from None
    _check_width(n_columns, max_columns, f"{path}: the schema")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
        raise TableError(f"cannot read {what} {path} as Parquet: {_reason(exc)}") from None
    if as_text:
        df = df.astype(object).where(df.notna(), "").astype(str)
    return df
