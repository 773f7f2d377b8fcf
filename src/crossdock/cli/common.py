"""What every command shares: the common options, config loading, and (from ``console``) the
consoles and progress output."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crossdock.cli.console import err_console, out_console, print_error, progress

if TYPE_CHECKING:
    from crossdock.config import Config

__all__ = [
    "AllowOpt",
    "BaseOpt",
    "JsonOpt",
    "PlatformOpt",
    "ProjectOpt",
    "QuietOpt",
    "ServiceOpt",
    "TargetOpt",
    "VerboseOpt",
    "err_console",
    "load",
    "load_arguments",
    "option_overrides",
    "out_console",
    "print_error",
    "progress",
]

ProjectOpt = Annotated[
    Path,
    typer.Option(
        "--project",
        "-C",
        help="Where to look for the project, as uv does (a uv project or workspace, or a folder "
        "holding crossdock.toml or backend/).",
    ),
]
ServiceOpt = Annotated[
    str | None,
    typer.Option(
        "--service",
        "--package",
        "-s",
        envvar="SERVICE_FOLDER",
        help="The service: a folder under backend/ (the seed's SERVICE_FOLDER) or a uv "
        "workspace member; a single uv project is its own service.",
    ),
]
PlatformOpt = Annotated[
    list[str] | None,
    typer.Option("--platform", "-p", help="linux/arm64, linux/amd64 (repeat or comma-separate)."),
]
TargetOpt = Annotated[str | None, typer.Option("--target", "-t", help="lambda, apprunner or eks.")]
BaseOpt = Annotated[str | None, typer.Option("--base", help="Base image reference.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _check_allow(value: list[str] | None) -> list[str] | None:
    """Malformed --allow rules are refused before any work, not after a build."""
    if value:
        from crossdock.verify.report import AllowRule

        for text in value:
            AllowRule.parse(text)
    return value


QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress; warnings, errors and results only.")
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="The full report (every wheel and layer).")
]
AllowOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow",
        help="Accept a known verification failure (glob on path, or CHECK:GLOB).",
        callback=_check_allow,
    ),
]


def option_overrides(
    platform: list[str] | None, target: str | None, base: str | None, **extra: Any
) -> dict[str, Any]:
    """The options every project command takes, as config overrides (None: not given, so a
    lower layer decides)."""
    return {
        "platforms": ",".join(platform) if platform else None,
        "target": target,
        "base": base,
        **extra,
    }


def load(
    project: Path,
    service: str | None,
    platform: list[str] | None,
    target: str | None,
    base: str | None,
    **extra: Any,
) -> Config:
    from crossdock.config import load_config

    return load_config(**load_arguments(project, service, platform, target, base, **extra))


def load_arguments(
    project: Path,
    service: str | None,
    platform: list[str] | None,
    target: str | None,
    base: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """``load_config``'s arguments for the common options (and ``extra`` overrides)."""
    overrides = option_overrides(platform, target, base, **extra)
    return {"project_dir": project, "service": service, "overrides": overrides}
