"""`matforge serve`, `matforge user` and `matforge token`: run the server, manage its accounts."""

from __future__ import annotations

import typer

_DB_HELP = (
    "Store: a SQLite path or SQLAlchemy URL (default: $MATFORGE_DB or ~/.matforge/matforge.db)."
)

user_app = typer.Typer(help="Accounts of the matforge server.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens of the matforge server.", no_args_is_help=True)


def _check_port(host: str, port: int) -> None:
    """Refuse a port that cannot be listened on (another server on it) before announcing a
    server that would then fail to start."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # as uvicorn binds: a port left in TIME_WAIT is free, one with a listener is not
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise typer.BadParameter(
                f"cannot listen on {host}:{port}: {e.strerror or e} (is another server running "
                "there? choose another --port)",
                param_hint="--port",
            ) from None


def serve(
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Server processes (each with its own job threads)."
    ),
    job_workers: int = typer.Option(
        2, "--job-workers", min=1, max=64, help="Threads running background jobs, per process."
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the REST API (/api/v1, docs at /docs) and OPTIMADE (/optimade) over the store."""
    import os

    import uvicorn

    from matforge.server import ServerSettings, create_app
    from matforge.store.database import resolve_url

    _check_port(host, port)
    typer.echo(f"matforge server on http://{host}:{port}  (API docs: /docs, OPTIMADE: /optimade)")
    if workers == 1:
        app = create_app(db, ServerSettings.from_env(job_workers=job_workers))
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    # Several processes: each builds its app from the environment (uvicorn imports a factory).
    os.environ["MATFORGE_DB"] = resolve_url(db)
    os.environ["MATFORGE_SERVER_JOB_WORKERS"] = str(job_workers)
    create_app(db).state.matforge.store.close()  # migrate once, before the workers start
    uvicorn.run(
        "matforge.server.app:app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
    )


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="User name: letters, digits, '.', '_', '-'."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Create a user (then give them a token with `matforge token new NAME`)."""
    from matforge.server.auth import add_user
    from matforge.store import Store

    with Store(db) as store:
        add_user(store.engine, name)
    typer.echo(f"user {name} created")


@user_app.command("list")
def user_list(db: str | None = typer.Option(None, "--db", help=_DB_HELP)) -> None:
    """List the users (a disabled one is marked so)."""
    from matforge.server.auth import is_disabled, list_users
    from matforge.store import Store

    with Store(db) as store:
        for user in list_users(store.engine):
            disabled = is_disabled(store.engine, user.name)
            typer.echo(f"{user.name}\tdisabled" if disabled else user.name)


def _set_disabled(name: str, db: str | None, disabled: bool) -> None:
    from matforge.server.auth import set_user_disabled
    from matforge.store import Store

    with Store(db) as store:
        set_user_disabled(store.engine, name, disabled)


@user_app.command("disable")
def user_disable(
    name: str = typer.Argument(..., help="The user to lock out."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Refuse every token of a user from the next request on (their projects, data and tokens
    are kept; `matforge user enable` lets them in again)."""
    _set_disabled(name, db, True)
    typer.echo(f"user {name} disabled: every token of theirs is refused")


@user_app.command("enable")
def user_enable(
    name: str = typer.Argument(..., help="The user to let in again."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Accept a disabled user's tokens again (those not revoked or expired)."""
    _set_disabled(name, db, False)
    typer.echo(f"user {name} enabled")


@token_app.command("new")
def token_new(
    user: str = typer.Argument(..., help="The user the token authenticates."),
    label: str = typer.Option("", "--label", help="What the token is for (kept with it)."),
    expires: str | None = typer.Option(
        None,
        "--expires",
        help="Refuse the token after this long: days, hours or minutes, e.g. 90d, 12h, 30m "
        "(default: never).",
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Make an API token and print it. It is shown only now: the store keeps its hash."""
    from matforge.server.auth import AccountError, new_token, parse_duration
    from matforge.store import Store

    try:
        expires_in = None if expires is None else parse_duration(expires)
    except AccountError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from None
    with Store(db) as store:
        token = new_token(store.engine, user, label, expires_in)
    typer.echo(token)


def _when(dt) -> str:
    return "-" if dt is None else f"{dt:%Y-%m-%d %H:%M}Z"


@token_app.command("list")
def token_list(
    user: str = typer.Argument(..., help="The user whose tokens to list."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """A user's tokens, never their secrets: id (for `matforge token revoke ID`), state
    (active, expired, revoked), created, expires, last used (to 5 minutes), revoked, label.
    Times are UTC."""
    from matforge.server.auth import list_tokens
    from matforge.store import Store

    with Store(db) as store:
        tokens = list_tokens(store.engine, user)
    if not tokens:
        typer.echo(f"{user} has no tokens; make one with `matforge token new {user}`")
        return
    typer.echo("id\tstate\tcreated\texpires\tlast used\trevoked\tlabel")
    for t in tokens:
        typer.echo(
            "\t".join(
                [
                    str(t.id),
                    t.state(),
                    _when(t.created_at),
                    "never" if t.expires_at is None else _when(t.expires_at),
                    _when(t.last_used_at),
                    _when(t.revoked_at),
                    t.label,
                ]
            )
        )


@token_app.command("revoke")
def token_revoke(
    target: str | None = typer.Argument(
        None,
        help="A token id (from `matforge token list USER`), or a user name: all of their tokens.",
        metavar="ID|USER",
    ),
    user: str | None = typer.Option(
        None, "--user", help="Revoke every token of this user (for a user named by digits)."
    ),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Revoke one token by its id, or every token of a user."""
    from matforge.server.auth import revoke_token, revoke_tokens
    from matforge.store import Store

    if (target is None) == (user is None):
        raise typer.BadParameter("give a token id, or a user with --user (not both)")
    with Store(db) as store:
        if target is not None and target.isdigit():
            info = revoke_token(store.engine, int(target))
            label = f" ({info.label})" if info.label else ""
            typer.echo(f"token {info.id}{label} of {info.user} revoked")
            return
        name = user if user is not None else target
        n = revoke_tokens(store.engine, name)
    typer.echo(f"revoked {n} token(s) of {name}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``user`` and ``token`` groups to the top-level command."""
    app.command("serve")(serve)
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
