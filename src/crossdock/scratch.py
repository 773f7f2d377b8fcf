"""Temporary files and folders that do not outlive crossdock, even after Ctrl-C.

Each temporary path is removed by its own ``with``/``finally`` block when work ends normally or
fails. An interrupt ends the process at once with ``os._exit`` (worker threads may be in the
middle of a transfer, and waiting for them took as long as the transfer), which runs no
``finally`` block. So every temporary path is also registered here while it exists, and
:func:`remove_all`, called by the interrupt handler, deletes whatever is still registered.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["forget", "mkstemp", "register", "remove_all", "temporary_directory", "tracked"]

_live: set[Path] = set()
_lock = threading.Lock()


def register(path: Path) -> None:
    """Remember ``path`` (a file or folder crossdock made) until :func:`forget`."""
    with _lock:
        _live.add(path)


def forget(path: Path) -> None:
    """``path`` was renamed into place or removed: an interrupt must not delete it."""
    with _lock:
        _live.discard(path)


def mkstemp(*, prefix: str, dir: Path) -> tuple[int, Path]:
    """:func:`tempfile.mkstemp`, registered; the caller renames or removes it, then forgets it."""
    handle, name = tempfile.mkstemp(prefix=prefix, dir=dir)
    path = Path(name)
    register(path)
    return handle, path


@contextlib.contextmanager
def tracked(path: Path) -> Iterator[Path]:
    """A temporary file at a path the caller chose: registered while the block runs, removed at
    its end unless the block renamed it away."""
    register(path)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        forget(path)


@contextlib.contextmanager
def temporary_directory(*, prefix: str = "crossdock-", dir: Path | None = None) -> Iterator[Path]:
    """:class:`tempfile.TemporaryDirectory`, registered, as a :class:`~pathlib.Path`."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    register(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        forget(path)


def remove_all() -> None:
    """Delete every registered path (the interrupt handler's last step before exiting)."""
    with _lock:
        paths = list(_live)
        _live.clear()
    for path in paths:
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
