"""Reproducible image layers: a deterministic tar, gzip-compressed, hashed while it is written.

The same files give the same bytes on any machine and any day, by construction:
entries sorted by path, parents before children, uid/gid 0 with empty owner names, one fixed
mtime (SOURCE_DATE_EPOCH or 0), fixed modes (0644, or 0755 when executable), a gzip header
with no file name and mtime 0, and one pinned compressor (python-isal, single-threaded).

Layers are streamed to disk: the uncompressed digest (the ``diff_id``) and the compressed digest
are computed on the way through, so a layer is never held in memory.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from isal import igzip

from crossdock import scratch
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.rootfs.layerindex import Member, MemberType, normalize

__all__ = [
    "LayerBlob",
    "LayerEntry",
    "compress_layer",
    "entries_from_tree",
    "source_date_epoch",
    "write_layer",
]

# isal level 2 is its default: about ten times faster than zlib at a slightly larger size.
# Changing it changes every layer digest, so it is a constant, not an option. So does how the
# tar stream is cut into writes to the compressor: isal's output depends on it (the example's
# dependency tar written in tarfile's 10 KiB records, in 16 KiB or in 1 MiB pieces gives three
# different gzip streams), so nothing may buffer, split or join what tarfile writes on its way
# to the compressor (a faster writer that re-chunks changes every digest).
_GZIP_LEVEL = 2
_COPY_CHUNK = 1 << 20
_FILE_MODE = 0o644
_EXEC_MODE = 0o755
_DIR_MODE = 0o755


@dataclass(frozen=True)
class LayerEntry:
    """One entry of a layer: ``path`` inside the image (relative, POSIX), and either a file on
    disk to copy (``source``), inline bytes (``data``), a symlink target, or a directory."""

    path: str
    source: Path | None = None
    data: bytes | None = None
    symlink: str | None = None
    executable: bool = False

    @property
    def is_dir(self) -> bool:
        return self.source is None and self.data is None and self.symlink is None


@dataclass(frozen=True)
class LayerBlob:
    """A finished layer on disk and its two digests."""

    path: Path
    digest: Digest
    diff_id: Digest
    size: int
    # The member index of a layer written here, taken while writing it: the rows reading the
    # blob back gives (rootfs.layerindex.read_members), without decompressing it again.
    members: tuple[Member, ...] | None = field(default=None, compare=False, repr=False)

    def descriptor(self, media_type: str) -> Descriptor:
        return Descriptor(media_type, self.digest, self.size)


def source_date_epoch() -> int:
    """The fixed mtime for every entry: SOURCE_DATE_EPOCH when set (reproducible-builds.org),
    else 0. An integer on purpose: a float mtime makes tarfile add a PAX header."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(value) if value.isdigit() else 0


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, sink: _Sink | None) -> None:
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if self._sink is not None:
            self._sink.write(data)
        return len(data)

    def flush(self) -> None:
        if self._sink is not None:
            self._sink.flush()


def _normalize(path: str) -> str:
    """A clean relative POSIX path; refuses anything that would escape the image root."""
    pure = PurePosixPath(path.lstrip("/"))
    if any(part == ".." for part in pure.parts) or not pure.parts:
        raise ValueError(f"layer path escapes the image root: {path!r}")
    return pure.as_posix()


def _with_parents(entries: Iterable[LayerEntry]) -> list[LayerEntry]:
    """Every entry plus any missing parent directory, sorted so parents come first."""
    by_path: dict[str, LayerEntry] = {}
    for entry in entries:
        path = _normalize(entry.path)
        by_path[path] = LayerEntry(path, entry.source, entry.data, entry.symlink, entry.executable)
        for parent in PurePosixPath(path).parents:
            key = parent.as_posix()
            if key != "." and key not in by_path:
                by_path[key] = LayerEntry(key)
    # Sorting by path parts (not by the string) keeps "a/b" before "a-b/...", a stable order.
    return [by_path[p] for p in sorted(by_path, key=lambda p: PurePosixPath(p).parts)]


def _tarinfo(entry: LayerEntry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.symlink is not None:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.symlink
        info.mode = 0o777
    elif entry.is_dir:
        info.type = tarfile.DIRTYPE
        info.mode = _DIR_MODE
    else:
        info.type = tarfile.REGTYPE
        info.mode = _EXEC_MODE if entry.executable else _FILE_MODE
        if entry.data is not None:
            info.size = len(entry.data)
        elif entry.source is not None:
            info.size = entry.source.stat().st_size
    return info


def write_layer(
    entries: Iterable[LayerEntry], dest: Path, *, mtime: int | None = None
) -> LayerBlob:
    """Write a gzip-compressed tar layer to ``dest`` (atomically) and return its digests."""
    fixed_mtime = source_date_epoch() if mtime is None else mtime

    def write_tar(uncompressed: _HashingWriter) -> tuple[Member, ...]:
        members: list[Member] = []
        with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for entry in _with_parents(entries):
                info = _add(tar, entry, fixed_mtime)
                members.append(_written_member(len(members), info, tar.offset))
        return tuple(members)

    return _gzipped(dest, write_tar)


def compress_layer(tar: Path, dest: Path) -> LayerBlob:
    """Gzip an uncompressed tar layer someone else wrote (``docker save`` holds them so) to
    ``dest`` (atomically), as ``write_layer`` compresses its own: the same level, no mtime."""

    def copy_tar(uncompressed: _HashingWriter) -> None:
        with tar.open("rb") as source:
            while chunk := source.read(_COPY_CHUNK):
                uncompressed.write(chunk)
        # (a tar written elsewhere: its index is read from it when needed)

    return _gzipped(dest, copy_tar)


def _gzipped(
    dest: Path, write_tar: Callable[[_HashingWriter], tuple[Member, ...] | None]
) -> LayerBlob:
    """``dest``: the gzip of what ``write_tar`` writes, both streams hashed on the way."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    with scratch.tracked(partial):  # removed on every exit path, an interrupt's too
        with partial.open("wb") as raw_file:
            compressed = _HashingWriter(raw_file)
            with igzip.GzipFile(  # type: ignore[no-untyped-call]
                filename="", mode="wb", compresslevel=_GZIP_LEVEL, fileobj=compressed, mtime=0
            ) as gz:
                uncompressed = _HashingWriter(gz)
                members = write_tar(uncompressed)
        partial.replace(dest)
    return LayerBlob(
        path=dest,
        digest=Digest("sha256:" + compressed.sha256.hexdigest()),
        diff_id=Digest("sha256:" + uncompressed.sha256.hexdigest()),
        size=compressed.size,
        members=members,
    )


def _written_member(ordinal: int, info: tarfile.TarInfo, end: int) -> Member:
    """The index row of the member just written, ending at ``end`` in the tar stream: its data
    (padded to whole 512-byte blocks) is the last thing before ``end``, after its headers."""
    data = -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    kind = {tarfile.DIRTYPE: MemberType.DIRECTORY, tarfile.SYMTYPE: MemberType.SYMLINK}
    return Member(
        ordinal,
        info.name,
        normalize(info.name),
        kind.get(info.type, MemberType.FILE),
        info.mode,
        info.size,
        info.linkname,
        end - data,
    )


def _add(tar: tarfile.TarFile, entry: LayerEntry, mtime: int) -> tarfile.TarInfo:
    """Write ``entry``; returns the header written (its name, type, mode, size, link)."""
    info = _tarinfo(entry, mtime)
    if info.type != tarfile.REGTYPE:
        tar.addfile(info)
    elif entry.data is not None:
        tar.addfile(info, io.BytesIO(entry.data))
    else:
        source = entry.source
        if source is None:  # _tarinfo made a regular file only for data or source entries
            raise ValueError(f"layer entry {entry.path!r} has no content")
        with source.open("rb") as handle:
            tar.addfile(info, handle)
    return info


_ALWAYS_EXCLUDED = frozenset(
    {".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", "node_modules"}
)
_BYTECODE_DIR = "__pycache__"


def entries_from_tree(
    root: Path, prefix: str, *, exclude: Iterable[str] = (), keep_bytecode: bool = False
) -> Iterator[LayerEntry]:
    """Entries for every file under ``root``, placed under ``prefix`` in the image.

    Symlinks are kept as symlinks (never followed, so nothing outside ``root`` is read);
    ``exclude`` holds glob patterns matched against the path relative to ``root``. Bytecode is
    left out unless ``keep_bytecode``: a source folder's ``__pycache__`` was written by the
    developer's Python, which may not be the image's (crossdock compiles its own).
    """
    patterns = tuple(exclude)
    skipped_dirs = _ALWAYS_EXCLUDED if keep_bytecode else _ALWAYS_EXCLUDED | {_BYTECODE_DIR}
    base = PurePosixPath(prefix.strip("/"))
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        dirnames[:] = sorted(
            d for d in dirnames if d not in skipped_dirs and not _excluded(rel_dir / d, patterns)
        )
        for name in sorted(filenames):
            rel = rel_dir / name
            bytecode = name.endswith((".pyc", ".pyo"))
            if (bytecode and not keep_bytecode) or _excluded(rel, patterns):
                continue
            source = here / name
            image_path = (base / rel.as_posix()).as_posix()
            st = source.lstat()
            if stat.S_ISLNK(st.st_mode):
                yield LayerEntry(image_path, symlink=str(source.readlink()))
            elif stat.S_ISREG(st.st_mode):
                yield LayerEntry(image_path, source=source, executable=bool(st.st_mode & 0o111))
        for name in dirnames:
            # Symlinked directories are listed by os.walk among dirnames; keep them as links.
            candidate = here / name
            if candidate.is_symlink():
                yield LayerEntry(
                    (base / (rel_dir / name).as_posix()).as_posix(),
                    symlink=str(candidate.readlink()),
                )


def _excluded(rel: Path, patterns: tuple[str, ...]) -> bool:
    """A pattern excludes a path when it matches the whole relative path or one of its names
    (so ``tests`` drops every folder called tests, ``docs/*.md`` only those files)."""
    text = rel.as_posix()
    return any(
        fnmatch.fnmatchcase(text, pattern)
        or any(fnmatch.fnmatchcase(n, pattern) for n in rel.parts)
        for pattern in patterns
    )
