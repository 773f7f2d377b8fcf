"""What ``crossdock --version`` says: crossdock's version, and the uv and Python it runs with
(the uv binary is the one crossdock installs with; the Python is the interpreter running
crossdock, not the image's). Standard library only: it runs before typer is imported."""

from __future__ import annotations

import platform
import subprocess
import sys

from crossdock._version import __version__
from crossdock.children import run_child

__all__ = ["version_lines"]


def version_lines() -> list[str]:
    return [
        f"crossdock {__version__}",
        _uv_version(),
        f"Python {platform.python_version()} at {sys.executable}",
    ]


def _uv_version() -> str:
    try:
        from uv import find_uv_bin

        binary = find_uv_bin()
        completed = run_child(
            [binary, "--version"], capture_output=True, text=True, check=True, timeout=10
        )
    except (ImportError, OSError, subprocess.SubprocessError):
        return "uv: not found (install crossdock with its `uv` dependency)"
    # uv prints "uv 0.13.9 (hash date)"; the binary's path says which uv builds will use.
    return f"{completed.stdout.strip()} at {binary}"
