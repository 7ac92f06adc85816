"""The API documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), with their
JavaScript and CSS served from the installed ``fastapi-offline`` package instead of FastAPI's
default CDN, so they work on a lab network without internet (as the UI serves plotly.js)."""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
VENDOR = f"{DOCS_URL}/vendor"
#: file name → media type of the assets the two pages load
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}


def assets_dir() -> Path | None:
    """The folder of Swagger UI / ReDoc files shipped by ``fastapi-offline`` (None without it)."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    return Path(fastapi_offline.__file__).resolve().parent / "static"


#: The one file ReDoc loads from outside: the logo of its "API docs by Redocly" badge. An
#: empty ``src`` fails at once without a request, and ReDoc then drops the image (the link
#: stays), so the page loads nothing the Content-Security-Policy would block.
REDOC_BADGE = b'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"'


@functools.cache
def _redoc_js(path: Path) -> bytes:
    """ReDoc's bundle with the badge's external logo removed (read once, 1 MB)."""
    return path.read_bytes().replace(REDOC_BADGE, b'src:""')


def _missing() -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><title>matforge API docs</title><p>The API documentation pages need "
        "the <code>fastapi-offline</code> package (<code>pip install 'matforge[server]'</code>). "
        'The OpenAPI description itself is at <a href="/openapi.json">/openapi.json</a>.</p>',
        status_code=503,
    )


def mount(app: FastAPI) -> None:
    """Add ``/docs``, its OAuth2 redirect, ``/redoc`` and their assets to ``app`` (created
    with ``docs_url=None, redoc_url=None``)."""
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> Response:
        if assets_dir() is None:
            return _missing()
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui.css",
            swagger_favicon_url=f"{VENDOR}/favicon.png",
            oauth2_redirect_url=redirect_url,
            # no badge from the public validator service
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )

    @app.get(redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc() -> Response:
        if assets_dir() is None:
            return _missing()
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{VENDOR}/redoc.standalone.js",
            redoc_favicon_url=f"{VENDOR}/favicon.png",
            with_google_fonts=False,
        )

    def asset_route(name: str, media_type: str):
        def asset() -> Response:
            folder = assets_dir()
            if folder is None:
                return _missing()
            if name == "redoc.standalone.js":
                return Response(_redoc_js(folder / name), media_type=media_type,
                                headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip
            return FileResponse(folder / name, media_type=media_type,
                                headers={"Cache-Control": "public, max-age=86400"})

        asset.__name__ = "docs_" + name.replace("-", "_").replace(".", "_")
        return asset

    for name, media_type in ASSETS.items():
        app.get(f"{VENDOR}/{name}", include_in_schema=False)(asset_route(name, media_type))
