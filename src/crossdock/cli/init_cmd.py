"""``crossdock init [DIR]``: scaffold the seed's layout (backend/<service>/, the three
Dockerfiles, the Makefile, scripts/docker-push.sh, crossdock.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossdock.cli import app
from crossdock.cli.common import err_console, out_console

__all__ = ["init"]


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new project.")] = Path(),
    service: Annotated[
        str, typer.Option("--service", "-s", help="The first service's folder under backend/.")
    ] = "api",
) -> None:
    """Create a project in DIR with one service, ready for `make docker-build`."""
    from crossdock.scaffold import write_project

    written = write_project(directory, service)
    for path in written:
        out_console.print(str(path), highlight=False)
    err_console.print(
        f"next: cd {directory} && uv lock --project backend/{service} && make docker-build",
        highlight=False,
    )
