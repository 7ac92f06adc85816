"""The superhard-screen report: one self-contained HTML page (plotly.js inlined, works offline).

Sections: data and models; parity and calibration of both modulus models (out-of-fold);
validation on held-out hard compounds; hardness against bulk modulus for the whole pool (a
random background sample, top candidates and held-out compounds highlighted); the materials
map; element frequencies among the top candidates; the top-50 table (mean ± std, distance to
the training data).
"""

from __future__ import annotations

import html
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

__all__ = ["superhard_report_html", "write_superhard_report"]

_BACKGROUND = 4000  # pool points drawn behind the top candidates (file size)


def _parity(oof: dict, name: str):
    import plotly.graph_objects as go

    y, m, s = 10 ** oof["y"], 10 ** oof["mean"], oof["std"]
    lo, hi = float(min(y.min(), m.min())), float(max(y.max(), m.max()))
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        x=y, y=m, mode="markers", text=oof.get("formula"), name="out-of-fold",
        marker={"size": 4, "opacity": 0.5, "color": s, "colorscale": "Plasma",
                "colorbar": {"title": "std (log10)"}},
        hovertemplate="%{text}<br>DFT %{x:.4g} GPa<br>predicted %{y:.4g} GPa<extra></extra>",
    ))  # fmt: skip
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                             line={"color": "black", "dash": "dash"}))
    fig.update_layout(title=f"{name}: out-of-fold prediction vs DFT", xaxis_type="log",
                      yaxis_type="log", xaxis_title=f"DFT {name} (GPa)",
                      yaxis_title=f"predicted {name} (GPa)", height=480, width=560)
    return fig


def _calibration(oofs: dict):
    import plotly.graph_objects as go

    from matforge.models.calibration import coverage_curve

    fig = go.Figure()
    for name, oof in oofs.items():
        e, o = coverage_curve(oof["y"], oof["mean"], oof["std"])
        fig.add_trace(go.Scatter(x=e, y=o, mode="lines", name=name))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="ideal",
                             line={"color": "black", "dash": "dash"}))
    fig.update_layout(title="Calibration: observed vs expected coverage (out-of-fold)",
                      xaxis_title="expected coverage", yaxis_title="observed coverage",
                      height=480, width=560)
    return fig


def _scatter(result):
    import plotly.graph_objects as go

    ranked = result.results
    top = result.top.head(50)
    bg = ranked.sample(min(len(ranked), _BACKGROUND), random_state=0)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        x=bg["bulk_modulus"], y=bg["hardness_vickers"], mode="markers", text=bg["formula"],
        name=f"pool (random {len(bg):,} of {len(ranked):,})",
        marker={"size": 4, "color": "lightgrey"},
        hovertemplate="%{text}<br>B %{x:.0f} GPa<br>Hv %{y:.1f} GPa<extra></extra>",
    ))  # fmt: skip
    held = ranked[ranked["known"]]
    fig.add_trace(go.Scattergl(
        x=held["bulk_modulus"], y=held["hardness_vickers"], mode="markers",
        text=held["formula"], name="held-out hard compounds (validation)",
        marker={"size": 7, "symbol": "diamond", "color": "royalblue"},
        hovertemplate="%{text}<br>B %{x:.0f} GPa<br>Hv %{y:.1f} GPa<extra>held out</extra>",
    ))  # fmt: skip
    fig.add_trace(go.Scattergl(
        x=top["bulk_modulus"], y=top["hardness_vickers"], mode="markers", text=top["formula"],
        name="top 50 candidates",
        error_y={"type": "data", "array": top["hardness_vickers_std"], "visible": True,
                 "thickness": 0.6, "color": "rgba(220,20,60,0.4)"},
        marker={"size": 9, "symbol": "star", "color": "crimson"},
        hovertemplate="%{text}<br>B %{x:.0f} GPa<br>Hv %{y:.1f} GPa<extra>top</extra>",
    ))  # fmt: skip
    fig.update_layout(title="Predicted Vickers hardness (Chen) vs bulk modulus",
                      xaxis_title="predicted bulk modulus (GPa)",
                      yaxis_title="predicted Vickers hardness (GPa)", height=560)
    return fig


def _elements(top, n: int = 50):
    import plotly.graph_objects as go

    from matforge.chem.batch import CompositionBatch
    from matforge.chem.elements import SYMBOLS

    batch = CompositionBatch.from_formulas(top["formula"].head(n).tolist(), errors="collect")
    counts = Counter(SYMBOLS[c] for c in batch.amounts.indices)
    items = counts.most_common(25)
    fig = go.Figure(go.Bar(x=[k for k, _ in items], y=[v for _, v in items]))
    fig.update_layout(title=f"Elements among the top {n} candidates",
                      xaxis_title="element", yaxis_title="candidates containing it", height=380)
    return fig


def _table(top, n: int = 50) -> str:
    rows = []
    for _, r in top.head(n).iterrows():
        rows.append(
            "<tr>"
            f"<td>{int(r['rank_in_pool'])}</td><td>{html.escape(str(r['formula']))}</td>"
            f"<td>{r['hardness_vickers']:.1f} ± {r['hardness_vickers_std']:.1f}</td>"
            f"<td>{r['hardness_tian']:.1f} ± {r['hardness_tian_std']:.1f}</td>"
            f"<td>{r['bulk_modulus']:.0f} ± {r['bulk_modulus_std']:.0f}</td>"
            f"<td>{r['shear_modulus']:.0f} ± {r['shear_modulus_std']:.0f}</td>"
            f"<td>{r['pugh_ratio']:.2f}</td><td>{r['distance']:.2f}</td><td>{int(r['cluster'])}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>#</th><th>formula</th><th>Hv Chen (GPa)</th><th>Hv Tian (GPa)</th>"
        "<th>B (GPa)</th><th>G (GPa)</th><th>B/G</th><th>distance</th><th>cluster</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _holdout_table(holdout, n: int = 25) -> str:
    h = holdout.sort_values("hardness_vickers", ascending=False).head(n)
    rows = []
    for _, r in h.iterrows():
        rank = "" if not np.isfinite(r["rank"]) else str(int(r["rank"]))
        pct = "" if not np.isfinite(r["percentile"]) else f"{r['percentile']:.1f}%"
        rows.append(
            f"<tr><td>{html.escape(str(r['formula']))}</td><td>{r['hardness_vickers']:.1f}</td>"
            f"<td>{r['pred_hardness_vickers']:.1f} ± {r['pred_hardness_vickers_std']:.1f}</td>"
            f"<td>{rank}</td><td>{pct}</td></tr>"
        )
    rows = "".join(rows)
    head = ("<tr><th>formula</th><th>DFT Hv (GPa)</th><th>predicted Hv (GPa)</th>"
            "<th>rank</th><th>top %</th></tr>")  # fmt: skip
    return f"<table>{head}{rows}</table>"


def superhard_report_html(result) -> str:
    """The report of a :class:`~matforge.screen.superhard.SuperhardResult` as HTML."""
    from matforge.report.map import map_figure

    figs = [
        ("Bulk modulus model", _parity(result.oof["bulk_modulus"], "bulk modulus")),
        ("Shear modulus model", _parity(result.oof["shear_modulus"], "shear modulus")),
        ("Calibration", _calibration(result.oof)),
        ("Hardness vs bulk modulus", _scatter(result)),
        ("Materials map", map_figure(
            result.train_map, result.top.head(50).assign(rank=lambda d: d["rank_in_pool"]),
            title="Materials map: training compounds (HDBSCAN clusters) and top 50 candidates",
        )),  # fmt: skip
        ("Elements", _elements(result.top)),
    ]
    parts = []
    for i, (_, fig) in enumerate(figs):
        body = fig.to_html(
            full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False}
        )
        parts.append(f'<div class="fig">{body}</div>')
    m, rec, s = result.metrics, result.recall, result.summary
    metric_rows = "".join(
        f"<tr><td>{k}</td><td>{v['rows']:,}</td><td>{v['mae_log10']:.3f}</td>"
        f"<td>{v['mae_gpa']:.1f}</td><td>{v['r2_log10']:.3f}</td><td>{v['coverage68']:.2f}</td>"
        f"<td>{v['coverage95']:.2f}</td><td>{v['miscalibration_area']:.3f}</td></tr>"
        for k, v in m.items()
    )
    prov_rows = []
    for prop, p in result.provenance.items():
        sources = ", ".join(f"{x['dataset']} ({x['used']:,} rows)" for x in p["sources"])
        prov_rows.append(
            f"<tr><td>{prop}</td><td>{sources}</td><td>{p['dropped_flagged']}</td>"
            f"<td>{p['rows_before_merge']:,}</td><td>{p['compositions']:,}</td></tr>"
        )
    prov_rows = "".join(prov_rows)
    st = result.settings
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>matforge: superhard materials screen</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.88em; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 10px 3px 0; text-align: left; }}
.note {{ color: #555; font-size: 0.9em; }} .fig {{ display: inline-block; vertical-align: top; }}
</style></head><body>
<h1>Superhard materials screen</h1>
<p class="note">Generated {generated} by <code>matforge demo superhard{' --fast' if st and st.fast else ''}</code>.
Hardness is the Chen et al. (2011) model, Hv = 2(k²G)<sup>0.585</sup> − 3 with k = G/B, computed by
Monte Carlo ({s['monte_carlo']['samples']} samples, correlation of the two models' log errors
{s.get('error_correlation', 0):.2f}) from the predicted distributions of B and G; candidates whose
moduli imply a negative Poisson's ratio are outside the model and not ranked. Predictions are
from composition only (no structure): read them as "which chemistries are worth a DFT or
experimental check", not as measured hardness. Timings: {timing}.</p>
<h2>Data and models</h2>
<table><tr><th>property</th><th>sources</th><th>flagged rows dropped</th><th>rows</th>
<th>compositions (merged)</th></tr>{prov_rows}</table>
<table><tr><th>model (BoostedEnsembleUQ, log10 GPa)</th><th>rows</th><th>MAE log10</th><th>MAE GPa</th>
<th>R² log10</th><th>68% coverage</th><th>95% coverage</th><th>miscalibration area</th></tr>{metric_rows}</table>
<h2>Validation: held-out hard compounds</h2>
<p>The {rec['n_heldout']} hardest labelled compounds (top {100 * (st.holdout if st else 0.02):.0f}% by the
Chen hardness of their DFT moduli) were removed from training and screened with the pool
({rec['n_ranked']:,} ranked rows). Recall: <b>{100 * rec['top_1pct']:.0f}%</b> land in the top 1%,
<b>{100 * rec['top_5pct']:.0f}%</b> in the top 5%, {100 * rec['top_10pct']:.0f}% in the top 10%
(random ranking: 1%, 5%, 10%).</p>
{_holdout_table(result.holdout)}
{parts[0]}{parts[1]}{parts[2]}
<h2>Pool</h2>
{parts[3]}
{parts[4]}
{parts[5]}
<h2>Top 50 candidates</h2>
<p class="note">mean ± std of the predictive distribution; distance = distance to the training
data in feature space (1 = typical spacing of training compounds; above ~2 is extrapolation).</p>
{_table(result.top)}
</body></html>
"""


def write_superhard_report(result, path: str | os.PathLike) -> Path:
    """Write :func:`superhard_report_html` to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(superhard_report_html(result), encoding="utf-8")
    return path
