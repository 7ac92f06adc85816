"""The matforge server: REST API, accounts and sharing, background jobs, OPTIMADE.

>>> from matforge.server import create_app
>>> app = create_app("lab.db")          # then: uvicorn, or `matforge serve --db lab.db`

FastAPI and the rest load on first use, so ``import matforge.server`` stays cheap.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name in ("create_app", "ServerSettings"):
        from matforge.server import app, settings

        return {"create_app": app.create_app, "ServerSettings": settings.ServerSettings}[name]
    raise AttributeError(f"module 'matforge.server' has no attribute {name!r}")


__all__ = ["ServerSettings", "create_app"]
