"""What matforge's objects look like in Jupyter: the HTML of their ``_repr_html_``.

One function per kind of object (:func:`campaign_html`, :func:`store_html`,
:func:`pattern_html`, :func:`identification_html`); the classes call them in a two-line
``_repr_html_``. Plain strings and a small inline SVG, no dependency, nothing loaded from the
network; every text that comes from a user or a file (names, sources, URLs, formulas, column
values) passes through :func:`html.escape`.
"""

from __future__ import annotations

import math
from html import escape

#: most rows a table shows before "… and N more"
MAX_ROWS = 20


def _text(value) -> str:
    """A cell: numbers in 4 significant digits, None and NaN as blank, everything escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _table(header, rows, *, max_rows: int = MAX_ROWS) -> str:
    """An HTML table of ``rows`` (sequences of cells) under ``header`` (column names)."""
    rows = list(rows)
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_text(v)}</td>" for v in row) + "</tr>" for row in rows[:max_rows]
    )
    more = (
        f"<tr><td colspan='{len(header)}'>… and {len(rows) - max_rows} more</td></tr>"
        if len(rows) > max_rows
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}{more}</tbody></table>"


def _fields(pairs) -> str:
    """A two-column table of (label, value) pairs; values already HTML."""
    rows = "".join(
        f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{v}</td></tr>"
        for k, v in pairs
    )
    return f"<table>{rows}</table>"


def _card(title: str, *parts: str) -> str:
    return f"<div class='matforge'><strong>{title}</strong>{''.join(parts)}</div>"


def sparkline(x, y, *, width: int = 320, height: int = 60) -> str:
    """An inline SVG line of ``y`` against ``x`` (``width`` × ``height`` pixels). Long series
    are reduced to one maximum per pixel column, so narrow peaks stay visible."""
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        return ""
    if len(x) > width:
        bins = np.minimum(((x - x[0]) / np.ptp(x) * width).astype(int), width - 1)
        starts = np.flatnonzero(np.r_[True, np.diff(bins) > 0])
        y = np.maximum.reduceat(y, starts)
        x = x[starts]
    span = np.ptp(y) or 1.0
    px = (x - x[0]) / np.ptp(x) * (width - 2) + 1
    py = height - 1 - (y - y.min()) / span * (height - 2)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'><polyline fill='none' stroke='#1f77b4' "
        f"stroke-width='1' points='{points}'/></svg>"
    )


# ---------------------------------------------------------------------------------------
# the objects
# ---------------------------------------------------------------------------------------

_WAVELENGTH_FROM = {
    "header": "from the file's header",
    "argument": "given when read",
    "usedWavelength/kAlpha1": "from the file (kAlpha1)",
}


def pattern_html(pattern) -> str:
    """A :class:`~matforge.xrd.io.Pattern`: source, points, 2θ range, wavelength and where it
    came from, and a sparkline of the intensities."""
    meta = pattern.meta or {}
    if meta.get("wavelength_assumed"):
        origin = "<em>assumed</em> (the file states none)"
    else:
        origin = _WAVELENGTH_FROM.get(meta.get("wavelength_from"), "as constructed")
    n = len(pattern)
    rng = f"{pattern.two_theta[0]:.3f}–{pattern.two_theta[-1]:.3f}°" if n else "empty"
    fields = [
        ("source", escape(pattern.source) or "<em>none</em>"),
        ("points", f"{n}"),
        ("2θ", rng),
        ("wavelength", f"{pattern.wavelength:.5g} Å, {origin}"),
    ]
    if meta.get("axis_from") in ("header", "argument", "assumed"):
        axis = "Q (Å⁻¹), converted to 2θ" if meta.get("axis") == "q" else "2θ"
        fields.append(("first column", f"{axis} ({escape(meta['axis_from'])})"))
    return _card("Pattern", _fields(fields), sparkline(pattern.two_theta, pattern.intensity))


def identification_html(ident) -> str:
    """An :class:`~matforge.xrd.identify.Identification`: the best class per head with its
    probability (uncertain heads marked), the warnings, and the top candidates."""
    from matforge.xrd.identify import HEADS

    best = []
    for head, cands in ident.candidates.items():
        p = f" ({cands[0].probability:.2f})" if cands else ""
        if ident.is_uncertain(head):
            top = f", best guess {escape(cands[0].name)}" if cands else ""
            verdict = f"<span style='color:#b36b00'>uncertain</span>{top}{p}"
        else:
            verdict = f"<span style='color:#2a7a2a'>{escape(cands[0].name)}</span>{p}"
        best.append((HEADS.get(head, head), verdict))
    parts = [_fields(best)]
    if ident.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in ident.warnings)
        parts.append(f"<div>warnings:<ul>{items}</ul></div>")
    for head, cands in ident.candidates.items():
        rows = [(rank, ident.label(head, c.name), f"{c.probability:.3f}")
                for rank, c in enumerate(cands, 1)]  # fmt: skip
        parts.append(f"<div>{escape(HEADS.get(head, head))}</div>")
        parts.append(_table(["#", "candidate", "probability"], rows))
    source = escape(ident.source) if ident.source else "a pattern"
    title = f"Identification of {source} (threshold {ident.threshold:.2f})"
    return _card(title, *parts)


def campaign_html(status: dict) -> str:
    """A :class:`~matforge.design.campaign.Campaign` from its :meth:`status`: objectives and
    constraints, the space, the counts of observations and pending suggestions, and the best
    result so far."""
    obs = status["observations"]
    fields = [
        ("objectives", escape(", ".join(status["objectives"]))),
        ("constraints", escape(", ".join(status["constraints"])) or "<em>none</em>"),
        ("space", escape(status["space"])),
        ("observed", f"{obs} ({status['initial']} initial, {status['answered']} answering "
                     f"suggestions, {status['unplanned']} unplanned)"),
        ("pending", f"{status['pending']} suggestion(s) awaiting results"),
        ("batches", f"{status['batches']}"),
    ]  # fmt: skip
    parts = [_fields(fields)]
    if status["best"]:
        columns = list(status["best"][0])
        rows = [[r.get(c) for c in columns] for r in status["best"]]
        parts += ["<div>best so far</div>", _table(columns, rows)]
    else:
        parts.append("<div><em>no result yet</em></div>")
    return _card(f"Campaign {escape(repr(status['name']))}", *parts)


def store_html(store) -> str:
    """A :class:`~matforge.store.Store`: its URL with the password hidden, how many
    materials, measurements, properties, datasets and projects it holds, and the properties
    with their units."""
    from matforge.store.repositories import display_url

    url = display_url(store.url)
    projects = store.projects()
    properties = store.properties()
    counts = [
        ("materials", len(store.materials())),
        ("measurements", int(projects["n_measurements"].sum()) if len(projects) else 0),
        ("properties", len(properties)),
        ("datasets", int(projects["n_datasets"].sum()) if len(projects) else 0),
        ("projects", len(projects)),
    ]
    parts = [_fields([("url", escape(url))] + [(k, f"{v}") for k, v in counts])]
    if len(properties):  # the reference list is long: folded
        rows = properties[["name", "canonical_unit", "description"]].itertuples(index=False)
        table = _table(["property", "unit", "description"], rows, max_rows=len(properties))
        parts.append(f"<details><summary>properties and their units</summary>{table}</details>")
    return _card("Store", *parts)
