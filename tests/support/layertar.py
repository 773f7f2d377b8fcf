"""Build real layer tarballs (tar or tar+gzip) for tests, entry by entry."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "verify"

# (name, kind, payload): kind is "file" (payload bytes, mode 0755), "data" (the same, mode
# 0644), "dir", "symlink" / "hardlink" (payload
# the link target), "whiteout" (name is the deleted path), "opaque" (name is the directory).
Entry = tuple[str, str, bytes | str | None]


def write_layer(path: Path, entries: Iterable[Entry], *, gzipped: bool = True) -> Path:
    raw = tar_bytes(entries)
    path.write_bytes(gzip.compress(raw, compresslevel=1, mtime=0) if gzipped else raw)
    return path


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """A PAX tar of ``entries``, in their order, every mtime 0 (the same bytes every time)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if kind in ("file", "data"):
                data = payload if isinstance(payload, bytes) else str(payload or "").encode()
                info.size = len(data)
                info.mode = 0o755 if kind == "file" else 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = str(payload)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = str(payload)
            elif kind == "whiteout":
                parent, _, base = name.rpartition("/")
                info.name = f"{parent}/.wh.{base}" if parent else f".wh.{base}"
            elif kind == "opaque":
                info.name = f"{name.rstrip('/')}/.wh..wh..opq"
            else:
                raise ValueError(kind)
            tar.addfile(info)
    return buffer.getvalue()


def fixture_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


def other_python_pyc(tmp_path: Path, image_python: tuple[int, int] = (3, 13)) -> bytes:
    """A .pyc compiled by a real host interpreter of another version than the image's (Debian
    12's /usr/bin/python3 is 3.11), as bytecode written on the build host would be."""
    import shutil
    import subprocess

    for name in ("/usr/bin/python3", "python3.11", "python3.12", "python3.10", "python3.14"):
        exe = shutil.which(name)
        if exe is None:
            continue
        version = subprocess.run(
            [exe, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if tuple(int(v) for v in version) == image_python:
            continue
        source = tmp_path / "handler.py"
        source.write_text("def handler(event, context):\n    return 1\n")
        target = tmp_path / "handler.pyc"
        subprocess.run(
            [
                exe,
                "-c",
                "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2])",
                str(source),
                str(target),
            ],
            check=True,
        )
        return target.read_bytes()
    raise pytest.skip.Exception("no host Python but the image's version to compile bytecode with")
