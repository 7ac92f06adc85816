"""The read-only OPTIMADE API: ``/optimade`` (unversioned) and ``/optimade/v1``.

Entries are built as plain dicts, checked against the ``optimade`` package's pydantic models
and served as JSON:API (``application/vnd.api+json``). Callers see the materials and sources
of the projects they may read: anonymous callers the public projects, a caller with a valid
token (``Authorization: Bearer``) also their own and shared ones; a bad token is refused (401).
"""

from __future__ import annotations

import functools
import urllib.parse
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from optimade.exceptions import BadRequest, NotFound, OptimadeHTTPException

from matforge import __version__
from matforge.errors import OptimadeError
from matforge.server import access
from matforge.server.api import ServerState, State, bearer
from matforge.server.auth import TokenRefused, User, check_token
from matforge.server.optimade import entries
from matforge.server.optimade.filter import MAX_FILTER_LENGTH, parse_filter
from matforge.store.repositories import optimade as stored

PREFIX = stored.PREFIX
API_VERSION_MAJOR = "1"
ENTRY_TYPES = stored.ENTRY_TYPES
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 100
JSONAPI = "application/vnd.api+json"

PROVIDER = {
    "name": "matforge",
    "description": "A matforge materials store (measurements, compositions, structures).",
    "prefix": PREFIX,
    "homepage": None,
}
IMPLEMENTATION = {"name": "matforge", "version": __version__}


class JSONAPIResponse(JSONResponse):
    media_type = JSONAPI


# --- errors --------------------------------------------------------------------------------


def error_response(request: Request, status: int, title: str, detail: str) -> JSONAPIResponse:
    body = {
        "errors": [{"status": str(status), "title": title, "detail": detail}],
        "meta": _meta(request, more=False),
    }
    return JSONAPIResponse(body, status_code=status)


# --- meta and helpers ----------------------------------------------------------------------


def _api_version() -> str:
    from optimade import __api_version__

    return __api_version__


def _meta(
    request: Request, more: bool, returned: int | None = None, available: int | None = None
) -> dict:
    meta = {
        "query": {"representation": _representation(request)},
        "api_version": _api_version(),
        "more_data_available": more,
        "time_stamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "provider": {k: v for k, v in PROVIDER.items() if v is not None},
        "implementation": IMPLEMENTATION,
        # the specification's schema for this API version (a name for clients; never fetched)
        "schema": f"https://schemas.optimade.org/openapi/v{_api_version()}/optimade.json",
    }
    if returned is not None:
        meta["data_returned"] = returned
    if available is not None:
        meta["data_available"] = available
    return meta


def _representation(request: Request) -> str:
    path = request.url.path
    root = request.scope.get("root_path", "")
    path = path[len(root) :] if root and path.startswith(root) else path
    for prefix in (f"/optimade/v{API_VERSION_MAJOR}", "/optimade"):
        if path.startswith(prefix):
            path = path[len(prefix) :] or "/"
            break
    return f"{path}?{request.url.query}" if request.url.query else path


def _base_url(request: Request) -> str:
    """The absolute URL that links start with: the server's ``base_url`` setting, else the
    address the server listens on. Never the request's ``Host`` header, which the client
    chooses (a forged one would put its host into the links that other tools follow)."""
    configured = request.app.state.matforge.settings.base_url
    if configured:
        return configured.rstrip("/")
    scheme = request.scope.get("scheme", "http")
    host, port = request.scope.get("server") or ("localhost", None)
    host = f"[{host}]" if ":" in host else host
    netloc = host if port in (None, {"http": 80, "https": 443}.get(scheme)) else f"{host}:{port}"
    return f"{scheme}://{netloc}{request.scope.get('root_path', '')}".rstrip("/")


def _app_path(request: Request) -> str:
    """The path of the request below the app's root path."""
    path, root = request.url.path, request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def caller(
    state: State, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User | None:
    """The caller, None when anonymous; a token that is sent must be valid."""
    if creds is None:
        return None
    try:
        return check_token(state.engine, creds.credentials)
    except TokenRefused as exc:
        raise OptimadeError(401, "Unauthorized", str(exc)) from None


Caller = Annotated[User | None, Depends(caller)]
#: OpenAPI: the token is optional here (anonymous callers see public projects)
OPTIONAL_AUTH = {"security": [{}]}  # merged with the bearer scheme: either


# --- entry collections ---------------------------------------------------------------------


#: Provider-specific fields of structures entries that do not depend on the store's properties:
#: name -> (kind, unit, description).
PROVIDER_FIELDS = {
    f"_{PREFIX}_space_group_it_number": (
        "integer",
        None,
        "International Tables number (1-230) of the space group of a stored structure, found "
        "by spglib through pymatgen's SpacegroupAnalyzer (symprec 0.1 Å, angle tolerance 5°); "
        "null for composition-only materials and for cells over 5,000 sites.",
    ),
    f"_{PREFIX}_space_group_symbol": (
        "string",
        None,
        "Hermann-Mauguin symbol of the same space group (e.g. 'Fm-3m'), as spglib writes it.",
    ),
    f"_{PREFIX}_method": (
        "string",
        None,
        "How a stored structure was obtained: experiment, refinement, dft, ml_relaxation or "
        "xrd_match; null for materials (entries with ids mat_...).",
    ),
    f"_{PREFIX}_material_id": (
        "string",
        None,
        "Id of the material (the composition; an entry mat_... when it has a visible "
        "measurement) that this entry is a structure of.",
    ),
}


def _project_ids(conn, user: User | None) -> list[int]:
    """The projects ``user`` (None: anonymous) may read: what every read below is limited to."""
    return sorted(access.roles(conn, user))


class Collection:
    """One entry type over the caller's visible data."""

    def __init__(self, state: ServerState, entry_type: str, user: User | None):
        self.state, self.entry_type, self.user = state, entry_type, user
        stored.sync(state.engine, state.codec)

    def _entry(self, record) -> dict:
        if self.entry_type == "structures":
            return entries.checked("structures", entries.structure_entry(record))
        return entries.checked("references", entries.reference_entry(record))

    def find(self, filter_text: str, sort: str, limit: int, offset: int):
        """``(entries, data_returned, data_available, more)`` of one page."""
        keys = []
        for item in filter(None, (s.strip() for s in sort.split(","))):
            keys.append((item.lstrip("-"), item.startswith("-")))
        try:
            tree = parse_filter(filter_text)
            with self.state.engine.connect() as conn:
                page = stored.find(
                    conn,
                    self.entry_type,
                    _project_ids(conn, self.user),
                    tree,
                    keys,
                    limit,
                    offset,
                    filter_text=filter_text,
                )
        except OptimadeHTTPException as exc:
            raise OptimadeError.from_optimade(exc) from None
        found = [self._entry(r) for r in page.records]
        return found, page.returned, page.available, page.more

    def get(self, entry_id: str):
        with self.state.engine.connect() as conn:
            record, available = stored.get(
                conn, self.entry_type, _project_ids(conn, self.user), entry_id
            )
        return (None if record is None else self._entry(record)), available


# --- routes --------------------------------------------------------------------------------

router = APIRouter(tags=["optimade"], default_response_class=JSONAPIResponse)
unversioned = APIRouter(tags=["optimade"])

_ERRORS = {
    code: {
        "description": text,
        "content": {JSONAPI: {"schema": {"$ref": "#/components/schemas/OptimadeError"}}},
    }
    for code, text in {
        400: "Bad request (e.g. a malformed filter).",
        401: "A token was sent but is invalid.",
        403: f"page_limit over the maximum ({MAX_PAGE_LIMIT}).",
        404: "No such entry visible to the caller.",
        501: "A filter feature this server does not implement.",
    }.items()
}

Filter = Annotated[
    str,
    Query(max_length=MAX_FILTER_LENGTH, description='An OPTIMADE filter, e.g. elements HAS "Fe".'),
]
ResponseFields = Annotated[
    str, Query(max_length=5_000, description="Comma-separated attributes to return.")
]
Sort = Annotated[
    str, Query(max_length=1_000, description="Comma-separated fields, '-' for descending.")
]
# Not `le=`: OPTIMADE asks for 403 Forbidden over the server's maximum (checked in _list).
PageLimit = Annotated[
    int,
    Query(
        ge=0,
        description=f"Entries per page (at most {MAX_PAGE_LIMIT}; more is 403 Forbidden).",
        json_schema_extra={"maximum": MAX_PAGE_LIMIT},
    ),
]
PageOffset = Annotated[int, Query(ge=0, le=10**9)]
Format = Annotated[str, Query(max_length=20, description="Only 'json'.")]


ENTRY_PARAMS = frozenset(
    {
        "filter",
        "response_format",
        "email_address",
        "response_fields",
        "sort",
        "page_limit",
        "page_offset",
        "include",
        "api_hint",
    }
)


def _check_params(request: Request, allowed: frozenset = frozenset()) -> None:
    """400 for a query parameter this endpoint does not know, as OPTIMADE asks; parameters of
    a provider (``_name_...``) are ignored."""
    unknown = sorted(k for k in request.query_params if k not in allowed and not k.startswith("_"))
    if unknown:
        raise OptimadeError(400, "Bad Request", f"unknown query parameter(s): {', '.join(unknown)}")


def _check_format(response_format: str) -> None:
    if response_format != "json":
        raise OptimadeError(
            400, "Bad Request", f"response_format {response_format!r} is not available; use 'json'"
        )


def _fields_filter(entry: dict, response_fields: str) -> dict:
    if not response_fields:
        return entry
    wanted = [f.strip() for f in response_fields.split(",") if f.strip()]
    attributes = entry["attributes"]
    entry["attributes"] = {f: attributes.get(f) for f in wanted if f not in ("id", "type")}
    return entry


def _list(
    request: Request,
    state: ServerState,
    user: User | None,
    entry_type: str,
    filter: str,
    response_fields: str,
    sort: str,
    page_limit: int,
    page_offset: int,
    response_format: str,
) -> JSONAPIResponse:
    _check_params(request, ENTRY_PARAMS)
    _check_format(response_format)
    if page_limit > MAX_PAGE_LIMIT:  # as the OPTIMADE specification asks: 403, not a cap
        raise OptimadeError(
            403,
            "Forbidden",
            f"page_limit {page_limit} is over this server's maximum of {MAX_PAGE_LIMIT}",
        )
    limit = page_limit or DEFAULT_PAGE_LIMIT
    collection = Collection(state, entry_type, user)
    found, returned, available, more = collection.find(filter, sort, limit, page_offset)
    next_link = None
    if more:
        query = dict(urllib.parse.parse_qsl(request.url.query, keep_blank_values=True))
        query["page_offset"] = str(page_offset + len(found))
        query["page_limit"] = str(limit)
        next_link = f"{_base_url(request)}{_app_path(request)}?{urllib.parse.urlencode(query)}"
    body = {
        "links": {"next": next_link},
        "data": [_fields_filter(e, response_fields) for e in found],
        "meta": _meta(request, more, returned, available),
    }
    return JSONAPIResponse(body)


def _one(
    request: Request,
    state: ServerState,
    user: User | None,
    entry_type: str,
    entry_id: str,
    response_fields: str,
    response_format: str,
) -> JSONAPIResponse:
    _check_params(request, ENTRY_PARAMS)
    _check_format(response_format)
    entry, available = Collection(state, entry_type, user).get(entry_id)
    if entry is None:
        raise OptimadeError.from_optimade(NotFound(detail=f"no {entry_type[:-1]} {entry_id!r}"))
    body = {
        "links": {"next": None},
        "data": _fields_filter(entry, response_fields),
        "meta": _meta(request, False, 1, available),
    }
    return JSONAPIResponse(body)


def _entry_routes(entry_type: str, many_model: str, one_model: str) -> None:
    @router.get(
        f"/{entry_type}",
        name=f"optimade_list_{entry_type}",
        openapi_extra=OPTIONAL_AUTH,
        summary=f"List {entry_type}",
        responses={
            200: {
                "description": "A page of entries.",
                "content": {
                    JSONAPI: {"schema": {"$ref": f"#/components/schemas/Optimade{many_model}"}}
                },
            },
            **_ERRORS,
        },
    )
    def list_entries(
        request: Request,
        state: State,
        user: Caller,
        filter: Filter = "",
        response_fields: ResponseFields = "",
        sort: Sort = "",
        page_limit: PageLimit = DEFAULT_PAGE_LIMIT,
        page_offset: PageOffset = 0,
        response_format: Format = "json",
        email_address: Annotated[str, Query(max_length=200)] = "",
        include: Annotated[str, Query(max_length=200)] = "",
        api_hint: Annotated[str, Query(max_length=20)] = "",
    ) -> JSONAPIResponse:
        return _list(
            request,
            state,
            user,
            entry_type,
            filter,
            response_fields,
            sort,
            page_limit,
            page_offset,
            response_format,
        )

    @router.get(
        f"/{entry_type}/{{entry_id}}",
        name=f"optimade_get_{entry_type}",
        openapi_extra=OPTIONAL_AUTH,
        summary=f"One of the {entry_type}",
        responses={
            200: {
                "description": "The entry.",
                "content": {
                    JSONAPI: {"schema": {"$ref": f"#/components/schemas/Optimade{one_model}"}}
                },
            },
            **_ERRORS,
        },
    )
    def get_entry(
        request: Request,
        state: State,
        user: Caller,
        entry_id: Annotated[str, PathParam(max_length=200)],
        response_fields: ResponseFields = "",
        response_format: Format = "json",
        email_address: Annotated[str, Query(max_length=200)] = "",
        include: Annotated[str, Query(max_length=200)] = "",
        api_hint: Annotated[str, Query(max_length=20)] = "",
    ) -> JSONAPIResponse:
        return _one(request, state, user, entry_type, entry_id, response_fields, response_format)


_entry_routes("structures", "StructureResponseMany", "StructureResponseOne")
_entry_routes("references", "ReferenceResponseMany", "ReferenceResponseOne")


@functools.cache
def _standard_info(entry_type: str) -> dict:
    """``/info/<entry type>`` properties of the specification's fields that are served."""
    from optimade.server.schemas import ENTRY_INFO_SCHEMAS, retrieve_queryable_properties

    served = stored.field_names(entry_type)
    schema_props = retrieve_queryable_properties(
        ENTRY_INFO_SCHEMAS[entry_type], ("id", "type", "attributes")
    )
    properties = {}
    for name in served:
        if name in PROVIDER_FIELDS:
            kind, unit, description = PROVIDER_FIELDS[name]
            properties[name] = {"description": description, "sortable": True, "type": kind}
            continue
        p = schema_props[name]
        item = {"description": p["description"], "sortable": bool(p.get("sortable", True))}
        if p.get("type") is not None:
            item["type"] = getattr(p["type"], "value", p["type"])
        if p.get("unit"):
            item["unit"] = p["unit"]
        properties[name] = item
    return properties


def entry_info(entry_type: str, measured: list = ()) -> dict:
    """The ``/info/<entry type>`` resource: the served properties and their descriptions;
    ``measured``: the properties measured in the caller's projects (served as
    ``_matforge_<name>``, :func:`matforge.store.repositories.optimade.measured_properties`)."""
    properties = dict(_standard_info(entry_type))
    for row in measured:
        name = row.field
        if name is None:
            continue
        properties[name] = {
            "description": (
                f"Measured {row.name}"
                + (f" ({row.description})" if row.description else "")
                + f": the mean of the material's measurements the caller may read, in "
                f"{row.canonical_unit}; null where there is none. A structure entry has its "
                "material's (composition's) measurements."
            ),
            "sortable": True,
            "type": "float",
            "unit": row.canonical_unit,
        }
    return {
        "id": entry_type,
        "type": "info",
        "formats": ["json"],
        "description": f"{entry_type} of the matforge store visible to the caller",
        "properties": properties,
        "output_fields_by_format": {"json": list(properties)},
    }


@router.get(
    "/info",
    summary="What this OPTIMADE API serves",
    responses={
        200: {
            "description": "Base info.",
            "content": {JSONAPI: {"schema": {"$ref": "#/components/schemas/OptimadeInfoResponse"}}},
        }
    },
)
def optimade_info(request: Request) -> JSONAPIResponse:
    _check_params(request)
    base = _base_url(request)
    data = {
        "id": "/",
        "type": "info",
        "attributes": {
            "api_version": _api_version(),
            "available_api_versions": [
                {"url": f"{base}/optimade/v{API_VERSION_MAJOR}", "version": _api_version()}
            ],
            "formats": ["json"],
            "available_endpoints": ["info", "links", *ENTRY_TYPES],
            "entry_types_by_format": {"json": list(ENTRY_TYPES)},
            "is_index": False,
        },
    }
    return JSONAPIResponse({"data": data, "meta": _meta(request, False, 1, 1)})


@router.get(
    "/info/{entry_type}",
    summary="Properties of an entry type",
    openapi_extra=OPTIONAL_AUTH,
    responses={
        200: {
            "description": "Entry info.",
            "content": {
                JSONAPI: {"schema": {"$ref": "#/components/schemas/OptimadeEntryInfoResponse"}}
            },
        },
        **_ERRORS,
    },
)
def optimade_entry_info(
    request: Request, state: State, user: Caller, entry_type: str
) -> JSONAPIResponse:
    _check_params(request)
    if entry_type not in ENTRY_TYPES:
        raise OptimadeError(
            404, "Not Found", f"no entry type {entry_type!r}; available: {', '.join(ENTRY_TYPES)}"
        )
    measured = []
    if entry_type == "structures":
        with state.engine.connect() as conn:
            measured = stored.measured_properties(conn, _project_ids(conn, user))
    info = entry_info(entry_type, measured)
    return JSONAPIResponse({"data": info, "meta": _meta(request, False, 1, 1)})


@router.get(
    "/links",
    summary="Links to other OPTIMADE databases (none)",
    responses={
        200: {
            "description": "Links.",
            "content": {
                JSONAPI: {"schema": {"$ref": "#/components/schemas/OptimadeLinksResponse"}}
            },
        }
    },
)
def optimade_links(request: Request) -> JSONAPIResponse:
    _check_params(request)
    return JSONAPIResponse(
        {"links": {"next": None}, "data": [], "meta": _meta(request, False, 0, 0)}
    )


@unversioned.get(
    "/versions",
    summary="OPTIMADE major versions served",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"}
    },
)
def optimade_versions() -> Response:
    return Response(f"version\n{API_VERSION_MAJOR}\n", media_type="text/csv; header=present")


@unversioned.get("/v{version}/{rest:path}", include_in_schema=False)
def optimade_unknown_version(request: Request, version: str, rest: str) -> JSONAPIResponse:
    if version == API_VERSION_MAJOR:  # a served version, an unknown path
        return error_response(request, 404, "Not Found", f"no endpoint /{rest}")
    return error_response(
        request,
        553,
        "Version Not Supported",
        f"version v{version} is not served; this server serves v{API_VERSION_MAJOR}",
    )


def optimade_schemas() -> dict[str, Any]:
    """JSON schemas of the OPTIMADE responses, for the app's OpenAPI components."""
    from optimade.models import (
        EntryInfoResponse,
        InfoResponse,
        LinksResponse,
        ReferenceResponseMany,
        ReferenceResponseOne,
        StructureResponseMany,
        StructureResponseOne,
    )
    from pydantic.json_schema import models_json_schema

    models = [
        StructureResponseMany,
        StructureResponseOne,
        ReferenceResponseMany,
        ReferenceResponseOne,
        InfoResponse,
        EntryInfoResponse,
        LinksResponse,
    ]
    _, top = models_json_schema(
        [(model, "serialization") for model in models],
        ref_template="#/components/schemas/Optimade{model}",
    )
    schemas = {f"Optimade{name}": s for name, s in top.get("$defs", {}).items()}
    schemas["OptimadeError"] = {
        "type": "object",
        "required": ["errors", "meta"],
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string"},
                        "title": {"type": "string"},
                        "detail": {"type": "string"},
                    },
                },
            },
            "meta": {"type": "object"},
        },
    }
    return schemas


def exception_handler(request: Request, exc: Exception) -> JSONAPIResponse:
    """OPTIMADE-format answer for errors raised under ``/optimade``."""
    if isinstance(exc, OptimadeError):
        return error_response(request, exc.status, exc.title, exc.detail)
    if isinstance(exc, OptimadeHTTPException):
        return error_response(request, exc.status_code, exc.title, str(exc.detail))
    if isinstance(exc, BadRequest):
        return error_response(request, 400, "Bad Request", str(exc))
    raise exc
