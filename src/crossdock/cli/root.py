"""The typer application every command module registers on, and ``crossdock version``."""

from __future__ import annotations

from typing import Annotated

import typer

from crossdock.cli.versions import version_lines

__all__ = ["app"]

app = typer.Typer(
    name="crossdock",
    help="Build, verify and publish correct multi-architecture images for Python services.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich-formatted help imports rich's tables and panels, which doubles the start-up
    # time of `crossdock --help` (about 0.07 s of CPU without them, 0.17 s with them).
    rich_markup_mode=None,
)


def _print_versions(value: bool) -> None:
    if value:
        for line in version_lines():
            typer.echo(line)
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            callback=_print_versions,
            is_eager=True,
            help="Print crossdock's, uv's and Python's versions and exit.",
        ),
    ] = None,
) -> None:
    """Build, verify and publish correct multi-architecture images for Python services."""


@app.command()
def version() -> None:
    """Print crossdock's version, and the uv and Python it runs with."""
    for line in version_lines():
        typer.echo(line)
