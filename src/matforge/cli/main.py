"""Entry point of the `matforge` command.

Only Typer is imported here; every command imports the heavy libraries it needs inside its
body, so `matforge --help` stays fast.
"""

from __future__ import annotations

import re
import sys

import typer

from matforge import __version__
from matforge.errors import MatforgeError

app = typer.Typer(
    name="matforge",
    help="Open, local-first platform for AI-driven materials discovery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"matforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    plain: bool = typer.Option(
        False,
        "--plain",
        help="Print tables as tab-separated values, as when the output is piped.",
    ),
) -> None:
    """matforge: keep materials data, learn property models, screen and design materials."""
    from matforge.cli.tables import set_plain

    _one_line_warnings()
    set_plain(plain)


#: numpy's notes on reductions over all-NaN or empty slices: matforge handles the NaN it gets
_HARMLESS = r"All-NaN (slice|axis) encountered|Mean of empty slice|Degrees of freedom <= 0"


def _one_line_warnings() -> None:
    """Warnings as one line each on stderr: ``warning: ...`` for matforge's own, ``warning
    (pymatgen): ...`` for a library's (its first line); libraries' deprecation notices and
    numpy's notes on all-NaN slices, which say nothing to a user, are silenced."""
    import warnings

    from matforge.errors import MatforgeWarning

    def show(message, category, filename, lineno, file=None, line=None):
        lines = str(message).strip().splitlines() or [category.__name__]
        if issubclass(category, MatforgeWarning):
            where = ""
        else:
            parts = re.split(r"[\\/]", str(filename))
            lib = next((parts[i + 1] for i, p in enumerate(parts[:-1]) if p == "site-packages"),
                       None)  # fmt: skip
            where = f" ({lib})" if lib else ""
        typer.secho(f"warning{where}: {lines[0]}", err=True, fg=typer.colors.YELLOW)

    warnings.showwarning = show
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("ignore", _HARMLESS, RuntimeWarning)


def _register() -> None:
    # Each command module imports only Typer at module level; the work happens in the commands.
    from matforge.cli import (
        campaign,
        campaign_benchmark,
        catalysis,
        datasets,
        demo,
        generate,
        models,
        screen,
        server,
        store,
        structures,
        xrd,
    )

    app.add_typer(datasets.app, name="datasets")
    store.register(app)
    structures.register(app)  # ingest-structures, export-structures
    models.register(app)  # train, predict, benchmark (group), report (group)
    models.benchmark_app.command("xrd")(xrd.benchmark_command)
    models.benchmark_app.command("campaign")(campaign_benchmark.benchmark_command)
    models.benchmark_app.command("generate")(generate.benchmark_command)
    app.add_typer(campaign.app, name="campaign")
    app.add_typer(generate.app, name="generate")
    screen.register(app)  # screen (group), map
    demo.app.command("superhard")(screen.superhard_command)
    demo.app.command("catalysis")(catalysis.demo_command)
    app.add_typer(demo.app, name="demo")
    app.add_typer(catalysis.app, name="catalysis")
    app.add_typer(xrd.app, name="xrd")
    server.register(app)  # serve, user, token


def _help_text(text):
    """A docstring as help for a terminal: reST literals (````x````) and rich escapes
    (``\\[``) made plain."""
    if not isinstance(text, str):  # None, or typer's placeholder of an unset value
        return text
    return re.sub(r"``(.+?)``", r"\1", text).replace("\\[", "[")


def _plain_help(group: typer.Typer) -> None:
    """Plain-text help (click's formatter) for ``group`` and everything under it.

    Rich's boxed help keeps every line break of a docstring and squeezes option help into a
    narrow column at 80 columns; click's reflows paragraphs to the terminal. Docstrings are
    written once, for both readers, so their reST markup is removed here.
    """
    group.rich_markup_mode = None
    for info in group.registered_commands:
        info.help = _help_text(info.help or (info.callback.__doc__ if info.callback else None))
    for info in group.registered_groups:
        info.help = _help_text(info.help)
        _plain_help(info.typer_instance)
    if group.info.help:
        group.info.help = _help_text(group.info.help)


_register()
_plain_help(app)


def run() -> None:
    """Console-script entry: a MatforgeError becomes a one-line message and exit status 2.

    Usage errors are left to Typer's standalone mode (exit status 2 with the usage line).
    """
    try:
        app()
    except MatforgeError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)
