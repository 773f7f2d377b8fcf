"""``crossdock init [DIR]``: scaffold a project: ``--layout seed`` (backend/<service>/, the three
Dockerfiles, the Makefile, scripts/docker-push.sh, crossdock.toml) or ``--layout single`` (one uv
project that is the service)."""

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
        str | None,
        typer.Option(
            "--service",
            "-s",
            help="The service's name: its folder under backend/ (seed), or the project's name "
            "(single; default: the folder's name).",
        ),
    ] = None,
    layout: Annotated[
        str,
        typer.Option(
            "--layout",
            help="seed: backend/<service>/ with the Dockerfiles and Makefile; single: one uv "
            "project that is the service.",
        ),
    ] = "seed",
) -> None:
    """Create a project in DIR with one service."""
    from crossdock.scaffold import EXAMPLE_SERVICE, write_project

    if service is None:
        folder = directory.resolve().name
        service = folder if layout == "single" and folder.islower() else EXAMPLE_SERVICE
    written = write_project(directory, service, layout)
    for path in written:
        out_console.print(str(path), highlight=False)
    if layout == "single":
        hint = f"next: cd {directory} && uv lock && crossdock build --oci-layout out"
    else:
        hint = f"next: cd {directory} && uv lock --project backend/{service} && make docker-build"
    err_console.print(hint, highlight=False)
