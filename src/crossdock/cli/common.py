"""What every command shares: the consoles, progress output, common options, config loading."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from crossdock.config import Config, load_config
from crossdock.platform import Platform

__all__ = [
    "AllowOpt",
    "BaseOpt",
    "JsonOpt",
    "PlatformOpt",
    "ProjectOpt",
    "ServiceOpt",
    "TargetOpt",
    "err_console",
    "load",
    "out_console",
    "progress",
]

# Progress and reports go to stderr, so --json output on stdout stays machine-readable.
# soft_wrap: long lines (digests, references) stay whole when the output is not a terminal.
err_console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True)

ProjectOpt = Annotated[
    Path,
    typer.Option("--project", "-C", help="Project folder (holding crossdock.toml or backend/)."),
]
ServiceOpt = Annotated[
    str | None,
    typer.Option(
        "--service",
        "-s",
        envvar="SERVICE_FOLDER",
        help="Service folder under backend/ (the seed's SERVICE_FOLDER).",
    ),
]
PlatformOpt = Annotated[
    list[str] | None,
    typer.Option("--platform", "-p", help="linux/arm64, linux/amd64 (repeat or comma-separate)."),
]
TargetOpt = Annotated[str | None, typer.Option("--target", "-t", help="lambda, apprunner or eks.")]
BaseOpt = Annotated[str | None, typer.Option("--base", help="Base image reference.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
AllowOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow", help="Accept a known verification failure (glob on path, or CHECK:GLOB)."
    ),
]


def progress(platform: Platform | None, message: str) -> None:
    where = f"[cyan]{platform.architecture}[/]" if platform else "[cyan]crossdock[/]"
    err_console.print(f"{where} {message}", highlight=False)


def load(
    project: Path,
    service: str | None,
    platform: list[str] | None,
    target: str | None,
    base: str | None,
    **extra: Any,
) -> Config:
    overrides: dict[str, Any] = {
        "platforms": ",".join(platform) if platform else None,
        "target": target,
        "base": base,
        **extra,
    }
    return load_config(project_dir=project, service=service, overrides=overrides)
