"""The ``crossdock`` command line: thin wrappers that read options, call the library, and
render results for people (rich) or for CI (``--json``). One module per command group; each
registers its commands on ``app``."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from crossdock._version import __version__
from crossdock.cli.common import err_console, out_console
from crossdock.errors import CrossdockError, VerificationError

__all__ = ["app", "main"]

app = typer.Typer(
    name="crossdock",
    help="Build, verify and publish correct multi-architecture images for Python services.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print crossdock's version."""
    out_console.print(__version__)


def _register_commands() -> None:
    # Importing a command module registers its commands on ``app``.
    from crossdock.cli import (
        build_cmd,  # noqa: F401
        doctor_cmd,  # noqa: F401
        init_cmd,  # noqa: F401
        push_cmd,  # noqa: F401
        run_cmd,  # noqa: F401
        verify_cmd,  # noqa: F401
    )


def main() -> None:
    """Entry point: run the app, turning crossdock's errors into messages and exit codes."""
    _register_commands()
    try:
        app()
    except VerificationError as err:
        if err.report is not None and hasattr(err.report, "render"):
            err.report.render(err_console)
        err_console.print(f"[red]error:[/] {escape(str(err))}", highlight=False)
        sys.exit(err.exit_code)
    except CrossdockError as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", highlight=False)
        sys.exit(err.exit_code)
