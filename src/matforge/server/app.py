"""The FastAPI application: REST API under ``/api/v1``, OPTIMADE under ``/optimade``.

The web UI (static files of ``matforge/server/ui``) is served under ``/ui``; ``/`` redirects
there. The API documentation (``/docs``, ``/redoc``) loads no file from outside the server.
"""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import asynccontextmanager
from dataclasses import replace

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from matforge import __version__
from matforge.errors import MatforgeError, StoreError
from matforge.server import tempdirs
from matforge.server.api import ApiError, ServerState, _user_from, current_user
from matforge.server.ids import load_codec
from matforge.server.jobs import JobRunner
from matforge.server.settings import ServerSettings
from matforge.server.training import ModelCache, model_root, train_model_kind
from matforge.store import Store
from matforge.store.repositories.systems import ChemicalSystems

log = logging.getLogger("matforge.server")

API_PREFIX = "/api/v1"
OPTIMADE_PREFIX = "/optimade"

DESCRIPTION = """\
The matforge store over HTTP: projects with owners, members and visibility; materials and
measurements with provenance; CSV and JSON uploads validated row by row; CSV export; models
trained in the background; screens of enumerated compositions and sequential-learning campaigns
(background jobs); XRD pattern identification; and a read-only OPTIMADE API.

Every `/api/v1` route needs `Authorization: Bearer <token>` (`matforge token new USER`).
Ids are opaque strings. A project you cannot see answers 404, exactly like one that does not
exist. Values are in each property's canonical unit.
"""


class _BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int):
        super().__init__(
            413, f"the request body is larger than the server's limit of {limit:,} bytes"
        )


class BodyLimit:
    """ASGI middleware refusing request bodies over a size limit (413), before they are read
    when they declare their length, else as soon as the limit is passed."""

    def __init__(self, app, settings: ServerSettings):
        self.app = app
        self.settings = settings

    def limit(self, path: str) -> int:
        if path.endswith("/uploads"):
            return self.settings.max_upload_bytes + 64 * 1024  # multipart headers and fields
        if path.endswith("/xrd/identify"):
            return self.settings.max_pattern_bytes + 64 * 1024
        return self.settings.max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = JSONResponse(
                {
                    "detail": f"the request body is larger than the server's limit of {limit:,} bytes"
                },
                status_code=413,
            )
            return await response(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        return await self.app(scope, counted, send)


def _needs_token(route) -> bool:
    """Whether ``route`` authenticates its caller (depends on :func:`current_user`)."""
    stack = [getattr(route, "dependant", None)]
    while stack:
        d = stack.pop()
        if d is None:
            continue
        if d.call is current_user:
            return True
        stack.extend(d.dependencies)
    return False


class _Unauthenticated(StarletteHTTPException):
    def __init__(self, detail: str):
        super().__init__(401, detail, headers={"WWW-Authenticate": "Bearer"})


class TokenBeforeBody:
    """ASGI middleware that checks the token of a request to a route that needs one before the
    first byte of its body is read (401 when it is missing, unknown or revoked), so that an
    anonymous client cannot make the server receive and parse a 45 MB upload.

    FastAPI reads a route's body before it resolves the route's dependencies (the token among
    them); this middleware makes the first ``receive`` of the body wait for the check instead.
    The router has then chosen the route, so unknown paths and methods still answer 404 and
    405 without any check, and requests whose body is never read pay nothing."""

    def __init__(self, app, state: ServerState):
        self.app = app
        self.state = state

    def _route_needs_token(self, scope) -> bool:
        route = scope.get("route")
        if route is None:  # a body read outside any route of ours: the API's rule
            return scope["path"].startswith(API_PREFIX)
        return _needs_token(route)  # a walk over a handful of dependencies: not cached

    async def _check(self, headers: Headers) -> None:
        # exactly as fastapi's HTTPBearer(auto_error=False) reads the header
        scheme, token = get_authorization_scheme_param(headers.get("authorization"))
        creds = (
            HTTPAuthorizationCredentials(scheme=scheme, credentials=token)
            if scheme.lower() == "bearer" and token
            else None
        )
        try:
            await run_in_threadpool(_user_from, self.state, creds)
        except ApiError as exc:
            raise _Unauthenticated(exc.detail) from None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
            # no body to protect; receive() then only waits for a disconnect (streamed answers)
            return await self.app(scope, receive, send)
        checked = False

        async def guarded():
            nonlocal checked
            if not checked:
                checked = True
                if self._route_needs_token(scope):
                    await self._check(headers)
            return await receive()

        return await self.app(scope, guarded, send)


class LastResort:
    """ASGI middleware answering an exception that no handler took with a JSON 500 carrying a
    short random ``error_id``, logged on one line with the exception (no stack trace in the
    answer or the log; ``DEBUG`` logging adds it).

    Starlette's own last handler sends its 500 and then re-raises, which makes uvicorn log
    "Exception in ASGI application" and close the keep-alive connection; this one does not
    re-raise, so a failing request costs its client nothing but the 500."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # noqa: BLE001 — the point of this middleware
            error_id = _log_crash(scope, exc)
            if started:  # part of the answer is sent: the connection cannot be reused anyway
                return
            response = _crash_response(scope, error_id)
            await response(scope, receive, send)


def _log_crash(scope, exc: BaseException) -> str:
    """Log ``exc`` on one line under a new short random error id (its stack at DEBUG level);
    returns the id, which the answer shows."""
    error_id = secrets.token_hex(4)
    log.error(
        "error %s on %s %s: %s", error_id, scope.get("method"), scope.get("path"), _one_line(exc)
    )
    log.debug("stack of error %s", error_id, exc_info=exc)
    return error_id


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message (at module:line)`` of ``exc``, newlines escaped, cut at ``limit``."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 — a broken __str__ must not hide the error itself
        text = "<unprintable>"
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(text) > limit:
        text = text[:limit] + "..."
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:  # a RecursionError: thousands of frames
        tb = tb.tb_next
    where = "" if tb is None else f" (at {tb.tb_frame.f_globals.get('__name__')}:{tb.tb_lineno})"
    return f"{type(exc).__name__}: {text}{where}"


def _crash_response(scope, error_id: str):
    detail = f"internal server error (error id {error_id})"
    if scope.get("path", "").startswith(OPTIMADE_PREFIX):
        from matforge.server.optimade import api as optimade

        try:
            return optimade.error_response(Request(scope), 500, "Internal Server Error", detail)
        except Exception:  # noqa: BLE001 — fall back to the plain answer
            log.error("error %s: the OPTIMADE error document could not be made", error_id)
    return JSONResponse({"detail": detail, "error_id": error_id}, status_code=500)


def _allowed_methods(app: FastAPI, scope) -> str:
    """Every method some route of the requested path answers, as an ``Allow`` header."""
    from starlette.routing import Match

    allowed = [
        method
        for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
        if any(r.matches({**scope, "method": method})[0] is Match.FULL for r in app.router.routes)
    ]
    return ", ".join(allowed)


def _is_optimade(request: Request) -> bool:
    return request.url.path.startswith(OPTIMADE_PREFIX)


def _install_error_handlers(app: FastAPI) -> None:
    from matforge.server.optimade import api as optimade

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        body = {"detail": exc.detail}
        if exc.errors:
            body["errors"] = [e.model_dump() if hasattr(e, "model_dump") else e for e in exc.errors]
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(optimade.OptimadeError)
    async def optimade_error(request: Request, exc: optimade.OptimadeError):
        return optimade.exception_handler(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 405:  # Starlette names the methods of one route of the path only
            exc.headers = {**(exc.headers or {}), "Allow": _allowed_methods(app, request.scope)}
        if _is_optimade(request):
            title = {404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large"}.get(
                exc.status_code, "Error"
            )
            response = optimade.error_response(request, exc.status_code, title, str(exc.detail))
            response.headers.update(exc.headers or {})  # a 405's Allow
            return response
        return JSONResponse(
            {"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = exc.errors()
        if _is_optimade(request):
            text = "; ".join(
                f"{'.'.join(str(x) for x in p.get('loc', ()))}: {p.get('msg')}" for p in problems
            )
            return optimade.error_response(request, 400, "Bad Request", text)
        fields = [
            {
                "loc": [x if isinstance(x, int) else str(x) for x in p.get("loc", ())],
                "msg": str(p.get("msg", "")),
                "type": str(p.get("type", "")),
            }
            for p in problems
        ]
        return JSONResponse(
            {
                "detail": f"the request does not match the API schema ({len(fields)} problem(s))",
                "fields": fields,
            },
            status_code=422,
        )

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError):
        # The store's own messages name its URL and the driver's words: for the log only.
        return _crash_response(request.scope, _log_crash(request.scope, exc))

    @app.exception_handler(MatforgeError)
    async def matforge_error(request: Request, exc: MatforgeError):
        if _is_optimade(request):
            return optimade.error_response(request, 400, "Bad Request", str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=400)


def create_app(store_url: str | None = None, settings: ServerSettings | None = None) -> FastAPI:
    """The matforge server app over the store at ``store_url`` (a SQLite path or SQLAlchemy
    URL; default ``$MATFORGE_DB`` or ``~/.matforge/matforge.db``).

    The store is opened (and migrated) now; the job workers start with the app's lifespan
    (``uvicorn``, or ``with TestClient(app)``) and stop with it.
    """
    from matforge.server.campaigns import suggest_kind
    from matforge.server.generating import Generators, design_kind, sample_kind
    from matforge.server.headers import SecurityHeaders
    from matforge.server.optimade import api as optimade
    from matforge.server.routes import (
        apidocs,
        campaigns,
        data,
        deletions,
        generate,
        models,
        projects,
        structures,
        ui,
        uploads,
        xrd,
    )
    from matforge.server.screening import screen_kind

    settings = settings or ServerSettings.from_env()
    store = Store(store_url)
    try:
        codec = load_codec(store.engine)
        root = model_root(store.url, settings.model_root)
        if settings.upload_dir is None:
            settings = replace(settings, upload_dir=tempdirs.default_upload_dir(root))
        cache = ModelCache(root, settings.model_cache_size)
        generators = Generators()
        kinds = {
            "train_model": train_model_kind(store.engine, root, cache),
            "campaign_suggest": suggest_kind(store),
            "screen": screen_kind(store.engine, cache),
            "generate_sample": sample_kind(generators),
            "generate_design": design_kind(store.engine, cache, generators),
        }
        runner = JobRunner(store.engine, kinds, settings)
    except BaseException:
        store.close()
        raise
    state = ServerState(
        store=store,
        codec=codec,
        settings=settings,
        jobs=runner,
        models=cache,
        systems=ChemicalSystems(store.engine),
        generators=generators,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # what a killed server left: upload copies here, its jobs in runner.start()'s recovery
        tempdirs.clean(settings.upload_dir)
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            store.close()

    app = FastAPI(
        title="matforge",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are served without a CDN by apidocs.mount
        redoc_url=None,
    )
    app.state.matforge = state
    # the last added runs first: LastResort, then the token check, then the body limit
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(TokenBeforeBody, state=state)
    app.add_middleware(LastResort)
    _install_error_handlers(app)
    for module in (projects, data, deletions, uploads, models, generate, campaigns, xrd):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(structures.router, prefix=API_PREFIX)
    version = f"v{optimade.API_VERSION_MAJOR}"
    app.include_router(
        optimade.router,
        prefix=f"{OPTIMADE_PREFIX}/{version}",
        generate_unique_id_function=lambda route: f"{route.name}_{version}",
    )
    # The unversioned base URL serves the same (OPTIMADE clients start there); documented once.
    app.include_router(optimade.router, prefix=OPTIMADE_PREFIX, include_in_schema=False)
    app.include_router(optimade.unversioned, prefix=OPTIMADE_PREFIX)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                optimade.optimade_schemas()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    apidocs.mount(app)
    ui.mount(app)
    app.add_middleware(SecurityHeaders)  # added last: outermost, on every answer
    return app


def app_from_env() -> FastAPI:
    """:func:`create_app` over ``$MATFORGE_DB`` with ``MATFORGE_SERVER_*`` settings: the factory
    each uvicorn worker process calls (``matforge serve --workers N``)."""
    return create_app(os.environ.get("MATFORGE_DB"), ServerSettings.from_env())


def server_state(app: FastAPI) -> ServerState:
    """The :class:`ServerState` of an app made by :func:`create_app`."""
    return app.state.matforge
