"""Projects: create, list, read, change visibility, members, datasets."""

from __future__ import annotations

import sqlalchemy as sa
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
from matforge.store import accounts, schema
from matforge.store.database import write_transaction

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


def _select_projects(ids: list[int]):
    p, pa, u = schema.projects, accounts.project_access, accounts.users
    m, d = schema.measurements, schema.datasets
    n = (
        sa.select(sa.func.count())
        .select_from(m.join(d, m.c.dataset_id == d.c.id))
        .where(d.c.project_id == p.c.id)
        .scalar_subquery()
    )
    return (
        sa.select(
            p.c.id,
            p.c.name,
            p.c.description,
            p.c.created_at,
            pa.c.visibility,
            u.c.name.label("owner"),
            n.label("n_measurements"),
        )
        .join_from(p, pa, pa.c.project_id == p.c.id)
        .join(u, pa.c.owner_id == u.c.id)
        .where(p.c.id.in_(ids))
        .order_by(p.c.name)
    )


def _one(state: ServerState, conn: sa.Connection, user: User, project_id: int) -> ProjectOut:
    role = project_role(conn, user, project_id)
    row = conn.execute(_select_projects([project_id])).one()
    return _project_out(state, row, role)


@router.post("/projects", status_code=201, response_model=ProjectOut)
def create_project(body: ProjectCreate, state: State, user: CurrentUser) -> ProjectOut:
    """Create a project owned by the caller."""
    p = schema.projects
    now = clock.now()
    full = store_name(user.name, body.name)
    taken = ApiError(409, f"you already have a project named {body.name!r}")
    try:
        with write_transaction(state.engine) as conn:
            if conn.execute(sa.select(p.c.id).where(p.c.name == full)).first() is not None:
                raise taken
            pid = conn.execute(
                sa.insert(p).values(name=full, description=body.description, created_at=now)
            ).inserted_primary_key[0]
            conn.execute(
                sa.insert(accounts.project_access).values(
                    project_id=pid, owner_id=user.id, visibility=body.visibility, updated_at=now
                )
            )
            conn.execute(
                sa.insert(accounts.project_members).values(
                    project_id=pid, user_id=user.id, role="owner", created_at=now
                )
            )
    except sa.exc.IntegrityError:  # the same name created concurrently
        raise taken from None
    with state.engine.connect() as conn:
        return _one(state, conn, user, pid)


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(state: State, user: CurrentUser) -> list[ProjectOut]:
    """Projects the caller can read: their own, those shared with them, and public ones."""
    with state.engine.connect() as conn:
        roles = access.roles(conn, user)
        rows = conn.execute(_select_projects(list(roles))).all() if roles else []
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
        if body.description is not None:
            conn.execute(
                sa.update(schema.projects)
                .where(schema.projects.c.id == pid)
                .values(description=body.description)
            )
        if body.visibility is not None:
            pa = accounts.project_access
            conn.execute(
                sa.update(pa)
                .where(pa.c.project_id == pid)
                .values(visibility=body.visibility, updated_at=clock.now())
            )
    with state.engine.connect() as conn:
        return _one(state, conn, user, pid)


@router.get("/projects/{project_id}/members", response_model=list[MemberOut])
def list_members(project_id: str, state: State, user: CurrentUser) -> list[MemberOut]:
    pid = decode(state, "project", project_id, "project")
    pm, u = accounts.project_members, accounts.users
    with state.engine.connect() as conn:
        project_role(conn, user, pid)
        rows = conn.execute(
            sa.select(u.c.name, pm.c.role)
            .join_from(pm, u, pm.c.user_id == u.c.id)
            .where(pm.c.project_id == pid)
            .order_by(u.c.name)
        ).all()
    return [MemberOut(user=r.name, role=r.role) for r in rows]


def _owners(conn: sa.Connection, pid: int) -> list[int]:
    pm = accounts.project_members
    return list(
        conn.execute(
            sa.select(pm.c.user_id).where(pm.c.project_id == pid, pm.c.role == "owner")
        ).scalars()
    )


@router.put("/projects/{project_id}/members/{user_name}", response_model=MemberOut)
def set_member(
    project_id: str, user_name: UserName, body: MemberSet, state: State, user: CurrentUser
) -> MemberOut:
    """Give ``user_name`` a role in the project (owners only). Sharing a private project
    makes it ``shared``."""
    pid = decode(state, "project", project_id, "project")
    pm, pa, u = accounts.project_members, accounts.project_access, accounts.users
    with write_transaction(state.engine) as conn:
        project_role(conn, user, pid, "owner")
        member = conn.execute(sa.select(u.c.id).where(u.c.name == user_name)).scalar()
        if member is None:
            raise not_found("user")
        if body.role != "owner" and _owners(conn, pid) == [member]:
            raise ApiError(409, "a project needs an owner: add another owner first")
        exists = conn.execute(
            sa.select(pm.c.role).where(pm.c.project_id == pid, pm.c.user_id == member)
        ).first()
        if exists is None:
            conn.execute(
                sa.insert(pm).values(
                    project_id=pid, user_id=member, role=body.role, created_at=clock.now()
                )
            )
        else:
            conn.execute(
                sa.update(pm)
                .where(pm.c.project_id == pid, pm.c.user_id == member)
                .values(role=body.role)
            )
        if member != user.id:
            conn.execute(
                sa.update(pa)
                .where(pa.c.project_id == pid, pa.c.visibility == "private")
                .values(visibility="shared", updated_at=clock.now())
            )
    return MemberOut(user=user_name, role=body.role)


@router.delete(
    "/projects/{project_id}/members/{user_name}", status_code=204, response_class=Response
)
def remove_member(
    project_id: str, user_name: UserName, state: State, user: CurrentUser
) -> Response:
    """Take ``user_name`` off the project (owners only; the last owner stays)."""
    pid = decode(state, "project", project_id, "project")
    pm, u = accounts.project_members, accounts.users
    with write_transaction(state.engine) as conn:
        project_role(conn, user, pid, "owner")
        member = conn.execute(sa.select(u.c.id).where(u.c.name == user_name)).scalar()
        if member is None:
            raise not_found("user")
        if _owners(conn, pid) == [member]:
            raise ApiError(409, "a project needs an owner: add another owner first")
        conn.execute(sa.delete(pm).where(pm.c.project_id == pid, pm.c.user_id == member))
    return Response(status_code=204)


@router.get("/projects/{project_id}/datasets", response_model=list[DatasetOut])
def list_datasets(project_id: str, state: State, user: CurrentUser) -> list[DatasetOut]:
    """Every write to the project (uploads, JSON batches), oldest first, with provenance."""
    pid = decode(state, "project", project_id, "project")
    d = schema.datasets
    with state.engine.connect() as conn:
        project_role(conn, user, pid)
        rows = conn.execute(sa.select(d).where(d.c.project_id == pid).order_by(d.c.id)).all()
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
