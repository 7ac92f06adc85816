"""Materials map: training data and candidates on a 2-D embedding, as offline HTML.

The map is the 2-D embedding of a :class:`~matforge.screen.domain.DomainModel` (first two
principal components of the standardised features, or UMAP), with the training compounds
coloured by HDBSCAN cluster or by a property, and candidates (e.g. a screen's top list)
overlaid. :func:`map_figure` returns the plotly figure (the superhard report embeds it);
:func:`write_map_html` writes a self-contained page (plotly.js inlined, no CDN).

``matforge map DATASET_OR_RESULTS -o map.html`` is the command-line entry (``matforge.cli.screen``).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np

__all__ = ["build_map", "map_figure", "write_map_html"]

_MAX_BACKGROUND = 15_000  # training points drawn (subsampled above this: file size)


def map_figure(train, candidates=None, *, color: str = "cluster", title: str = "Materials map"):
    """Plotly figure of ``train`` (columns ``formula, map_x, map_y`` + ``color``) with
    ``candidates`` (``formula, map_x, map_y``, optional ``rank``) overlaid as stars."""
    import plotly.graph_objects as go

    fig = go.Figure()
    t = train
    if len(t) > _MAX_BACKGROUND:
        t = t.sample(_MAX_BACKGROUND, random_state=0)
    if color == "cluster":
        labels = t["cluster"].to_numpy()
        for c in np.unique(labels):
            sel = t[labels == c]
            fig.add_trace(go.Scattergl(
                x=sel["map_x"], y=sel["map_y"], mode="markers", text=sel["formula"],
                name="noise" if c < 0 else f"cluster {c}",
                marker={"size": 4, "opacity": 0.5, "color": "lightgrey" if c < 0 else None},
                hovertemplate="%{text}<extra>" + ("noise" if c < 0 else f"cluster {c}") + "</extra>",
            ))  # fmt: skip
    else:
        values = t[color].to_numpy(dtype=float)
        fig.add_trace(go.Scattergl(
            x=t["map_x"], y=t["map_y"], mode="markers", text=t["formula"], name="training data",
            marker={"size": 4, "opacity": 0.6, "color": values, "colorscale": "Viridis",
                    "colorbar": {"title": color}},
            customdata=values,
            hovertemplate="%{text}<br>" + color + " %{customdata:.4g}<extra></extra>",
        ))  # fmt: skip
    if candidates is not None and len(candidates):
        c = candidates
        label = c["formula"].astype(str)
        if "rank" in c:
            label = "#" + c["rank"].astype(str) + " " + label
        fig.add_trace(go.Scattergl(
            x=c["map_x"], y=c["map_y"], mode="markers", text=label, name="top candidates",
            marker={"symbol": "star", "size": 11, "color": "crimson",
                    "line": {"width": 1, "color": "black"}},
            hovertemplate="%{text}<extra>candidate</extra>",
        ))  # fmt: skip
    fig.update_layout(
        title=title, xaxis_title="map 1", yaxis_title="map 2", height=650,
        legend={"itemsizing": "constant"},
    )  # fmt: skip
    return fig


def build_map(
    train_formulas,
    train_values=None,
    candidate_formulas=None,
    *,
    value_name: str = "value",
    embedding: str = "pca",
    featurizer=None,
):
    """Fit a DomainModel on ``train_formulas`` and place the candidates on it.

    Returns ``(train_frame, candidate_frame or None, domain)``; unparseable formulas are
    dropped (train) or left off the map (candidates).
    """
    import pandas as pd

    from matforge.chem.batch import CompositionBatch
    from matforge.screen.domain import DomainModel

    if featurizer is None:
        from matforge.screen.superhard import featurizer as default_featurizer

        featurizer = default_featurizer()
    tb = CompositionBatch.from_formulas(list(train_formulas), errors="collect")
    X = featurizer.featurize_batch(tb)[tb.valid]
    domain = DomainModel(embedding=embedding).fit(X)
    train = pd.DataFrame({
        "formula": np.asarray(list(train_formulas), dtype=object)[tb.valid],
        "map_x": domain.train_map_[:, 0], "map_y": domain.train_map_[:, 1],
        "cluster": domain.train_cluster_,
    })  # fmt: skip
    if train_values is not None:
        train[value_name] = np.asarray(train_values, dtype=float)[tb.valid]
    cand = None
    if candidate_formulas is not None and len(candidate_formulas):
        cb = CompositionBatch.from_formulas(list(candidate_formulas), errors="collect")
        Xc = featurizer.featurize_batch(cb)[cb.valid]
        t = domain.transform(Xc)
        cand = pd.DataFrame({
            "formula": np.asarray(list(candidate_formulas), dtype=object)[cb.valid],
            "rank": np.flatnonzero(cb.valid) + 1,
            **{k: t[k] for k in ("map_x", "map_y", "cluster", "distance")},
        })  # fmt: skip
    return train, cand, domain


def write_map_html(fig, path: str | os.PathLike, *, title: str = "matforge materials map",
                   note: str = "") -> Path:
    """Write ``fig`` as a self-contained HTML page (plotly.js inlined)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        "</title><style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px}"
        f"</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(note)}</p>{body}"
        "</body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path
