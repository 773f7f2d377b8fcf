"""Progress of long commands, as the library reports it and the command line shows it.

A ``Progress`` is called with notes (``progress(platform, "warning: ...")``); one that also has
``start_step`` (``ProgressWithSteps``, what the command line passes) hears of steps
(``with step(progress, platform, "pull base", total=size) as s: s.advance(n)``): the base pull,
the wheel install, bytecode, layer compression, verification, the upload. What a step looks like
is the caller's business (a live per-platform display on a terminal, one line per step with its
duration in a CI log, nothing with ``--quiet``); the library only says when steps start, how far
they are, and how they ended. A plain function (``lambda platform, message: ...``) still works:
it gets the notes, and the steps go nowhere. ``NO_PROGRESS`` reports nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from crossdock.platform import Platform

__all__ = ["NO_PROGRESS", "Progress", "ProgressWithSteps", "Step", "step"]

# Called with (platform or None, message) for a note.
Progress = Callable[["Platform | None", str], None]


class Step(Protocol):
    """One running step: advanced by units of work (bytes when ``total`` is a byte count)."""

    def advance(self, amount: int) -> None: ...

    def add_total(self, amount: int) -> None: ...

    def describe(self, detail: str) -> None:
        """What the summary line says besides the step's name and duration."""

    def end(self, *, ok: bool) -> None: ...


@runtime_checkable
class ProgressWithSteps(Protocol):
    def __call__(self, platform: Platform | None, message: str, /) -> None:
        """A note: something worth one line (a warning, where an output was written)."""

    def start_step(self, platform: Platform | None, name: str, total: int | None) -> Step: ...


class _NoStep:
    def advance(self, amount: int) -> None:
        pass

    def add_total(self, amount: int) -> None:
        pass

    def describe(self, detail: str) -> None:
        pass

    def end(self, *, ok: bool) -> None:
        pass


class _NoProgress:
    def __call__(self, platform: Platform | None, message: str, /) -> None:
        pass

    def start_step(self, platform: Platform | None, name: str, total: int | None) -> Step:
        del platform, name, total  # nothing is shown
        return _NoStep()


NO_PROGRESS: ProgressWithSteps = _NoProgress()


@contextmanager
def step(
    progress: Progress, platform: Platform | None, name: str, *, total: int | None = None
) -> Iterator[Step]:
    """Run a step: it ends ok when the block finishes, failed when it raises."""
    handle = (
        progress.start_step(platform, name, total)
        if isinstance(progress, ProgressWithSteps)
        else _NoStep()
    )
    try:
        yield handle
    except BaseException:
        handle.end(ok=False)
        raise
    handle.end(ok=True)
