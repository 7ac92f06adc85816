"""The web UI: static files of ``matforge/server/ui`` under ``/ui``, plotly.js from the
installed ``plotly`` package (never a CDN), and ``/`` redirecting to the UI."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
UI_PREFIX = "/ui"


def plotly_js() -> Path:
    """The minified plotly.js bundled with the ``plotly`` Python package."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def mount(app: FastAPI) -> None:
    """Add the UI's routes to ``app`` (after the API's, which take precedence)."""

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/")

    @app.get(f"{UI_PREFIX}/vendor/plotly.min.js", include_in_schema=False)
    def plotly_bundle() -> FileResponse:
        return FileResponse(
            plotly_js(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount(UI_PREFIX, StaticFiles(directory=UI_DIR, html=True), name="ui")
