"""HTML report of a trained model from its stored out-of-fold (OOF) predictions.

The OOF predictions are those the model made, while training, for rows it had not seen (see
:class:`~matforge.models.pipeline.CompositionModel`), so the figures show cross-validated
behaviour, not the fit to the training data:

* regression: parity plot (OOF mean ± 1 std against the target), histogram of the residuals
  (with the predicted-std distribution overlaid as z-scores), calibration curve (observed
  against expected coverage of central Gaussian intervals);
* classification: ROC curve, reliability diagram, histogram of the predicted probabilities.

The HTML is self-contained: the plotly.js bundle is inlined once (``include_plotlyjs=True``),
so it opens offline and never fetches a script from a CDN.
"""

from __future__ import annotations

import html
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["model_report_html", "write_model_report"]


def model_report_html(model, name: str | None = None) -> str:
    """The report of a fitted :class:`~matforge.models.pipeline.CompositionModel` as HTML."""
    meta: dict[str, Any] = getattr(model, "metadata_", {}) or {}
    name = name or meta.get("name") or "model"
    oof = model.oof_
    if model.task == "classification":
        figures = _classification_figures(oof, model)
    else:
        figures = _regression_figures(oof, model)
    parts = []
    for i, fig in enumerate(figures):
        parts.append(
            fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        )
    from matforge.models.pipeline import metric_unit

    def unit_of(metric: str) -> str:  # "—": dimensionless; blank: unknown
        unit = metric_unit(metric, model.unit)
        return "—" if unit == "" else (unit or "")

    metrics = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td><td>{html.escape(unit_of(k))}</td></tr>"
        for k, v in model.cv_metrics_.items()
    )
    info = {
        "target": model.target,
        "unit": model.unit,
        "task": model.task,
        "estimator": type(model.estimator_).__name__,
        "featurizer": ", ".join(model.featurizer),
        "training rows (unique compositions)": model.n_train_,
        "training data sha256": model.training_sha256_,
        "created": meta.get("created_at", "—"),
        "matforge": meta.get("matforge_version", "—"),
    }
    info_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in info.items()
    )
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>matforge model report: {html.escape(name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td {{ border-bottom: 1px solid #ddd; padding: 3px 12px 3px 0; font-size: 0.9em; }}
.note {{ color: #666; font-size: 0.85em; }}
</style></head><body>
<h1>Model report: {html.escape(name)}</h1>
<p class="note">Figures use the out-of-fold predictions stored with the model (rows predicted by
models that did not train on them). Generated {generated} by matforge.</p>
<h2>Model</h2><table>{info_rows}</table>
<h2>Cross-validated metrics</h2><table>{metrics}</table>
{"".join(f'<div class="figure">{p}</div>' for p in parts)}
</body></html>
"""


def write_model_report(model, path: str | os.PathLike, name: str | None = None) -> Path:
    """Write :func:`model_report_html` to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_report_html(model, name), "utf-8")
    return path


def _regression_figures(oof: dict[str, np.ndarray], model) -> list:
    import plotly.graph_objects as go

    from matforge.models.calibration import coverage_curve

    y, mean, std = (np.asarray(oof[k], float) for k in ("y", "mean", "std"))
    formulas = [str(f) for f in oof.get("formula", [""] * len(y))]
    unit = f" ({model.unit})" if model.unit else ""
    label = model.target or "target"
    lo, hi = float(min(y.min(), mean.min())), float(max(y.max(), mean.max()))
    parity = go.Figure()
    parity.add_trace(
        go.Scattergl(
            x=y,
            y=mean,
            mode="markers",
            text=formulas,
            name="OOF prediction",
            error_y={
                "type": "data",
                "array": std,
                "visible": True,
                "thickness": 0.5,
                "width": 0,
                "color": "rgba(31,119,180,0.25)",
            },
            marker={"size": 4, "opacity": 0.6},
            hovertemplate="%{text}<br>true %{x:.4g}<br>pred %{y:.4g}<extra></extra>",
        )
    )
    parity.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[lo, hi],
            mode="lines",
            name="y = x",
            line={"color": "black", "dash": "dash"},
        )
    )
    parity.update_layout(
        title=f"Parity: out-of-fold prediction ± 1 std vs {label}",
        xaxis_title=f"true {label}{unit}",
        yaxis_title=f"predicted{unit}",
        height=550,
    )
    resid = y - mean
    hist = go.Figure()
    hist.add_trace(go.Histogram(x=resid, nbinsx=80, name="residual"))
    hist.update_layout(
        title="Residuals (true − predicted)",
        xaxis_title=f"residual{unit}",
        yaxis_title="rows",
        height=400,
    )
    expected, observed = coverage_curve(y, mean, std)
    cal = _against_diagonal(
        expected, observed, "ideal",
        title="Calibration: observed vs expected coverage of central intervals",
        xaxis_title="expected coverage", yaxis_title="observed coverage",
    )  # fmt: skip
    return [parity, hist, cal]


def _against_diagonal(x, y, reference: str, *, mode: str = "lines", **layout):
    """A square figure of the model's curve (``x``, ``y`` in 0–1) over the dashed diagonal
    ``reference`` (what an ideal or a chance model draws)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=y, mode=mode, name="model"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=reference,
                             line={"color": "black", "dash": "dash"}))  # fmt: skip
    fig.update_layout(height=450, width=550, **layout)
    return fig


def _classification_figures(oof: dict[str, np.ndarray], model) -> list:
    import plotly.graph_objects as go
    from sklearn.metrics import roc_curve

    y = np.asarray(oof["y"], float).astype(int)
    p = np.asarray(oof["proba"], float)
    positive = model.classes_[1] if hasattr(model, "classes_") else 1
    figs = []
    if np.unique(y).size == 2:
        fpr, tpr, _ = roc_curve(y, p)
        figs.append(_against_diagonal(
            fpr, tpr, "chance", title=f"ROC curve (positive class: {positive})",
            xaxis_title="false positive rate", yaxis_title="true positive rate",
        ))  # fmt: skip
    bins = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(p, bins) - 1, 0, 9)
    centers, freq = [], []
    for b in range(10):
        sel = idx == b
        if sel.any():
            centers.append(float(p[sel].mean()))
            freq.append(float(y[sel].mean()))
    figs.append(_against_diagonal(
        centers, freq, "ideal", mode="lines+markers",
        title="Reliability: observed frequency vs predicted probability",
        xaxis_title="predicted probability", yaxis_title="observed frequency",
    ))  # fmt: skip
    hist = go.Figure()
    for cls, name in ((0, "negative"), (1, "positive")):
        hist.add_trace(go.Histogram(x=p[y == cls], nbinsx=40, name=name, opacity=0.6))
    hist.update_layout(
        barmode="overlay",
        title="Predicted probabilities by true class",
        xaxis_title="predicted probability",
        yaxis_title="rows",
        height=400,
    )
    figs.append(hist)
    return figs


def _fmt(v) -> str:
    if isinstance(v, float):
        return "—" if not np.isfinite(v) else f"{v:.4g}"
    return html.escape(json.dumps(v)) if not isinstance(v, str) else html.escape(v)
