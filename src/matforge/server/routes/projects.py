"""Projects: create, list, read, change visibility, members, datasets."""

from __future__ import annotations

from fastapi import APIRouter, Response

from matforge.server import access, clock
from matforge.server.api import (
    ERROR_RESPONSES,
    ApiError,
    CurrentUser,
    ServerState,
    State,
    decode,
    not_found,
    project_role,
    utc,
)
from matforge.server.auth import User
from matforge.server.schemas import (
    DatasetOut,
    MemberOut,
    MemberSet,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
    UserName,
)
from matforge.store.database import write_transaction
from matforge.store.repositories import Connection, IntegrityError
from matforge.store.repositories import projects as repo

router = APIRouter(tags=["projects"], responses=ERROR_RESPONSES)


def store_name(owner: str, name: str) -> str:
    """The store's name of a server project: ``owner/name`` (names are unique per owner)."""
    return f"{owner}/{name}"


def _project_out(state: ServerState, row, role: str) -> ProjectOut:
    return ProjectOut(
        id=state.codec.encode("project", row.id),
        name=row.name.partition("/")[2] or row.name,
        owner=row.owner,
        description=row.description,
        visibility=row.visibility,
        role=role,
        created_at=utc(row.created_at),
        n_measurements=row.n_measurements,
    )


def _one(state: ServerState, conn: Connection, user: User, project_id: int) -> ProjectOut:
    role = project_role(conn, user, project_id)
    row = repo.one_with_access(conn, project_id)
    return _project_out(state, row, role)


@router.post("/projects", status_code=201, response_model=ProjectOut)
def create_project(body: ProjectCreate, state: State, user: CurrentUser) -> ProjectOut:
    """Create a project owned by the caller."""
    now = clock.now()
    full = store_name(user.name, body.name)
    taken = ApiError(409, f"you already have a project named {body.name!r}")
    try:
        with write_transaction(state.engine) as conn:
            pid = repo.create(
                conn,
                full,
                body.description,
                owner_id=user.id,
                visibility=body.visibility,
                now=now,
            )
            if pid is None:
                raise taken
    except IntegrityError:  # the same name created concurrently
        raise taken from None
    with state.engine.connect() as conn:
        return _one(state, conn, user, pid)


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(state: State, user: CurrentUser) -> list[ProjectOut]:
    """Projects the caller can read: their own, those shared with them, and public ones."""
    with state.engine.connect() as conn:
        roles = access.roles(conn, user)
        rows = repo.with_access(conn, list(roles))
    return [_project_out(state, r, roles[r.id]) for r in rows]


@router.get("/projects/{project_id}", response_model=ProjectOut)
def get_project(project_id: str, state: State, user: CurrentUser) -> ProjectOut:
    pid = decode(state, "project", project_id, "project")
    with state.engine.connect() as conn:
        return _one(state, conn, user, pid)


@router.patch("/projects/{project_id}", response_model=ProjectOut)
def update_project(
    project_id: str, body: ProjectUpdate, state: State, user: CurrentUser
) -> ProjectOut:
    """Change the description or the visibility (owners only)."""
    pid = decode(state, "project", project_id, "project")
    with write_transaction(state.engine) as conn:
        project_role(conn, user, pid, "owner")
        repo.update(
            conn, pid, description=body.description, visibility=body.visibility, now=clock.now()
        )
    with state.engine.connect() as conn:
        return _one(state, conn, user, pid)


@router.get("/projects/{project_id}/members", response_model=list[MemberOut])
def list_members(project_id: str, state: State, user: CurrentUser) -> list[MemberOut]:
    pid = decode(state, "project", project_id, "project")
    with state.engine.connect() as conn:
        project_role(conn, user, pid)
        rows = repo.members(conn, pid)
    return [MemberOut(user=r.name, role=r.role) for r in rows]


@router.put("/projects/{project_id}/members/{user_name}", response_model=MemberOut)
def set_member(
    project_id: str, user_name: UserName, body: MemberSet, state: State, user: CurrentUser
) -> MemberOut:
    """Give ``user_name`` a role in the project (owners only). Sharing a private project
    makes it ``shared``."""
    pid = decode(state, "project", project_id, "project")
    with write_transaction(state.engine) as conn:
        project_role(conn, user, pid, "owner")
        member = repo.user_id(conn, user_name)
        if member is None:
            raise not_found("user")
        if body.role != "owner" and repo.owners(conn, pid) == [member]:
            raise ApiError(409, "a project needs an owner: add another owner first")
        repo.set_member(conn, pid, member, body.role, clock.now())
        if member != user.id:
            repo.share(conn, pid, clock.now())
    return MemberOut(user=user_name, role=body.role)


@router.delete(
    "/projects/{project_id}/members/{user_name}", status_code=204, response_class=Response
)
def remove_member(
    project_id: str, user_name: UserName, state: State, user: CurrentUser
) -> Response:
    """Take ``user_name`` off the project (owners only; the last owner stays)."""
    pid = decode(state, "project", project_id, "project")
    with write_transaction(state.engine) as conn:
        project_role(conn, user, pid, "owner")
        member = repo.user_id(conn, user_name)
        if member is None:
            raise not_found("user")
        if repo.owners(conn, pid) == [member]:
            raise ApiError(409, "a project needs an owner: add another owner first")
        repo.remove_member(conn, pid, member)
    return Response(status_code=204)


@router.get("/projects/{project_id}/datasets", response_model=list[DatasetOut])
def list_datasets(project_id: str, state: State, user: CurrentUser) -> list[DatasetOut]:
    """Every write to the project (uploads, JSON batches), oldest first, with provenance."""
    pid = decode(state, "project", project_id, "project")
    with state.engine.connect() as conn:
        project_role(conn, user, pid)
        rows = repo.datasets(conn, pid)
    return [
        DatasetOut(
            id=state.codec.encode("dataset", r.id),
            project_id=project_id,
            name=r.name,
            source=r.source,
            n_rows=r.n_rows,
            created_at=utc(r.created_at),
            created_by=r.created_by,
        )
        for r in rows
    ]
