"""What every command shares: the consoles, progress output, common options, config loading."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from crossdock.text import literal

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console

    from crossdock.cli.progress_view import ProgressView
    from crossdock.config import Config
    from crossdock.errors import CrossdockError
    from crossdock.platform import Platform
    from crossdock.progress import Step

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
    "option_overrides",
    "out_console",
    "print_error",
    "progress",
]

# Progress and reports go to stderr, so --json output on stdout stays machine-readable.
# Widths are what the terminal says: its size, else COLUMNS, else 80 (rich's rule), so a CI log
# is never wider than its viewer; reports are written to read at 80 columns, and plain lines
# (digests, paths, references) are never cut or folded (soft_wrap), only wrapped by the viewer.


class _ConsoleOnFirstUse:
    """A rich ``Console`` made when first used: ``--help`` and ``--version`` print without
    importing rich's console (~30 ms). Use ``err_console``/``out_console`` as consoles."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made(), name)

    def made(self) -> Console:
        """The console itself: what needs more than attributes (rich's live display enters
        the console as a context manager, which a proxy cannot forward)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console


# Emoji codes off: ":smile:" in a name or a reference ("a:b:c") is printed as typed.
err_console = cast(
    "Console",
    _ConsoleOnFirstUse(stderr=True, soft_wrap=True, emoji=False),
)
out_console = cast(
    "Console",
    _ConsoleOnFirstUse(soft_wrap=True, emoji=False),
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


class _CommandProgress:
    """The running command's progress (a ``crossdock.progress.Progress``): live on a terminal,
    one line per step off it, quiet with ``--quiet``. Commands that show progress wrap their
    work in ``with progress.shown(quiet=...)``; outside it, notes print as plain lines."""

    def __init__(self) -> None:
        self._view: ProgressView | None = None

    def _current(self) -> ProgressView:
        if self._view is None:
            from crossdock.cli.progress_view import ProgressView

            self._view = ProgressView(_made(err_console), live=False)
        return self._view

    def __call__(self, platform: Platform | None, message: str, /) -> None:
        self._current()(platform, message)

    def start_step(self, platform: Platform | None, name: str, total: int | None) -> Step:
        return self._current().start_step(platform, name, total)

    @contextmanager
    def shown(self, *, quiet: bool = False) -> Iterator[None]:
        from crossdock.cli.progress_view import ProgressView

        previous = self._view
        view = ProgressView(_made(err_console), live=sys.stderr.isatty(), quiet=quiet)
        self._view = view
        try:
            with view:
                yield
        finally:
            self._view = previous


progress = _CommandProgress()


def _made(console: Console) -> Console:
    return console.made() if isinstance(console, _ConsoleOnFirstUse) else console


def print_error(err: CrossdockError) -> None:
    """``error: MESSAGE`` and its hint, each printed literally on one line."""
    # Newlines kept: a tool's own output (uv's) may be quoted; other controls are escaped.
    err_console.print(f"[red]error:[/] {literal(err.message, keep_newlines=True)}", highlight=False)
    if err.hint:
        err_console.print(f"  hint: {literal(err.hint)}", highlight=False)


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

    overrides = option_overrides(platform, target, base, **extra)
    return load_config(project_dir=project, service=service, overrides=overrides)
