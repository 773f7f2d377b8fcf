"""Build real layer tarballs (tar or tar+gzip) for tests, entry by entry."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data" / "verify"

# (name, kind, payload): kind is "file" (payload bytes), "dir", "symlink" / "hardlink" (payload
# the link target), "whiteout" (name is the deleted path), "opaque" (name is the directory).
Entry = tuple[str, str, bytes | str | None]


def write_layer(path: Path, entries: Iterable[Entry], *, gzipped: bool = True) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if kind == "file":
                data = payload if isinstance(payload, bytes) else str(payload or "").encode()
                info.size = len(data)
                info.mode = 0o755
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
    raw = buffer.getvalue()
    path.write_bytes(gzip.compress(raw, compresslevel=1, mtime=0) if gzipped else raw)
    return path


def fixture_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()
