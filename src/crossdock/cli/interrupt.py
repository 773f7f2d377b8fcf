"""Ctrl-C: stop now, say what state things are in, and take crossdock's children along.

Worker threads may be in the middle of an upload or a download; waiting for them (what Python
does at exit) took as long as the transfer. Instead the process ends at once, after its child
processes (uv, compilers, docker) are sent SIGTERM, so nothing keeps running on its behalf.
What a registry holds then follows from the push order (blobs, manifests, index, tags last): at
most some blobs or manifests that no tag points to, which registries clean up by themselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

__all__ = ["stop_after_interrupt"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

_MESSAGE = (
    "interrupted: stopped at once, transfers cancelled. A registry keeps at most some blobs or "
    "manifests of this push that no tag points to (tags are written last, so no tag moved "
    "unless it was reported above); run the command again to finish."
)


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (read from /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name is in parentheses and may hold spaces: parse after the last ")".
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_after_interrupt() -> None:
    """Print what happened, end every child process, and exit 130 without waiting for threads."""
    with contextlib.suppress(Exception):
        sys.stderr.write(f"\n{_MESSAGE}\n")
        sys.stderr.flush()
    for pid in _descendants(os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    # os._exit runs no `finally` block: delete the temporary files and folders still in use.
    from crossdock import scratch

    with contextlib.suppress(Exception):
        scratch.remove_all()
    os._exit(EXIT_INTERRUPTED)
