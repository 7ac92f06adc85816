"""What every REST route shares: the server state, authentication, errors and id decoding."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from matforge.errors import ApiError
from matforge.server import access
from matforge.server.auth import TokenRefused, User, check_token
from matforge.server.generating import Generators
from matforge.server.ids import IdCodec
from matforge.server.jobs import JobRunner
from matforge.server.schemas import ErrorOut
from matforge.server.settings import ServerSettings
from matforge.server.training import ModelCache
from matforge.store import Store
from matforge.store.repositories import Connection, Engine
from matforge.store.repositories.systems import ChemicalSystems
from matforge.xrd.classifier_cache import ClassifierCache

bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `matforge token new USER`, as `Authorization: Bearer <token>`.",
)


def not_found(what: str = "resource") -> ApiError:
    """The one answer for both "does not exist" and "exists but is not yours"."""
    return ApiError(404, f"{what} not found")


_DESCRIPTIONS = {
    400: "The request is well-formed but its content is invalid (bad rows, units, formulas).",
    401: "Missing, malformed, unknown, revoked or expired API token, or a disabled user.",
    403: "The project is visible to the caller, but the caller's role does not allow this.",
    404: "No such resource visible to the caller.",
    409: "Conflicts with the current state (a name in use, a model not trained yet).",
    413: "The request body or upload is larger than the server's limits.",
    422: "The request does not match the schema (types, lengths, ranges).",
}
#: Documented error responses of the authenticated REST routes.
ERROR_RESPONSES = {
    code: {"model": ErrorOut, "description": text} for code, text in _DESCRIPTIONS.items()
}


@dataclass
class ServerState:
    """Everything the routes of one app share."""

    store: Store
    codec: IdCodec
    settings: ServerSettings
    jobs: JobRunner
    models: ModelCache
    systems: ChemicalSystems
    #: the shipped generators and the known-composition corpus, loaded on first use
    generators: Generators = field(default_factory=Generators)
    #: the XRD classifiers loaded so far, by weights file (loaded on first use)
    xrd_classifiers: ClassifierCache = field(default_factory=ClassifierCache)

    @property
    def engine(self) -> Engine:
        return self.store.engine


async def get_state(request: Request) -> ServerState:
    # async: FastAPI runs a plain-def dependency on a worker thread, a hop per request for
    # what is an attribute lookup
    return request.app.state.matforge


State = Annotated[ServerState, Depends(get_state)]


def _user_from(state: ServerState, creds: HTTPAuthorizationCredentials | None) -> User:
    if creds is None:
        raise ApiError(401, "missing API token: send 'Authorization: Bearer <token>'")
    try:
        return check_token(state.engine, creds.credentials)
    except TokenRefused as exc:  # unknown, revoked, expired or its user disabled: it says which
        raise ApiError(401, str(exc)) from None


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def _query_names(dependant) -> frozenset[str]:
    """Names of every query parameter a route (and its dependencies) declares."""
    names = _QUERY_NAMES.get(id(dependant))
    if names is None:
        found, stack = set(), [dependant]
        while stack:
            d = stack.pop()
            found.update(f.alias for f in d.query_params)
            stack.extend(d.dependencies)
        names = _QUERY_NAMES[id(dependant)] = frozenset(found)
    return names


def check_query(request: Request) -> None:
    """400 for query parameters the route does not take: ``?element=Fe`` is a typo to report,
    not a filter to ignore silently."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    unknown = sorted(set(request.query_params) - _query_names(dependant))
    if unknown:
        raise ApiError(400, f"unknown query parameter(s) {unknown}; see /docs for this endpoint's")


def current_user(
    request: Request,
    state: State,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The caller; 401 without a valid token (then 400 for unknown query parameters)."""
    user = _user_from(state, creds)
    check_query(request)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def decode(state: ServerState, kind: str, public_id: str, what: str) -> int:
    """Row id behind a public id; 404 for anything that is not one."""
    row_id = state.codec.decode(kind, public_id)
    if row_id is None:
        raise not_found(what)
    return row_id


def project_role(conn: Connection, user: User, project_id: int, needed: str = "viewer") -> str:
    """The caller's role in a project; 404 if they cannot see it, 403 if the role is too low."""
    role = access.roles(conn, user).get(project_id)
    if role is None:
        raise not_found("project")
    if not access.at_least(role, needed):
        raise ApiError(403, f"this needs the {needed} role in the project; you are {role}")
    return role


def utc(dt: datetime | None) -> datetime | None:
    """A stored timestamp as aware UTC (SQLite returns naive ones, written as UTC)."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def elements_list(text: str) -> list[str]:
    """``"-Fe-O-"`` → ``["Fe", "O"]``."""
    return [e for e in text.split("-") if e]
