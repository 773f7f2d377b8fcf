"""crossdock's cache folder (``~/.cache/crossdock``): its layout, atomic writes, checksummed
records and verified blobs. The one module that decides where anything cached lives.

Layout (``CacheLayout``)::

    blobs/<algorithm>/<hex>        blobs by digest: base layers pulled, layers crossdock wrote
    blobs/.stamps/<key>.rec        the identity of each blob file when it was last verified
    records/<kind>/<key>.rec       small JSON facts (``Records``), one file per key
    deps/<key>/                    installed dependency trees (crossdock.resolve.cache)
    bytecode/                      compiled .pyc files by source hash (crossdock.resolve.bytecode)
    work/                          scratch space for layers being written (same file system)
    .in-use                        its users hold it shared, a prune alone (crossdock.cachelock)

What makes it safe to reuse (the cache folder is outside data: it may be damaged, restored from
a shared CI cache, or written by an older crossdock):

- Every write is atomic (``atomic_write``): a temporary file in the same folder, renamed into
  place, so a reader sees the old file or the new one, never a part.
- A record's header names its kind, format version and key, and carries the SHA-256 of its
  payload. A damaged record, one of another format, or one copied under another key is ignored
  (``Records.load`` returns None) and the caller rebuilds it.
- Facts about content are keyed by digests crossdock computed from the bytes themselves
  (a blob's digest checked while downloading or writing, a layer's diff_id computed while
  streaming it), never by a digest some other document claims.
- A blob is trusted only while the file is the one crossdock verified: ``BlobCache`` records the
  file's identity (size, inode, modification and change times) after hashing it, and hashes it
  again when any of them differs, so a blob changed in place (even to the same size) or restored
  from elsewhere is re-verified before it is used, and replaced when it does not match.

To add a cache: pick a record kind (a short name) and a format version, key it by content that
was verified on the way in, and parse what ``Records.load`` returns defensively (the ``parse``
callback: any ValueError/TypeError/KeyError/IndexError there means "damaged, rebuild").
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from crossdock import cachelock, scratch
from crossdock.errors import CrossdockError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest

__all__ = [
    "BlobCache",
    "CacheLayout",
    "Records",
    "atomic_write",
    "file_digest",
    "in_use_if_any",
]

T = TypeVar("T")

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_HASH_CHUNK = 1 << 20
# What a record's parse callback may raise on a damaged (but checksum-valid) payload; a
# RecursionError is JSON nested past Python's limit.
_DAMAGED = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RecursionError,
    CrossdockError,
)
# Records are small facts (the largest, a base's layer view, is under 1 MB): anything larger
# is not one, and is not read.
MAX_RECORD_BYTES = 64 * 1024 * 1024


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write a whole file or nothing: readers see the old file or the new one, never a part.
    The file is a new one (its own inode, ``mode`` or 0600): a hard link to the old one keeps
    the old bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = scratch.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        scratch.forget(tmp)


def rewrite_file(path: Path, data: bytes) -> None:
    """Give an existing file new bytes as a new file with its mode (``atomic_write``), never by
    writing into it: an installed dependency tree shares its files' inodes with uv's cache
    (crossdock.resolve.uv links them), whose bytes must not change."""
    atomic_write(path, data, mode=stat.S_IMODE(path.stat().st_mode))


@dataclass(frozen=True)
class CacheLayout:
    """Where each cache lives under one root (the ``cache-dir`` setting)."""

    root: Path

    @property
    def blobs(self) -> BlobCache:
        return BlobCache(self.root / "blobs")

    @property
    def deps(self) -> Path:
        """Installed dependency trees, one folder per key."""
        return self.root / "deps"

    @property
    def bytecode(self) -> Path:
        """Compiled .pyc files by source hash (crossdock.resolve.bytecode)."""
        return self.root / "bytecode"

    @property
    def work(self) -> Path:
        """Scratch space on the cache's file system (layers are renamed from it into blobs/)."""
        return self.root / "work"

    def records(self, kind: str, *, version: int) -> Records:
        """The records of one kind; bump ``version`` when what is recorded changes."""
        return Records(self.root / "records" / kind, kind=kind, version=version)

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Held while this cache's entries are used (shared: builds, verifications, rebases
        and releases run at once), so a prune waits for them to end (``crossdock.cachelock``).
        Each command holds it for as long as it uses them: a build up to its outputs and its
        push, an answer from the record, ``verify``, ``rebase``."""
        with cachelock.locked(self.root, exclusive=False):
            yield


@contextlib.contextmanager
def in_use_if_any(cache_dir: Path | None) -> Iterator[None]:
    """``CacheLayout(cache_dir).in_use()``, or nothing for a reader given no cache folder."""
    if cache_dir is None:
        yield
        return
    with CacheLayout(cache_dir).in_use():
        yield


def _read_record(path: Path) -> bytes | None:
    """The bytes of a record file; None when it is absent, unreadable, or not a regular file
    of at most MAX_RECORD_BYTES (a shared cache may hold a FIFO, which would block open()
    without O_NONBLOCK, or a link to a device)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as stream:
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
                return None
            data = stream.read(MAX_RECORD_BYTES + 1)
        except OSError:
            return None
    return data if len(data) <= MAX_RECORD_BYTES else None


class Records:
    """Small JSON facts, one checksummed file per key, written atomically.

    File format: one header line ``crossdock-record <kind>/<version> <key> <sha256>`` and the
    JSON payload; a file whose header does not match exactly is ignored.
    """

    def __init__(self, folder: Path, *, kind: str, version: int) -> None:
        if not _KEY_RE.match(kind):
            raise ValueError(f"record kind {kind!r} is not a plain name")
        self.folder = folder
        self._format = f"crossdock-record {kind}/{version}"

    def path_for(self, key: str) -> Path:
        if not _KEY_RE.match(key):
            raise ValueError(f"record key {key!r} is not a plain name")
        return self.folder / f"{key}.rec"

    def load(self, key: str, parse: Callable[[Any], T]) -> T | None:
        """``parse(payload)`` of the record under ``key``; None when absent, damaged, foreign or
        of another format, or when ``parse`` finds it malformed (the caller rebuilds it)."""
        data = _read_record(self.path_for(key))
        if data is None:
            return None
        header, sep, payload = data.partition(b"\n")
        expected = f"{self._format} {key} {hashlib.sha256(payload).hexdigest()}".encode()
        if not sep or header != expected:
            return None
        try:
            return parse(json.loads(payload))
        except _DAMAGED:
            return None

    def store(self, key: str, value: object) -> bool:
        """Record ``value`` (JSON-serialisable) under ``key``. A read-only or full cache costs
        speed, not correctness: failures to write are swallowed (False)."""
        return self.store_json(
            key, json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        )

    def store_json(self, key: str, payload: bytes) -> bool:
        """Record ``payload``, a value already written as JSON (by pieces, say), under ``key``;
        False when it could not be written, as ``store``."""
        header = f"{self._format} {key} {hashlib.sha256(payload).hexdigest()}".encode()
        try:
            atomic_write(self.path_for(key), header + b"\n" + payload)
        except OSError:
            return False
        return True

    def load_or_store(
        self,
        key: str,
        parse: Callable[[Any], T],
        make: Callable[[], T],
        dump: Callable[[T], object],
    ) -> T:
        """The record under ``key`` (``load``), else ``make()``, recorded as ``dump`` of it."""
        cached = self.load(key, parse)
        if cached is not None:
            return cached
        value = make()
        self.store(key, dump(value))
        return value


def _identity(path: Path) -> list[int] | None:
    """What changes whenever a file's bytes change: size, inode, device, mtime, ctime (ctime
    cannot be set back by a user, and a copy restored from elsewhere has a new inode)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns]


def file_digest(path: Path, algorithm: str) -> tuple[str, int]:
    """The hex digest (``algorithm``) and size of a file's bytes, read in a stream (never whole
    in memory): how a blob on disk, cached or in an OCI layout, is checked."""
    hasher = hashlib.new(algorithm)
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


class BlobCache:
    """Blobs by digest (the OCI image-layout ``blobs/`` layout), each checked before use.

    A blob enters the cache only verified (downloaded and hashed by the registry client, or
    written and hashed by crossdock) and is stamped with the file's identity; a later use of a
    blob whose identity changed hashes it again, and a blob that no longer matches its digest
    counts as absent: it is fetched or written again, replacing the damaged file at once.

    Builds of several platforms (threads) and several crossdock processes share one cache, and
    often write the same blob at once (an app layer is the same for arm64 and amd64). So a file
    under a blob's name is only ever replaced whole (a rename), never deleted: a reader that
    found a damaged file must not delete the good one another writer just put in its place.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stamps = Records(root / ".stamps", kind="blob-stamps", version=1)

    def path_for(self, digest: Digest) -> Path:
        """Where the blob with ``digest`` lives (whether or not it is there yet)."""
        return self.root / digest.algorithm / digest.hex

    def verified(self, digest: Digest, size: int | None = None) -> Path | None:
        """The cached file of ``digest`` if it is there and still holds those bytes, else None
        (a damaged file stays until the blob is written again, which replaces it)."""
        path = self.path_for(digest)
        identity = _identity(path)
        if identity is None or (size is not None and identity[0] != size):
            return None
        key = digest.dashed
        if self._stamps.load(key, list) == identity:
            return path
        try:
            actual, actual_size = file_digest(path, digest.algorithm)
        except OSError:
            return None  # replaced or removed meanwhile by another writer, or unreadable
        if actual != digest.hex or (size is not None and actual_size != size):
            return None
        # The stamp is the identity seen before hashing: if another writer replaced the file
        # meanwhile, the stamp names the old file and the next use hashes the new one.
        self._stamps.store(key, identity)
        return path

    def has(self, descriptor: Descriptor) -> bool:
        """Whether the blob is cached and still matches its descriptor."""
        return self.verified(descriptor.digest, descriptor.size) is not None

    def ensure(
        self, descriptor: Descriptor, download: Callable[[Descriptor, Path], object]
    ) -> Path:
        """The cached, verified file for ``descriptor``, calling ``download(descriptor, dest)``
        when it is missing or damaged. ``download`` must write ``dest`` atomically and verified
        against the descriptor, as ``RegistryClient.fetch_blob`` does."""
        path = self.verified(descriptor.digest, descriptor.size)
        if path is not None:
            return path
        path = self.path_for(descriptor.digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        download(descriptor, path)
        self._stamp(descriptor.digest, path)
        return path

    def adopt(self, source: Path, digest: Digest) -> Path:
        """Move a file crossdock wrote and hashed itself (its digest is ``digest``) into the
        cache; when the blob is there already, the cached copy is kept and ``source`` dropped."""
        existing = self.verified(digest)
        if existing is not None:
            source.unlink(missing_ok=True)
            return existing
        path = self.path_for(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            source.replace(path)  # whole at once, over a damaged file if one is there
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            # Written on another file system: copied beside its name first, then renamed.
            fd, partial = scratch.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            os.close(fd)
            try:
                shutil.copyfile(source, partial)
                partial.replace(path)
            finally:
                partial.unlink(missing_ok=True)
                scratch.forget(partial)
            source.unlink(missing_ok=True)
        self._stamp(digest, path)
        return path

    def keep_bytes(self, data: bytes, digest: Digest) -> Path:
        """Keep ``data``, a small document whose bytes were checked against ``digest`` (a
        manifest or config read from a registry), as the blob of ``digest``."""
        if not digest.matches(data):
            raise ValueError(f"bytes that are not {digest}")
        path = self.path_for(digest)
        atomic_write(path, data)
        self._stamp(digest, path)
        return path

    def link_to(self, digest: Digest, dest: Path) -> bool:
        """Hard-link the cached blob of ``digest`` at ``dest`` (an output on the same file
        system), checked first; False when it is not cached or cannot be linked (copy it). A
        new link changes the file's change time, so a blob that matched its stamp just before
        is stamped again: the next use does not hash it for nothing."""
        path = self.verified(digest)
        if path is None:
            return False
        try:
            os.link(path, dest)
        except OSError:
            return False
        self._stamp(digest, path)
        return True

    def _stamp(self, digest: Digest, path: Path) -> None:
        identity = _identity(path)
        if identity is not None:
            self._stamps.store(digest.dashed, identity)
