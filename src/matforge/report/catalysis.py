"""Offline HTML report of a catalyst screen: volcano, ranked candidates, parity plots.

Figures (plotly, the plotly.js bundle inlined once, so the file opens offline):

* the volcano (activity axis of :mod:`matforge.catalysis.volcano` against the CO binding
  energy), with the optimal window shaded, the training surfaces at their DFT energies and the
  top candidates at their predicted energies with ±1.96 std error bars, coloured by whether they
  are inside the model's applicability domain;
* the parity plot of the model's out-of-fold predictions against the DFT energies of the
  training data (the only reference every screen has);
* the parity plot of the model against the oracle for the verified candidates, when an
  oracle ran (otherwise the report says it did not).
"""

from __future__ import annotations

import html
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

__all__ = ["catalysis_report_html", "write_catalysis_report"]


def _fig_html(figs) -> str:
    return "".join(
        f'<div class="figure">{f.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})}</div>'
        for i, f in enumerate(figs)
    )


def catalysis_report_html(ranked, *, training=None, oof=None, oracle=None, top: int = 20,
                          title: str = "Catalyst screen", notes: dict | None = None) -> str:
    """HTML of a screen: ``ranked`` from :func:`~matforge.catalysis.screen_surfaces`,
    ``training`` the training table (``surface``, ``binding_energy_of_adsorbed``), ``oof`` from
    :func:`~matforge.catalysis.model.out_of_fold`, ``oracle`` a table with ``surface``,
    ``mean``, ``std``, ``oracle`` (eV) for verified candidates."""
    import plotly.graph_objects as go

    from matforge.catalysis.volcano import get_volcano

    vol = get_volcano(ranked.attrs.get("volcano", "co2r"))
    low, high = ranked.attrs.get("window", vol.window)
    best = ranked.head(top)
    lo = min(-2.2, float(best["mean"].min()) - 0.3)
    hi = max(0.2, float(best["mean"].max()) + 0.3)
    grid = np.linspace(lo, hi, 400)
    volcano = go.Figure()
    volcano.add_vrect(x0=low, x1=high, fillcolor="#2ca02c", opacity=0.12, line_width=0,
                      annotation_text="optimal window", annotation_position="top left")
    volcano.add_trace(go.Scatter(x=grid, y=vol.activity(grid), mode="lines", name="volcano",
                                 line={"color": "#444"}))
    if training is not None:
        e = training["binding_energy_of_adsorbed"].to_numpy(dtype=float)
        volcano.add_trace(go.Scatter(x=e, y=vol.activity(e), mode="markers", name="training (DFT)",
                                     marker={"color": "#bbb", "size": 6},
                                     text=training["surface"], hoverinfo="text+x"))
    for flag, colour, label in ((True, "#1f77b4", "candidates, in domain"),
                                (False, "#d62728", "candidates, extrapolated")):
        sub = best[best["in_domain"] == flag]
        if len(sub):
            volcano.add_trace(go.Scatter(
                x=sub["mean"], y=vol.activity(sub["mean"]), mode="markers", name=label,
                marker={"color": colour, "size": 9},
                error_x={"type": "data", "array": 1.96 * sub["std"], "visible": True},
                text=[f"{s}: P(window)={p:.2f}" for s, p in zip(sub["surface"], sub["probability"], strict=True)],
                hoverinfo="text+x"))
    volcano.update_layout(title=f"{vol.name.upper()} volcano: top {len(best)} candidates (±1.96 std)",
                          xaxis_title=vol.descriptor, yaxis_title=vol.activity_label,
                          height=520)
    figs = [volcano]
    for df, ycol, name in ((oof, "dft", "out-of-fold model vs DFT (training data)"),
                           (oracle, "oracle", "model vs oracle (verified candidates)")):
        if df is None or not len(df):
            continue
        rmse = float(np.sqrt(np.mean((df["mean"] - df[ycol]) ** 2)))
        span = [float(min(df[ycol].min(), df["mean"].min())) - 0.1,
                float(max(df[ycol].max(), df["mean"].max())) + 0.1]
        f = go.Figure()
        f.add_trace(go.Scatter(x=span, y=span, mode="lines", line={"dash": "dash", "color": "#888"},
                               name="y = x"))
        f.add_trace(go.Scatter(x=df[ycol], y=df["mean"], mode="markers", name="surfaces",
                               error_y={"type": "data", "array": 1.96 * df["std"], "visible": True},
                               text=df["surface"], hoverinfo="text+x+y"))
        f.update_layout(title=f"Parity, {name}: RMSE {rmse:.3f} eV", height=480,
                        xaxis_title=f"{ycol} energy (eV)", yaxis_title="model (eV)")
        figs.append(f)
    cols = ["rank", "surface", "surface_type", "mean", "std", "probability", "distance",
            "in_domain", "dft_energy"]
    head = "".join(f"<th>{c}</th>" for c in cols)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r[c])}</td>" for c in cols) + "</tr>"
        for _, r in best.iterrows()
    )
    note_rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                        for k, v in (notes or {}).items())
    oracle_note = "" if oracle is not None and len(oracle) else (
        "<p class='note'>No oracle verification in this report (none requested or no oracle "
        "package installed); candidates are model predictions.</p>")
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>matforge: {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 10px 3px 0; font-size: 0.9em; text-align: left; }}
.note {{ color: #666; font-size: 0.85em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">Window {low:g} to {high:g} eV; {len(ranked)} surfaces screened; ranking by the
probability that the predicted energy lies in the window. "in_domain" is false for a site
metal absent from the training data or a descriptor vector far from it: such predictions are
extrapolations and their std includes the leave-one-metal-out error. Source of the volcano:
{html.escape(vol.source)}. Generated {generated} by matforge.</p>
<table>{note_rows}</table>
{oracle_note}
<h2>Top {len(best)} candidates</h2><table><tr>{head}</tr>{rows}</table>
{_fig_html(figs)}
</body></html>
"""


def write_catalysis_report(path: str | os.PathLike, ranked, **kwargs) -> Path:
    """Write :func:`catalysis_report_html` to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(catalysis_report_html(ranked, **kwargs), "utf-8")
    return path


def _fmt(v) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, float | np.floating):
        return "—" if not np.isfinite(v) else f"{v:.3f}"
    return html.escape(str(v))
