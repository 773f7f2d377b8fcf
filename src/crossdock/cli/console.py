"""The consoles and the progress every command prints to, made on first use: importing this
imports neither typer nor rich (a build answered from its record prints through these before
either is loaded)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from crossdock.text import literal

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console

    from crossdock.cli.progress_view import ProgressView
    from crossdock.errors import CrossdockError
    from crossdock.platform import Platform
    from crossdock.progress import Step

__all__ = ["err_console", "out_console", "print_error", "progress"]

# Progress and reports go to stderr, so --json output on stdout stays machine-readable.
# Widths are what the terminal says: its size, else COLUMNS, else 80 (rich's rule), so a CI log
# is never wider than its viewer; reports are written to read at 80 columns, and plain lines
# (digests, paths, references) are never cut or folded (soft_wrap), only wrapped by the viewer.


class _ConsoleOnFirstUse:
    """A rich ``Console`` made when first used: ``--help`` and ``--version`` print without
    importing rich's console (~30 ms). Use ``err_console``/``out_console`` as consoles."""

    def __init__(self, **options: Any) -> None:
        self.made_with = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made(), name)

    def made(self) -> Console:
        """The console itself: what needs more than attributes (rich's live display enters
        the console as a context manager, which a proxy cannot forward)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self.made_with)
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


class _CommandProgress:
    """The running command's progress (a ``crossdock.progress.Progress``): live on a terminal,
    one line per step off it, quiet with ``--quiet``. Commands that show progress wrap their
    work in ``with progress.shown(quiet=...)``; outside it, notes print as plain lines."""

    def __init__(self) -> None:
        self._view: ProgressView | None = None

    def _current(self) -> ProgressView:
        if self._view is None:
            from crossdock.cli.progress_view import ProgressView

            self._view = ProgressView(lines_console(err_console), live=False)
        return self._view

    def __call__(self, platform: Platform | None, message: str, /) -> None:
        self._current()(platform, message)

    def start_step(self, platform: Platform | None, name: str, total: int | None) -> Step:
        return self._current().start_step(platform, name, total)

    @contextmanager
    def shown(self, *, quiet: bool = False) -> Iterator[None]:
        from crossdock.cli.progress_view import ProgressView

        previous = self._view
        live = sys.stderr.isatty()
        console = _made(err_console) if live else lines_console(err_console)
        view = ProgressView(console, live=live, quiet=quiet)
        self._view = view
        try:
            with view:
                yield
        finally:
            self._view = previous


progress = _CommandProgress()


def _made(console: Console) -> Console:
    return console.made() if isinstance(console, _ConsoleOnFirstUse) else console


def lines_console(console: Console) -> Console:
    """What prints plain lines (progress, ``--json``) on ``console`` (``err_console`` or
    ``out_console``): off a terminal a ``PlainConsole``, which writes what rich would without
    importing it (``crossdock.cli.plain_console``); rich's console otherwise, or when it is not
    one of these two."""
    if not isinstance(console, _ConsoleOnFirstUse):
        return console
    from crossdock.cli import plain_console

    stream = plain_console.stderr if console.made_with.get("stderr") else plain_console.stdout
    if plain_console.rich_sees_terminal(stream()):
        return console.made()
    # Typed as the console it stands in for: it has what the progress view and report use.
    return cast("Console", plain_console.PlainConsole(stream, console.made))


def print_error(err: CrossdockError) -> None:
    """``error: MESSAGE`` and its hint, each printed literally on one line."""
    # Newlines kept: crossdock's own lists (the tags a release would move, a target's problems)
    # take a line each; outside text is on one line already (crossdock.text.excerpt), and any
    # other control character is escaped here.
    err_console.print(f"[red]error:[/] {literal(err.message, keep_newlines=True)}", highlight=False)
    if err.hint:
        err_console.print(f"  hint: {literal(err.hint)}", highlight=False)
