"""Every child process crossdock starts (uv, compilers, docker, git, credential helpers) goes
through :func:`run`, so that none outlives crossdock.

Ctrl-C and SIGTERM end the children explicitly (``crossdock.cli.interrupt``); SIGKILL cannot be
caught, so on Linux each child asks the kernel for a parent-death signal (``PR_SET_PDEATHSIG``):
when crossdock dies, however it dies, the child gets SIGKILL. Elsewhere :func:`run_child` is plain
``subprocess.run``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

__all__ = ["run_child", "start_child"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _parent_death_hook() -> Callable[[int], None] | None:
    """The function a child runs between fork and exec (given crossdock's pid); None where there
    is no prctl."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Resolved here, in the parent: the child only calls it (no imports or loading after fork).
        # From the symbols already loaded (CDLL(None): the C library Python itself runs on), not
        # ctypes.util.find_library("c"), which runs `ldconfig -p` to find a file to load.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    kill = int(signal.SIGKILL)

    def die_with_parent(parent: int) -> None:
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
        # crossdock may have died between fork and prctl: then no signal will ever come.
        if os.getppid() != parent:
            os._exit(1)

    return die_with_parent


_DIE_WITH_PARENT = _parent_death_hook()


@overload
def run_child(
    args: Sequence[str | os.PathLike[str]],
    *,
    text: Literal[True] = ...,
    check: bool = ...,
    **kwargs: Any,  # noqa: ANN401 - subprocess.run's own keywords, passed through as they are
) -> subprocess.CompletedProcess[str]: ...
@overload
def run_child(
    args: Sequence[str | os.PathLike[str]],
    *,
    text: Literal[False],
    check: bool = ...,
    **kwargs: Any,  # noqa: ANN401
) -> subprocess.CompletedProcess[bytes]: ...
def run_child(
    args: Sequence[str | os.PathLike[str]],
    *,
    text: bool = True,
    check: bool = False,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]:
    """``subprocess.run(args, ...)`` whose child dies with crossdock (on Linux); output as text
    unless ``text=False``."""
    if _DIE_WITH_PARENT is not None:
        kwargs.setdefault("preexec_fn", functools.partial(_DIE_WITH_PARENT, os.getpid()))
    return subprocess.run(args, text=text, check=check, **kwargs)


def start_child(
    args: Sequence[str | os.PathLike[str]],
    **kwargs: Any,  # noqa: ANN401 - subprocess.Popen's own keywords, passed through as they are
) -> subprocess.Popen[str]:
    """``subprocess.Popen(args, text=True, ...)`` whose child dies with crossdock (on Linux),
    for a child that is talked to while it runs."""
    if _DIE_WITH_PARENT is not None:
        kwargs.setdefault("preexec_fn", functools.partial(_DIE_WITH_PARENT, os.getpid()))
    return subprocess.Popen(args, text=True, **kwargs)
