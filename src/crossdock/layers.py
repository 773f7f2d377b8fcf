"""Reproducible image layers: a deterministic tar, gzip-compressed, hashed while it is written.

The same files give the same bytes on any machine and any day, by construction:
entries sorted by path, parents before children, uid/gid 0 with empty owner names, one fixed
mtime (SOURCE_DATE_EPOCH or 0), fixed modes (0644, or 0755 when executable), a gzip header
with no file name and mtime 0, and one pinned compressor (python-isal, one stream, not its
multi-threaded mode, whose output differs).

Layers are streamed to disk: the uncompressed digest (the ``diff_id``) and the compressed digest
are computed on the way through, so a layer is never held in memory. The tar is made on the
calling thread and hashed, compressed and written on another (hashlib and isal release the
GIL), the two overlapping on two cores; the compressor gets exactly tarfile's writes, in order.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import io
import os
import queue
import stat
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from isal import igzip

from crossdock import scratch
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.rootfs.fsview import LazyBuffer
from crossdock.rootfs.layerindex import Member, MemberType, normalize

__all__ = [
    "LayerBlob",
    "LayerEntry",
    "MemberObserver",
    "compress_layer",
    "entries_from_tree",
    "source_date_epoch",
    "write_layer",
]

# isal level 2 is its default: about ten times faster than zlib at a slightly larger size.
# Changing it changes every layer digest, so it is a constant, not an option. So does how the
# tar stream is cut into writes to the compressor: isal's output depends on it (the example's
# dependency tar written in tarfile's 10 KiB records, in 16 KiB or in 1 MiB pieces gives three
# different gzip streams), so the compressor is handed the tar stream in tarfile's records, one
# write each, in order (_TarStream cuts it so; a writer that re-chunks changes every digest).
_GZIP_LEVEL = 2
_COPY_CHUNK = 1 << 20
# Tarfile's writes are handed to the compressing thread in batches of about this many bytes (one
# hand-over per 10 KiB record costs more than it saves), at most _BATCHES_AHEAD batches ahead.
_BATCH_BYTES = 1 << 20
_BATCHES_AHEAD = 8
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
    # blob back gives (rootfs.layerindex.read_index), without decompressing it again.
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


class _HashingHandover:
    """A write-only file object that hashes and counts what is written to it and passes it on,
    write for write and in order, to ``sink`` on another thread: the writer makes the next tar
    records while the sink compresses the last ones. The hashing is done there too, one batch
    at a time (one GIL hand-off per batch, not per record). A sink's error is raised on the
    next write, or by ``close``."""

    def __init__(self, sink: _Sink) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._sink = sink
        self._batch: list[bytes | None] = []  # None: flush the sink here
        self._batch_bytes = 0
        self._queue: queue.Queue[list[bytes | None] | None] = queue.Queue(_BATCHES_AHEAD)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="layer-compress", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> int:
        # tarfile writes bytes; a reused buffer (bytearray, memoryview) would change under us.
        self._batch.append(data if type(data) is bytes else bytes(data))
        self._batch_bytes += len(data)
        if self._batch_bytes >= _BATCH_BYTES:
            self._hand_over()
        return len(data)

    def flush(self) -> None:
        self._batch.append(None)

    def close(self) -> None:
        """Hand over the rest and wait until the sink has taken every write."""
        self._hand_over()
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """Stop the sink's thread without handing over the rest (the writer failed)."""
        self._error = self._error or _AbandonedError()
        self._queue.put(None)
        self._thread.join()

    def _hand_over(self) -> None:
        if self._error is not None:
            raise self._error
        if self._batch:
            self._queue.put(self._batch)
        self._batch, self._batch_bytes = [], 0

    def _drain(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep taking batches, so that the writer is never blocked
            try:
                data = [d for d in batch if d is not None]
                self.sha256.update(b"".join(data))
                self.size += sum(map(len, data))
                for piece in batch:
                    if piece is None:
                        self._sink.flush()
                    else:
                        self._sink.write(piece)
            except BaseException as err:  # noqa: BLE001 - raised on the writer's thread
                self._error = err


class _AbandonedError(Exception):
    """The writer failed: what was handed over is not written on."""


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
        # A clean path's parents are its prefixes up to each "/"; once one is known, so are
        # all of its own parents (each path is added with them).
        parent = path
        while (cut := parent.rfind("/")) > 0:
            parent = parent[:cut]
            if parent in by_path:
                break
            by_path[parent] = LayerEntry(parent)
    # Sorting by path parts (not by the string) keeps "a/b" before "a-b/...", a stable order;
    # a clean path's parts are its names between "/" (PurePosixPath(p).parts, without the cost).
    return [by_path[p] for p in sorted(by_path, key=lambda p: p.split("/"))]


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


# Called with each regular file's ordinal in the layer, its name and its bytes as they are
# written (see write_layer).
MemberObserver = Callable[[int, str, LazyBuffer], None]


def write_layer(
    entries: Iterable[LayerEntry],
    dest: Path,
    *,
    mtime: int | None = None,
    observe: MemberObserver | None = None,
) -> LayerBlob:
    """Write a gzip-compressed tar layer to ``dest`` (atomically) and return its digests.

    ``observe``: called for every regular file with its member ordinal, its name and a buffer of
    its bytes, before they are written; whatever it reads of them is what the layer holds (the
    file is read once: what the observer read is kept and written, then the rest follows), so
    what it learns describes the members of the blob whose digest is returned."""
    fixed_mtime = source_date_epoch() if mtime is None else mtime

    def write_tar(uncompressed: _Sink) -> tuple[Member, ...]:
        tar = _TarStream(uncompressed)
        members: list[Member] = []
        for entry in _with_parents(entries):
            info = _add(tar, entry, fixed_mtime, len(members), observe)
            members.append(_written_member(len(members), info, tar.offset))
        tar.close()
        return tuple(members)

    return _gzipped(dest, write_tar)


def compress_layer(tar: Path, dest: Path) -> LayerBlob:
    """Gzip an uncompressed tar layer someone else wrote (``docker save`` holds them so) to
    ``dest`` (atomically), as ``write_layer`` compresses its own: the same level, no mtime."""

    def copy_tar(uncompressed: _Sink) -> None:
        with tar.open("rb") as source:
            while chunk := source.read(_COPY_CHUNK):
                uncompressed.write(chunk)
        # (a tar written elsewhere: its index is read from it when needed)

    return _gzipped(dest, copy_tar)


def _gzipped(dest: Path, write_tar: Callable[[_Sink], tuple[Member, ...] | None]) -> LayerBlob:
    """``dest``: the gzip of what ``write_tar`` writes, both streams hashed on the way."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    with scratch.tracked(partial):  # removed on every exit path, an interrupt's too
        with partial.open("wb") as raw_file:
            compressed = _HashingWriter(raw_file)
            with igzip.GzipFile(  # type: ignore[no-untyped-call]
                filename="", mode="wb", compresslevel=_GZIP_LEVEL, fileobj=compressed, mtime=0
            ) as gz:
                uncompressed = _HashingHandover(gz)
                try:
                    members = write_tar(uncompressed)
                except BaseException:
                    uncompressed.abandon()
                    raise
                uncompressed.close()
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


class _TarStream:
    """The tar stream ``tarfile.open(mode="w|", format=PAX_FORMAT)`` writes, byte for byte and
    cut the same way (into whole 10 KiB records), with the headers made by tarfile itself
    (``TarInfo.tobuf``) and the files' bytes read in large pieces (tarfile copies them 16 KiB at
    a time through a stream buffer that copies every byte twice more)."""

    def __init__(self, sink: _Sink) -> None:
        self._sink = sink
        self._pending = bytearray()  # the start of the next record
        self.offset = 0  # bytes written, as TarFile.offset counts them

    def add(self, info: tarfile.TarInfo, data: Iterable[bytes] = ()) -> None:
        """``TarFile.addfile``: the header, then ``info.size`` bytes from the pieces of ``data``
        padded to whole blocks (a file shorter than its header says is an error, as there)."""
        self._write(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
        if info.size == 0:
            return
        remaining = info.size
        for piece in data:
            kept = piece[:remaining]  # a file that grew since: the size its header says
            self._write(kept)
            remaining -= len(kept)
            if not remaining:
                break
        if remaining:
            raise OSError(f"unexpected end of data: {info.name} shrank while it was written")
        if tail := info.size % tarfile.BLOCKSIZE:
            self._write(tarfile.NUL * (tarfile.BLOCKSIZE - tail))

    def close(self) -> None:
        """The end of the archive (two zero blocks), padded to a whole record, as
        ``TarFile.close`` writes it."""
        self._write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
        if tail := self.offset % tarfile.RECORDSIZE:
            self._write(tarfile.NUL * (tarfile.RECORDSIZE - tail))
        if self._pending:
            self._sink.write(bytes(self._pending))
            self._pending.clear()

    def _write(self, data: bytes) -> None:
        self.offset += len(data)
        view = memoryview(data)
        if self._pending:
            take = tarfile.RECORDSIZE - len(self._pending)
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < tarfile.RECORDSIZE:
                return
            self._sink.write(bytes(self._pending))
            self._pending.clear()
        whole = len(view) - len(view) % tarfile.RECORDSIZE
        for start in range(0, whole, tarfile.RECORDSIZE):
            self._sink.write(view[start : start + tarfile.RECORDSIZE].tobytes())
        self._pending += view[whole:]


def _add(
    tar: _TarStream,
    entry: LayerEntry,
    mtime: int,
    ordinal: int,
    observe: MemberObserver | None,
) -> tarfile.TarInfo:
    """Write ``entry`` (shown to ``observe`` first, when it is a file); returns the header
    written (its name, type, mode, size, link)."""
    info = _tarinfo(entry, mtime)
    if info.type != tarfile.REGTYPE:
        tar.add(info)
        return info
    if entry.data is not None:
        handle: BinaryIO = io.BytesIO(entry.data)
    elif entry.source is not None:
        handle = entry.source.open("rb")
    else:  # _tarinfo made a regular file only for data or source entries
        raise ValueError(f"layer entry {entry.path!r} has no content")
    with handle:
        if observe is None:
            tar.add(info, iter(functools.partial(handle.read, _COPY_CHUNK), b""))
        else:
            with LazyBuffer(handle, info.size) as seen:
                observe(ordinal, info.name, seen)
                tar.add(info, seen.pieces(_COPY_CHUNK))
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
