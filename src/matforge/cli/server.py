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
    """List the users."""
    from matforge.server.auth import list_users
    from matforge.store import Store

    with Store(db) as store:
        for user in list_users(store.engine):
            typer.echo(user.name)


@token_app.command("new")
def token_new(
    user: str = typer.Argument(..., help="The user the token authenticates."),
    label: str = typer.Option("", "--label", help="What the token is for (kept with it)."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Make an API token and print it. It is shown only now: the store keeps its hash."""
    from matforge.server.auth import new_token
    from matforge.store import Store

    with Store(db) as store:
        token = new_token(store.engine, user, label)
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(
    user: str = typer.Argument(..., help="The user whose tokens stop working."),
    db: str | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Revoke every token of a user."""
    from matforge.server.auth import revoke_tokens
    from matforge.store import Store

    with Store(db) as store:
        n = revoke_tokens(store.engine, user)
    typer.echo(f"revoked {n} token(s) of {user}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``user`` and ``token`` groups to the top-level command."""
    app.command("serve")(serve)
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
