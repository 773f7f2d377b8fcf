"""Where a local output goes: checked before a build starts, and any failure to write it turned
into a one-line ``ConfigError`` naming the path (never an OSError traceback)."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from crossdock.errors import ConfigError

__all__ = ["check_writable", "partial_beside", "writing"]


def _error(what: str, path: Path, err: OSError) -> ConfigError:
    return ConfigError(
        f"cannot write the {what} {path}: {err.strerror or err}",
        hint="choose a path in a folder you can write to",
    )


def check_writable(path: Path, what: str, *, folder: bool) -> None:
    """Create ``path`` (a folder) or its parent (a file) now, so a build that cannot write its
    output fails before it starts. The probe file has a name of its own: two builds writing
    into one folder at once (services built into one layout by ``make -j``) check it at once."""
    target = path if folder else path.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".crossdock-write-test-", dir=target)
        os.close(handle)
        Path(probe).unlink()
    except OSError as err:
        raise _error(what, path, err) from err


@contextmanager
def writing(path: Path, what: str) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        raise _error(what, path, err) from err


def partial_beside(path: Path) -> Path:
    """A name beside ``path`` for its bytes while they are written, then renamed to ``path``:
    one of its own, because two builds may write the same output file (a blob of one layout)
    at once, and a shared name let one truncate, rename away or remove the other's file."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.partial")
