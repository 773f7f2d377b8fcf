"""The lock that keeps ``crossdock cache prune`` from removing entries under a running build.

The commands that use the cache's entries (a build and its push, a build answered from its
record, ``verify``, ``rebase``: ``CacheLayout.in_use``) hold it shared (many at once, in several
processes); a prune holds it alone, so it waits for them to end, and those started meanwhile
wait for it. A process may hold it shared more than once (a command, and the library call it
makes): each hold is its own open file, and a shared hold is granted beside another. It is a
``flock`` on one file at the cache's root, ``IN_USE_LOCK``, which is never an entry of the
cache (pruning must not remove it). A cache where the lock cannot be taken (read-only, a file
system without locks) is used without it, as before the lock existed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["IN_USE_LOCK", "locked"]

IN_USE_LOCK = ".in-use"


@contextlib.contextmanager
def locked(
    root: Path, *, exclusive: bool, on_wait: Callable[[], object] | None = None
) -> Iterator[None]:
    """Hold the lock of the cache at ``root``, shared or ``exclusive``; ``on_wait`` is called
    first when another holder makes this one wait (to say what is awaited)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / IN_USE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield  # a read-only cache: nothing is written or removed in it anyway
        return
    operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, operation)
        except OSError:
            pass  # no locks on this file system (ENOLCK): used without one
        yield
    finally:
        os.close(fd)  # (the file descriptor is not inherited by children: Python's default)
