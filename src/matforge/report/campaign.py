"""HTML reports of campaigns and of the campaign benchmarks (plotly, offline).

* :func:`campaign_report_html` — one campaign from the store: best-so-far against experiment
  number, predicted (at suggestion time, ± 1 std) against observed values, the batch still
  pending with its predictions and uncertainty, the Pareto front when there are several
  objectives, and a ternary plot of the blends when the design space is a three-ingredient
  formulation.
* :func:`benchmark_report_html` — results of :func:`matforge.design.benchmark.run_benchmark`:
  per problem, best-so-far curves (mean over seeds with a 95 % confidence band) of every
  strategy against the exact random-search expectation, and the acceleration and enhancement
  factors.

The HTML is self-contained: the plotly.js bundle is inlined once (``include_plotlyjs=True`` on
the first figure), so it opens offline.
"""

from __future__ import annotations

import html
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

__all__ = [
    "benchmark_report_html",
    "campaign_report_html",
    "write_benchmark_report",
    "write_campaign_report",
]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left}
th{background:#f4f4f4}.note{color:#666;font-size:.9em}
"""


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "—"
        return f"{v:.4g}"
    return html.escape(str(v))


def _table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p class='note'>none</p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, sections: list[tuple[str, str]], figures_first: bool = True) -> str:
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">Generated {generated} by matforge. Self-contained: works offline.</p>
{body}
</body></html>"""


class _Figures:
    """Renders figures to HTML divs, inlining plotly.js in the first one only."""

    def __init__(self):
        self.first = True

    def __call__(self, fig) -> str:
        out = fig.to_html(full_html=False, include_plotlyjs=self.first,
                          config={"displaylogo": False})
        self.first = False
        return out


# -----------------------------------------------------------------------------------------------
# One campaign
# -----------------------------------------------------------------------------------------------


def campaign_report_html(campaign) -> str:
    """The report of a :class:`~matforge.design.campaign.Campaign` as an HTML string."""
    import plotly.graph_objects as go

    from matforge.design.spaces import FormulationSpace

    fig_html = _Figures()
    history = campaign.history()
    suggestions = campaign.suggestions()
    pending = suggestions[suggestions["status"] == "pending"]
    status = campaign.status()
    objectives = campaign.objectives
    sections: list[tuple[str, str]] = []

    info_rows = [
        {"item": "objectives", "value": ", ".join(status["objectives"])},
        {"item": "constraints", "value": ", ".join(status["constraints"]) or "none"},
        {"item": "design space", "value": status["space"]},
        {"item": "strategy", "value": json.dumps(status["strategy"])},
        {"item": "observations", "value": f"{status['observations']} ({status['initial']} "
                                          f"initial, {status['answered']} answering "
                                          f"suggestions, {status['unplanned']} unplanned)"},
        {"item": "pending suggestions", "value": status["pending"]},
        {"item": "batches suggested", "value": status["batches"]},
        {"item": "failed experiments", "value": status["failed"]},
    ]
    stopping = campaign.stopping()
    info_rows.append({"item": "chance a better candidate remains",
                      "value": stopping.summary() + (f". {stopping.assumption}"
                                                     if stopping.assumption else "")})
    sections.append(("Campaign", _table(info_rows, ["item", "value"])))

    # Best so far
    if len(history):
        x = np.arange(1, len(history) + 1)
        parts = []
        for o in objectives:
            y = history[o.name].to_numpy(dtype=float)
            u = o.utility(y)
            best_u = np.fmax.accumulate(np.where(np.isnan(u), -np.inf, u))
            best = np.where(np.isfinite(best_u), -best_u if o.kind != "max" else best_u, np.nan)
            label = o.name if o.kind in ("max", "min") else f"distance of {o.name} to target"
            shown = y if o.kind in ("max", "min") else -u
            fig = go.Figure()
            fig.add_trace(go.Scatter(
                x=x, y=shown, mode="markers", name="observed",
                text=[f"batch {b} ({s})" for b, s in zip(history["batch"], history["source"],
                                                          strict=True)],
                marker={"color": history["batch"], "colorscale": "Viridis", "showscale": True,
                        "colorbar": {"title": "batch"}},
            ))
            fig.add_trace(go.Scatter(x=x, y=best, mode="lines", name="best so far",
                                     line={"shape": "hv", "width": 3}))
            fig.update_layout(title=f"{o.name}: best so far ({o})", xaxis_title="experiment",
                              yaxis_title=label, height=420)
            parts.append(fig_html(fig))
        best = campaign.best()
        cols = [c for c in campaign.design_columns + campaign.properties if c in best.columns]
        parts.append("<p>Best observation(s):</p>" + _table(best[cols].to_dict("records"), cols))
        sections.append(("Best so far", "".join(parts)))

    # Predicted vs observed
    answered = history[history["suggestion_id"].notna()] if len(history) else history
    parts = []
    if len(answered):
        pred = suggestions.set_index("suggestion_id")
        for o in objectives:
            sid = answered["suggestion_id"].astype("int64").to_numpy()
            mu = pred.reindex(sid)[f"{o.name}_mean"].to_numpy(dtype=float)
            sd = pred.reindex(sid)[f"{o.name}_std"].to_numpy(dtype=float)
            obs = answered[o.name].to_numpy(dtype=float)
            ok = np.isfinite(mu) & np.isfinite(obs)
            if not ok.any():
                continue
            lo = float(np.nanmin(np.r_[obs[ok], mu[ok] - sd[ok]]))
            hi = float(np.nanmax(np.r_[obs[ok], mu[ok] + sd[ok]]))
            fig = go.Figure()
            fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                     line={"dash": "dash", "color": "grey"}))
            fig.add_trace(go.Scatter(
                x=obs[ok], y=mu[ok], mode="markers", name="suggestions",
                error_y={"type": "data", "array": sd[ok], "visible": True},
                text=[f"suggestion {s}" for s in sid[ok]],
            ))
            within = np.abs(obs[ok] - mu[ok]) <= sd[ok]
            fig.update_layout(title=f"{o.name}: predicted when suggested vs observed "
                                    f"({within.mean():.0%} within ± 1 std)",
                              xaxis_title=f"observed {o.name}",
                              yaxis_title=f"predicted {o.name} (± 1 std)", height=420)
            parts.append(fig_html(fig))
    sections.append(("Predicted vs observed", "".join(parts) or
                     "<p class='note'>No model-based suggestion has a result yet.</p>"))

    # Pending batch
    parts = []
    if len(pending):
        labels = [f"#{s}" for s in pending["suggestion_id"]]
        for o in objectives:
            mu = pending[f"{o.name}_mean"].to_numpy(dtype=float)
            sd = pending[f"{o.name}_std"].to_numpy(dtype=float)
            if not np.isfinite(mu).any():
                continue
            fig = go.Figure(go.Bar(x=labels, y=mu, error_y={"type": "data", "array": sd},
                                   name=o.name))
            fig.update_layout(title=f"Pending suggestions: predicted {o.name} (± 1 std)",
                              xaxis_title="suggestion", yaxis_title=o.name, height=380)
            parts.append(fig_html(fig))
        cols = (["suggestion_id", "batch"]
                + [c for c in campaign.design_columns if c in pending.columns]
                + [c for o in objectives for c in (f"{o.name}_mean", f"{o.name}_std")]
                + ["acquisition"])
        parts.append(_table(pending[cols].to_dict("records"), cols))
    sections.append(("Proposed batch (pending)", "".join(parts) or
                     "<p class='note'>Nothing pending.</p>"))

    # Pareto front
    if len(objectives) >= 2 and len(history):
        from matforge.design.objectives import pareto_front

        a, b = objectives[0], objectives[1]
        Y = history[[o.name for o in objectives]].to_numpy(dtype=float)
        U = np.column_stack([o.utility(Y[:, j]) for j, o in enumerate(objectives)])
        front = pareto_front(U)
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=Y[~front, 0], y=Y[~front, 1], mode="markers",
                                 name="observed", marker={"color": "lightgrey"}))
        order = np.argsort(Y[front, 0])
        fig.add_trace(go.Scatter(x=Y[front, 0][order], y=Y[front, 1][order],
                                 mode="markers+lines", name="Pareto front",
                                 line={"shape": "hv"}))
        if len(pending) and np.isfinite(pending[f"{a.name}_mean"].to_numpy(float)).any():
            fig.add_trace(go.Scatter(
                x=pending[f"{a.name}_mean"], y=pending[f"{b.name}_mean"], mode="markers",
                name="pending (predicted)", marker={"symbol": "x", "size": 10},
                error_x={"type": "data", "array": pending[f"{a.name}_std"]},
                error_y={"type": "data", "array": pending[f"{b.name}_std"]},
            ))
        fig.update_layout(title=f"Pareto front: {a} / {b}", xaxis_title=a.name,
                          yaxis_title=b.name, height=480)
        sections.append(("Pareto front", fig_html(fig)))

    # Ternary plot
    space = campaign.space
    if isinstance(space, FormulationSpace) and len(space.ingredient_names) == 3 and len(history):
        names = space.ingredient_names
        o = objectives[0]
        fig = go.Figure()
        fig.add_trace(go.Scatterternary(
            a=history[names[0]], b=history[names[1]], c=history[names[2]], mode="markers",
            name="observed",
            marker={"color": history[o.name], "colorscale": "Viridis", "showscale": True,
                    "colorbar": {"title": o.name}, "size": 9},
        ))
        if len(pending):
            fig.add_trace(go.Scatterternary(
                a=pending[names[0]], b=pending[names[1]], c=pending[names[2]], mode="markers",
                name="pending", marker={"symbol": "x", "size": 12, "color": "red"},
            ))
        fig.update_layout(title=f"Blends ({o.name})", height=520,
                          ternary={"aaxis": {"title": names[0]}, "baxis": {"title": names[1]},
                                   "caxis": {"title": names[2]}})
        sections.append(("Formulations (ternary)", fig_html(fig)))

    return _page(f"Campaign {campaign.name}", sections)


def write_campaign_report(campaign, path: str | os.PathLike) -> Path:
    """Write :func:`campaign_report_html` to ``path`` (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(campaign_report_html(campaign), encoding="utf-8")
    return path


# -----------------------------------------------------------------------------------------------
# Benchmarks
# -----------------------------------------------------------------------------------------------

_COLORS = {"random": "#888888"}
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]


def benchmark_report_html(results: dict) -> str:
    """Best-so-far curves and acceleration factors of campaign benchmark results."""
    import plotly.graph_objects as go

    fig_html = _Figures()
    sections: list[tuple[str, str]] = []
    summary = results.get("summary", {})
    rows = summary.get("rows", [])
    keys = list(summary.get("median_acceleration_top", {}))
    table_rows = []
    for r in rows:
        row = {"problem": r["problem"], "E[random]": r["random_expected_top"]}
        for k in keys:
            row[f"AF {k}"] = r.get(k)
        table_rows.append(row)
    med = {"problem": "median", "E[random]": None}
    for k in keys:
        med[f"AF {k}"] = summary["median_acceleration_top"][k]
    table_rows.append(med)
    intro = (f"<p>Seeds: {len(results.get('seeds', []))}; initial random experiments: "
             f"{results.get('n_initial')}; acceleration factor = expected experiments of random "
             f"search ÷ mean experiments of the strategy to find a top-1 % candidate.</p>")
    sections.append(("Acceleration factors (top-1 %)", intro + _table(table_rows)))

    for name, entry in results["problems"].items():
        info = entry["info"]
        fig = go.Figure()
        budget = info["budget"]
        x = np.arange(1, budget + 1)
        kind_max = info["objective"].endswith(" max")
        sign = 1.0 if kind_max else -1.0
        first = next(iter(entry["runs"].values()))
        rand = sign * np.asarray(first["random_expected_curve"])
        fig.add_trace(go.Scatter(x=x, y=rand, mode="lines", name="random (exact expectation)",
                                 line={"dash": "dot", "color": "#888"}))
        for i, (key, run) in enumerate(entry["runs"].items()):
            color = _COLORS.get(key, _PALETTE[i % len(_PALETTE)])
            mean = sign * np.asarray(run["curve_mean"])
            lo = sign * np.asarray(run["curve_lo"])
            hi = sign * np.asarray(run["curve_hi"])
            band_lo, band_hi = np.minimum(lo, hi), np.maximum(lo, hi)
            fig.add_trace(go.Scatter(
                x=np.r_[x, x[::-1]], y=np.r_[band_hi, band_lo[::-1]], fill="toself",
                fillcolor=color, opacity=0.15, line={"width": 0}, hoverinfo="skip",
                showlegend=False,
            ))
            fig.add_trace(go.Scatter(x=x, y=mean, mode="lines", name=key,
                                     line={"color": color, "width": 2}))
        threshold = sign * info["top_threshold_utility"]
        fig.add_hline(y=threshold, line={"dash": "dash", "color": "black", "width": 1},
                      annotation_text="top-1 %")
        ylabel = info["objective"].split(" ")[0]
        if not (info["objective"].endswith(" max") or info["objective"].endswith(" min")):
            ylabel = "distance to target"
        fig.update_layout(title=f"{name}: best so far ({info['goal']}), mean ± 95 % CI",
                          xaxis_title="experiments", yaxis_title=f"{ylabel} ({info['unit']})",
                          height=450)
        run_rows = []
        for key, run in entry["runs"].items():
            run_rows.append({
                "run": key,
                "mean experiments to top-1%": run["mean_experiments_to_top"],
                "median": run["median_experiments_to_top"],
                "found within budget": f"{run['found_top_within_budget']}/{len(run['seeds'])}",
                "AF top-1%": run["acceleration_top"],
                "AF best": run["acceleration_best"],
                "EF@20": run["enhancement"].get("20"),
                "EF@50": run["enhancement"].get("50"),
                "s / replay": run["seconds_per_replay"],
            })
        text = (f"<p>{html.escape(info['description'])}</p><p>{info['n_candidates']} candidates, "
                f"{info['n_top']} in the top 1 %, budget {budget} experiments; random search "
                f"needs {info['random_expected_top']:.1f} experiments on average. Default "
                f"features: {html.escape(info['features'])}; baseline: "
                f"{html.escape(info['plain_features'])}.</p>")
        sections.append((name, text + fig_html(fig) + _table(run_rows)))
    return _page("Campaign benchmarks", sections)


def write_benchmark_report(results: dict, path: str | os.PathLike) -> Path:
    """Write :func:`benchmark_report_html` to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(benchmark_report_html(results), encoding="utf-8")
    return path
