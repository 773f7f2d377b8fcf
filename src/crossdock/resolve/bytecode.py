"""Bytecode for the image's Python, compiled on the host without emulation.

Why: an image without ``.pyc`` files compiles every module it imports at every start when its
folders are read-only to the running user (App Runner/EKS run as 65534; Lambda's /var/task is
read-only). Under QEMU that made the example's first request take minutes; on real hardware it
is a slower cold start. ``.pyc`` files depend on the Python *version* (their magic number), not
on the CPU, so a host interpreter of the image's major.minor writes correct ones for any
platform.

How: ``compileall`` with ``unchecked-hash`` invalidation (the pyc records a hash of its source,
not its mtime, so layers stay reproducible and Python never needs to rewrite them), and
PYTHONHASHSEED=0 so the marshalled constants come out the same on every run.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from crossdock.errors import ToolError
from crossdock.resolve.uv import Uv

__all__ = ["BytecodePython", "bytecode_python", "compile_bytecode", "find_host_python"]


# Enough sources to be worth a pool of compiler processes (each costs an interpreter start).
_POOL_THRESHOLD = 200


def _many_sources(tree: Path) -> bool:
    return any(i >= _POOL_THRESHOLD for i, _ in enumerate(tree.rglob("*.py")))


@functools.cache  # an interpreter's version does not change while crossdock runs
def _version_of(executable: str) -> str | None:
    try:
        completed = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def find_host_python(version: str) -> str | None:
    """A host interpreter whose major.minor is ``version`` ("3.13"), or None.

    Looked for, in order: CROSSDOCK_BYTECODE_PYTHON, the interpreter running crossdock, UV_PYTHON,
    and ``python3.13`` on PATH. Each candidate is asked its version (a pyenv shim may exist on
    PATH for a version that is not installed).
    """
    candidates = [
        os.environ.get("CROSSDOCK_BYTECODE_PYTHON"),
        sys.executable,
        os.environ.get("UV_PYTHON"),
        shutil.which(f"python{version}"),
    ]
    for candidate in candidates:
        if candidate and _version_of(candidate) == version:
            return candidate
    return None


@dataclass(frozen=True)
class BytecodePython:
    """The host interpreter that compiles an image's bytecode, or why there is none."""

    executable: str | None
    # How it was found ("uv python find 3.11"), or why none was (for the build's warning).
    how: str


def bytecode_python(version: str, uv: Uv | None = None) -> BytecodePython:
    """A host interpreter of ``version``: one on this machine (``find_host_python``), else the
    one uv knows (``uv python find``), else one uv installs (``uv python install``) where uv's
    settings allow downloads (``UV_PYTHON_DOWNLOADS`` / ``python-downloads``); else none, with
    uv's reason."""
    local = find_host_python(version)
    if local is not None:
        return BytecodePython(local, f"Python {version} on this machine")
    try:
        uv = uv or Uv()
    except ToolError as err:
        return BytecodePython(None, f"no Python {version} on this machine ({err.message})")
    found = _uv_python_find(uv, version)
    if found is not None:
        return BytecodePython(found, f"uv python find {version}")
    installed = uv.run(["python", "install", version], Path.cwd())
    if installed.returncode == 0:
        found = _uv_python_find(uv, version)
        if found is not None:
            return BytecodePython(found, f"uv python install {version}")
    reason = (installed.stderr or installed.stdout).strip().splitlines()
    return BytecodePython(
        None,
        f"no Python {version} on this machine, and `uv python install {version}` failed: "
        + (reason[-1] if reason else f"exit {installed.returncode}"),
    )


def _uv_python_find(uv: Uv, version: str) -> str | None:
    completed = uv.run(["python", "find", "--no-project", version], Path.cwd())
    found = completed.stdout.strip()
    if completed.returncode != 0 or not found or _version_of(found) != version:
        return None
    return found


def compile_bytecode(tree: Path, python: str, *, image_dir: str) -> None:
    """Write ``__pycache__/*.cpython-XY.pyc`` next to every ``.py`` file under ``tree``.

    ``image_dir`` is where ``tree`` lands in the image; tracebacks name files there (Python also
    fixes the file name up when it loads a pyc, so this is for readability).
    """
    env = {**os.environ, "PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": "0"}
    completed = subprocess.run(
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-q",  # errors only
            "--invalidation-mode",
            "unchecked-hash",
            "-j",
            # One worker per core for a dependency tree (CPU-bound); a service's few files
            # compile faster in one process than it takes to start a pool of workers.
            "0" if _many_sources(tree) else "1",
            "-d",
            image_dir,
            "-x",
            r"[/\\](tests?|test_.*)[/\\].*_py2\.py$",
            str(tree),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    # compileall exits 1 when some file does not compile (a Python 2 leftover in a package's
    # test folder, say): that file simply has no pyc, exactly as pip would leave it. Anything
    # else (the interpreter missing, a crash, an exit 1 that compiled nothing) is a failure.
    compiled_nothing = completed.returncode == 1 and not any(tree.rglob("*.pyc"))
    if completed.returncode not in (0, 1) or compiled_nothing:
        raise ToolError(
            f"compiling bytecode with {python} failed (exit {completed.returncode}):\n"
            f"{completed.stderr.strip()[-2000:]}",
            hint="set CROSSDOCK_BYTECODE_PYTHON to a working interpreter of the image's "
            "Python version, or build with --no-bytecode",
        )
