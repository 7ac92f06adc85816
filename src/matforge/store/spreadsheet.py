"""CSV cells a spreadsheet opens as data, never as a formula (CSV/formula injection).

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return may be run
as a formula by Excel, LibreOffice or Google Sheets (``=HYPERLINK(...)``, ``-2+3``,
``@SUM(...)``). As OWASP recommends, such a cell is written with a leading ``'``, which the
spreadsheet shows as text. Numbers are left alone: a number column, or a text cell that is
nothing but a number (``-1.5``, ``+3e-2``), is a number in the spreadsheet too.
Used by every CSV export of measurements: :meth:`matforge.store.Store.export` (and
``matforge export``) and the server's ``GET /api/v1/measurements.csv``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: first characters that make a spreadsheet read a cell as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_RISKY = re.compile(r"[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(_NUMBER)


def safe_cell(value):
    """``value`` as a CSV cell a spreadsheet will not run: ``"=1+1"`` → ``"'=1+1"``;
    numbers, ``None`` and harmless text unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        if not _PLAIN_NUMBER.fullmatch(value):
            return "'" + value
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with :func:`safe_cell` applied to its text cells (vectorised per
    column; numeric columns are not touched)."""
    import pandas as pd

    out = df.copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
            continue
        text = column.where(column.map(lambda v: isinstance(v, str)).astype(bool))
        risky = text.str.match(_RISKY.pattern, na=False) & ~text.str.fullmatch(_NUMBER, na=False)
        if risky.any():
            out[name] = column.astype(object).where(~risky, "'" + text[risky])
    return out
