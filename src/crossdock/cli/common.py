"""What every command shares: the consoles, progress output, common options, config loading."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from crossdock.text import literal

if TYPE_CHECKING:
    from rich.console import Console

    from crossdock.config import Config
    from crossdock.errors import CrossdockError
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
    "print_error",
    "progress",
]

# Progress and reports go to stderr, so --json output on stdout stays machine-readable.
# Long lines (digests, references, paths in tables) must stay whole in CI logs, where rich would
# otherwise assume 80 columns: soft_wrap for plain lines, a wide width when not on a terminal.
_PIPE_WIDTH = 240


class _ConsoleOnFirstUse:
    """A rich ``Console`` made when first used: ``--help`` and ``--version`` print without
    importing rich's console (~30 ms). Use ``err_console``/``out_console`` as consoles."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


# Emoji codes off: ":smile:" in a name or a reference ("a:b:c") is printed as typed.
err_console = cast(
    "Console",
    _ConsoleOnFirstUse(
        stderr=True,
        soft_wrap=True,
        emoji=False,
        width=None if sys.stderr.isatty() else _PIPE_WIDTH,
    ),
)
out_console = cast(
    "Console",
    _ConsoleOnFirstUse(
        soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH
    ),
)

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


AllowOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow",
        help="Accept a known verification failure (glob on path, or CHECK:GLOB).",
        callback=_check_allow,
    ),
]


def progress(platform: Platform | None, message: str) -> None:
    """One progress line; ``message`` (which names images, paths, references) is printed
    literally."""
    where = f"[cyan]{literal(platform.architecture)}[/]" if platform else "[cyan]crossdock[/]"
    err_console.print(f"{where} {literal(message)}", highlight=False)


def print_error(err: CrossdockError) -> None:
    """``error: MESSAGE`` and its hint, each printed literally on one line."""
    # Newlines kept: a tool's own output (uv's) may be quoted; other controls are escaped.
    err_console.print(f"[red]error:[/] {literal(err.message, keep_newlines=True)}", highlight=False)
    if err.hint:
        err_console.print(f"  hint: {literal(err.hint)}", highlight=False)


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
    from crossdock.config import load_config

    return load_config(project_dir=project, service=service, overrides=overrides)
