"""The typer application every command module registers on, and ``crossdock version``."""

from __future__ import annotations

from typing import Annotated

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup

__all__ = ["app"]


class IndexedGroup(TyperGroup):
    """The root command group. Its help lists every command of ``COMMAND_INDEX``: the ones not
    registered in this process (their modules not imported, as for ``crossdock --help``) by
    their indexed help. Only registered commands run: ``main`` imports the module of the
    command it is asked for."""

    _listing = False

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def list_commands(self, ctx: _click.Context) -> list[str]:  # noqa: ARG002 - click's signature
        from crossdock.cli import COMMAND_INDEX

        return [*COMMAND_INDEX, *(name for name in self.commands if name not in COMMAND_INDEX)]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:  # noqa: ARG002
        from crossdock.cli import COMMAND_INDEX

        registered = self.commands.get(cmd_name)
        if registered is None and self._listing and cmd_name in COMMAND_INDEX:
            return TyperCommand(name=cmd_name, help=COMMAND_INDEX[cmd_name][1])
        return registered


app = typer.Typer(
    cls=IndexedGroup,
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
        from crossdock.cli.versions import version_lines

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
    from crossdock.cli.versions import version_lines

    for line in version_lines():
        typer.echo(line)
