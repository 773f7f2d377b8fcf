"""How progress looks, the way docker and uv show it.

* On a terminal: a live line per running step and platform (spinner, bytes and rate when the
  step moves bytes, elapsed time); a finished step collapses to one summary line.
* Off a terminal (CI logs): one line per finished step, with its duration; no redraws.
* ``--quiet``: warnings only.

Everything goes to stderr, so ``--json`` output on stdout stays the only thing there. rich's
live display is imported only when a terminal shows it.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from crossdock.text import literal

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from crossdock.platform import Platform
    from crossdock.progress import Step

__all__ = ["ProgressView", "human_bytes"]


def human_bytes(size: float) -> str:
    """1536 -> "1.5 KiB": short enough for an 80-column line."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _where(platform: Platform | None) -> str:
    return platform.architecture if platform is not None else "crossdock"


class ProgressView:
    """A ``crossdock.progress.Progress`` that draws on ``console`` (stderr)."""

    def __init__(self, console: Console, *, live: bool, quiet: bool = False) -> None:
        self.console = console
        self.live = live and not quiet
        self.quiet = quiet
        self._lock = threading.Lock()
        self._bars: RichProgress | None = None

    # -- the display's lifetime -----------------------------------------------------------

    def __enter__(self) -> ProgressView:
        if self.live:
            from rich.progress import Progress as RichProgress
            from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bars = RichProgress(
                SpinnerColumn(),
                TextColumn("[cyan]{task.fields[where]:<5}[/] {task.description:<16}"),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bars.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    # -- crossdock.progress.Progress ----------------------------------------------------------

    def __call__(self, platform: Platform | None, message: str, /) -> None:
        warning = message.startswith("warning")
        if self.quiet and not warning:
            return
        style = "yellow" if warning else "cyan"
        # A warning is prose: wrapped at the width the terminal (or COLUMNS) gives. Other notes
        # carry paths and references, kept whole on one line.
        self.print(f"[{style}]{_where(platform)}[/] {literal(message)}", wrap=warning)

    def start_step(self, platform: Platform | None, name: str, total: int | None) -> Step:
        return _ViewStep(self, platform, name, total)

    # -- drawing --------------------------------------------------------------------------

    def print(self, markup: str, *, wrap: bool = False) -> None:
        with self._lock:
            # Above the live lines when they are shown; a plain line otherwise.
            self.console.print(markup, highlight=False, soft_wrap=not wrap)

    def add_task(self, where: str, name: str, total: int | None) -> TaskID | None:
        if self._bars is None:
            return None
        return self._bars.add_task(name, total=total, where=where, info="")

    def update_task(self, task: TaskID | None, **fields: Any) -> None:
        if self._bars is not None and task is not None:
            self._bars.update(task, **fields)

    def remove_task(self, task: TaskID | None) -> None:
        if self._bars is not None and task is not None:
            self._bars.remove_task(task)


class _ViewStep:
    """One step on the view: a live line while it runs, a summary line when it ends."""

    def __init__(
        self, view: ProgressView, platform: Platform | None, name: str, total: int | None
    ) -> None:
        self._view = view
        # Steps of no one platform (the push) leave the column empty: the lines fit 80 columns.
        self._where = platform.architecture if platform is not None else ""
        self._name = name
        self._counts_bytes = total is not None
        self._total = total or 0
        self._done = 0
        self._detail = ""
        self._started = time.perf_counter()
        self._task = view.add_task(self._where, name, total)

    def advance(self, amount: int) -> None:
        self._done += amount
        self._view.update_task(self._task, advance=amount, info=self._transfer())

    def add_total(self, amount: int) -> None:
        self._counts_bytes = True
        self._total += amount
        self._view.update_task(self._task, total=self._total, info=self._transfer())

    def describe(self, detail: str) -> None:
        self._detail = detail
        if not self._counts_bytes:
            self._view.update_task(self._task, info=detail)

    def end(self, *, ok: bool) -> None:
        self._view.remove_task(self._task)
        if self._view.quiet:
            return
        seconds = time.perf_counter() - self._started
        parts = [self._transfer(final=True) if self._done else "", self._detail]
        detail = ", ".join(p for p in parts if p)
        if self._view.live:
            mark = "[green]✔[/]" if ok else "[red]✘[/]"
            line = f"{mark} [cyan]{self._where:<5}[/] {self._name:<16} {seconds:5.1f}s"
        else:
            state = "" if ok else " FAILED"
            where = f"[cyan]{self._where}[/] " if self._where else ""
            line = f"{where}{self._name}{state} ({seconds:.1f}s)"
        self._view.print(line + (f"  {literal(detail)}" if detail else ""))

    def _transfer(self, *, final: bool = False) -> str:
        if not self._counts_bytes:
            return ""
        seconds = max(time.perf_counter() - self._started, 1e-6)
        rate = f"{human_bytes(self._done / seconds)}/s"
        if final:
            return f"{human_bytes(self._done)} at {rate}"
        total = f"/{human_bytes(self._total)}" if self._total else ""
        return f"{human_bytes(self._done)}{total} {rate}"
