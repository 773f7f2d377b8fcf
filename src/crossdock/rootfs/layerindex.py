"""The member index of one layer tarball, read once and then cached by the layer's digest.

A layer's index is the list of its tar members in order: name as written, type, mode, size, link
target and where the member's data starts in the uncompressed stream. Building a filesystem view
needs only this list, and reading a file needs only its offset and size, so with the index cached
a layer that was seen before is never decompressed just to learn what is in it.

The pass that indexes a layer also hashes its uncompressed stream, the digest an image config
must name as the layer's ``diff_id`` (a runtime refuses to unpack a layer whose uncompressed
bytes have another digest), kept beside the index under the same key in a record of its own: a
small record, so verification reads it for every layer without loading their indexes.

Why the cache is sound: it is keyed by the digest of the compressed blob, and callers pass a
digest only for blobs whose bytes were checked against it (the blob cache holds verified blobs
only; layers crossdock writes are hashed while written). Equal digests mean equal bytes, so an
index can never describe other contents than the blob it is used for. Damaged or truncated
index files fail their checksum and are rebuilt from the layer.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NamedTuple, cast

from crossdock.cache import CacheLayout
from crossdock.errors import UnsafeContentError
from crossdock.image.digest import Digest

__all__ = [
    "FileVisitor",
    "IndexCache",
    "LayerIndex",
    "Member",
    "MemberType",
    "layer_members",
    "normalize",
    "open_decompressed",
    "open_layer_stream",
    "read_index",
    "uncompressed_digest",
]

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_READ_BUFFER = 1 << 20
# Inflated on another thread in blocks of this size (isal's queue holds two of them ahead).
_AHEAD_BLOCK = 256 << 10
# Bump when the index format or what is recorded changes; old records are then ignored.
_KIND = "layer-index"
_VERSION = 3
# A layer's uncompressed digest, by the same key (a record of its own: see the module's doc).
_UNCOMPRESSED_KIND = "layer-diff-id"
_UNCOMPRESSED_VERSION = 1


def normalize(name: str) -> str | None:
    """``./usr//lib/../lib/x`` -> ``/usr/lib/x``; None when the name climbs above the root."""
    probe = "/" + name
    if "/." not in probe and "//" not in probe:  # the usual name: nothing to resolve
        return "/" + name.rstrip("/")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


class MemberType:
    """One-letter member types, as stored in the index."""

    FILE = "f"
    SPARSE = "s"  # a regular file stored sparse: its data is not ``size`` bytes at ``offset``
    DIRECTORY = "d"
    SYMLINK = "l"
    HARDLINK = "h"
    OTHER = "o"  # devices, fifos

    ALL = frozenset({FILE, SPARSE, DIRECTORY, SYMLINK, HARDLINK, OTHER})


class Member(NamedTuple):  # a tuple: an image has thousands, made on every build
    ordinal: int  # position of the member in the tar (0 = first)
    name: str  # as written in the tar (a view reports names that escape the root as written)
    path: str | None  # ``name`` normalised (``normalize``); None when it climbs above the root
    type: str  # a MemberType letter
    mode: int
    size: int
    linkname: str
    offset: int  # where its data starts in the uncompressed stream

    def to_json(self) -> list[object]:
        # The name as written is stored only when the path does not say it (most names don't).
        name = None if self.path is not None and self.path[1:] == self.name else self.name
        return [self.path, name, self.type, self.mode, self.size, self.linkname, self.offset]

    @classmethod
    def from_json(cls, ordinal: int, row: list[object]) -> Member:
        path, name, type_, mode, size, linkname, offset = row
        if path is not None and not isinstance(path, str):
            raise TypeError("path")
        if name is None:
            if path is None:
                raise ValueError("a member needs a path or a name")
            name = path[1:]
        if type_ not in MemberType.ALL:
            raise ValueError(f"unknown member type {type_!r}")
        # Exactly what the index writes (to_json), nothing converted: a row of other types is
        # damage (the record is read as absent and the layer indexed again).
        if (
            type(name) is not str
            or type(mode) is not int
            or type(size) is not int
            or type(linkname) is not str
            or type(offset) is not int
            or mode < 0
            or size < 0
            or offset < 0
        ):
            raise ValueError("a member's name, mode, size, link name or offset")
        if path is not None and not path.startswith("/"):
            raise ValueError("a member's path is absolute")
        # Made as the tuple it is (an image's views load thousands of members on every build).
        return tuple.__new__(cls, (ordinal, name, path, type_, mode, size, linkname, offset))


@contextmanager
def open_decompressed(path: Path, *, whole: bool = False) -> Iterator[IO[bytes]]:
    """A layer's uncompressed tar stream, choosing the codec by magic bytes.

    Gzip is inflated with python-isal (about 2x faster than zlib here; it reads multi-member gzip
    like the standard library does). With ``whole`` (a reader that goes through the whole
    layer, front to back), it is inflated on another thread, ahead of the reader (isal releases
    the GIL), so that inflating and reading the tar overlap on two cores; a reader that takes a
    few files and stops inflates no more than it reads.
    """
    with path.open("rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(_GZIP_MAGIC):
            from isal import igzip, igzip_threaded, isal_zlib

            # isal's stub types its ``error`` class as an instance; it is IsalError(Exception).
            isal_error: type[Exception] = isal_zlib.error  # type: ignore[assignment]
            try:
                if whole:
                    # At most a few blocks of _AHEAD_BLOCK bytes inflated ahead (flat memory).
                    with igzip_threaded.open(  # type: ignore[no-untyped-call]
                        raw, "rb", block_size=_AHEAD_BLOCK
                    ) as ahead:
                        yield ahead
                    return
                with igzip.open(raw, "rb") as inflated:  # type: ignore[no-untyped-call]
                    yield io.BufferedReader(inflated, _READ_BUFFER)
            except (EOFError, igzip.BadGzipFile, isal_error) as err:
                raise UnsafeContentError(
                    f"layer {path} is not a readable gzip stream: {err or type(err).__name__}",
                    hint="the blob is damaged or truncated; pull or build it again",
                ) from err
        elif magic == _ZSTD_MAGIC:
            raise UnsafeContentError(
                f"layer {path} is zstd-compressed, which crossdock cannot read yet",
                hint="export the image with gzip layers (docker buildx: compression=gzip)",
            )
        else:
            yield raw


# Bounds on what one layer may make crossdock hold, enforced while streaming, before allocating:
# tarfile reads a PAX or GNU long-name header whole, so its size is checked first (a 10 GB PAX
# header compresses to a few MB); an index is one row per member, so members are counted.
MAX_EXTENDED_HEADER = 1 << 20
MAX_MEMBERS = 500_000

_EXTENDED_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses an extended header larger than MAX_EXTENDED_HEADER before
    tarfile reads it into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_TYPES and self.size > MAX_EXTENDED_HEADER:
            raise tarfile.HeaderError(
                f"an extended header of {self.size} bytes (more than {MAX_EXTENDED_HEADER})"
            )
        member: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
        return member  # (_proc_member is private, and unchanged for many Python releases)


# A forward pass skips a member's data by reading it; past the end of the stream each read
# returns nothing, so a header announcing more data than there is (a size of 2**88 fits a base-256
# size field) would make tarfile read nothing for ever. No reader of a real layer asks this often
# in a row after the end: the stream ends there, as a truncated one does.
_EMPTY_READS_AT_END = 64


class _EndOfStream:
    """The file object tarfile reads a layer from: after ``_EMPTY_READS_AT_END`` reads in a row
    that returned nothing, it raises EOFError (a truncated layer) instead of returning nothing.
    With ``hasher``, every byte read through it is hashed (tarfile's reads are 10 KiB records:
    hashlib releases the GIL for each, the inflating thread keeps its core)."""

    def __init__(self, stream: IO[bytes], hasher: hashlib._Hash | None = None) -> None:
        self._stream = stream
        self._empty_reads = 0
        self._hasher = hasher

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data or size == 0:
            self._empty_reads = 0
            if self._hasher is not None:
                self._hasher.update(data)
            return data
        self._empty_reads += 1
        if self._empty_reads > _EMPTY_READS_AT_END:
            raise EOFError("the layer ends inside a member's data (its header says it is larger)")
        return data

    def drain(self) -> None:
        """Read (and hash) what tarfile left after the archive's end (its zero blocks, the
        padding of its last record, anything after them)."""
        while self.read(_READ_BUFFER):
            pass


@contextmanager
def open_layer_stream(
    path: Path, *, whole: bool = False, hasher: hashlib._Hash | None = None
) -> Iterator[tarfile.TarFile]:
    """Open a layer (tar, tar+gzip) for one forward pass of ``tarfile``; ``whole``: the pass
    reads the whole layer (``open_decompressed``). ``hasher`` is given the whole uncompressed
    stream when the pass ends without an error (the rest after tarfile stops is read too)."""
    try:
        with open_decompressed(path, whole=whole) as stream:
            source = _EndOfStream(stream, hasher)
            with tarfile.open(
                fileobj=cast("IO[bytes]", source),  # tarfile only reads it
                mode="r|",
                tarinfo=_BoundedTarInfo,
            ) as tar:
                yield tar
            if hasher is not None:
                source.drain()
    except (tarfile.TarError, EOFError) as err:  # EOFError: a truncated gzip stream
        raise UnsafeContentError(f"layer {path} is not a readable tar archive: {err}") from err


def _type_of(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return MemberType.DIRECTORY
    if member.issym():
        return MemberType.SYMLINK
    if member.islnk():
        return MemberType.HARDLINK
    if member.isreg():
        return MemberType.SPARSE if member.issparse() else MemberType.FILE
    return MemberType.OTHER


# Called with each regular file member and its bytes (a forward-only stream, valid during the
# call only) while a layer is indexed: whoever needs the files' bytes reads them in the same pass.
FileVisitor = Callable[["Member", IO[bytes]], None]


class LayerIndex(NamedTuple):
    """What one pass over a layer learns: its members, and the digest of its uncompressed
    stream (what an image config must name as its ``diff_id``)."""

    members: list[Member]
    uncompressed: Digest


def read_index(path: Path, on_file: FileVisitor | None = None) -> LayerIndex:
    """Every member of a layer, in tar order, and its uncompressed digest (one decompressing
    pass, no data kept). ``on_file`` sees every regular (not sparse) file's bytes in the same
    pass."""
    members: list[Member] = []
    hasher = hashlib.sha256()
    with open_layer_stream(path, whole=True, hasher=hasher) as tar:
        while (info := tar.next()) is not None:
            if len(members) >= MAX_MEMBERS:
                raise UnsafeContentError(
                    f"layer {path} has more than {MAX_MEMBERS} members; not read further",
                    hint="split the image's files over several layers",
                )
            # Stream mode keeps every TarInfo in tar.members; drop them to keep memory flat.
            tar.members.clear()  # type: ignore[attr-defined]  # typeshed omits it
            member = Member(
                len(members),
                info.name,
                normalize(info.name),
                _type_of(info),
                info.mode,
                info.size,
                info.linkname,
                info.offset_data,
            )
            members.append(member)
            if on_file is not None and member.type == MemberType.FILE:
                data = tar.extractfile(info)
                if data is not None:  # pragma: no branch - regular members always have data
                    on_file(member, data)
    return LayerIndex(members, Digest("sha256:" + hasher.hexdigest()))


class IndexCache:
    """Layer indexes and uncompressed digests in the cache folder, one record of each per
    layer digest."""

    def __init__(self, cache_root: Path) -> None:
        layout = CacheLayout(cache_root)
        self._records = layout.records(_KIND, version=_VERSION)
        self._uncompressed = layout.records(_UNCOMPRESSED_KIND, version=_UNCOMPRESSED_VERSION)

    def path_for(self, digest: Digest) -> Path:
        return self._records.path_for(digest.dashed)

    def load(self, digest: Digest) -> list[Member] | None:
        """The cached index of ``digest``, or None when absent, damaged or of another format."""
        return self._records.load(digest.dashed, _members)

    def store(self, digest: Digest, members: Sequence[Member], uncompressed: Digest) -> None:
        """Keep the index and the uncompressed digest of the layer whose (verified) digest is
        ``digest``."""
        self._records.store(digest.dashed, [m.to_json() for m in members])
        self.store_uncompressed(digest, uncompressed)

    def uncompressed(self, digest: Digest) -> Digest | None:
        """The cached uncompressed digest of the layer ``digest``, or None (absent, damaged)."""
        return self._uncompressed.load(digest.dashed, _digest)

    def store_uncompressed(self, digest: Digest, uncompressed: Digest) -> None:
        self._uncompressed.store(digest.dashed, str(uncompressed))


def _members(rows: object) -> list[Member]:
    if type(rows) is not list:  # an object or a string would iterate as keys or characters
        raise TypeError("a layer index is a list of members")
    return [Member.from_json(i, row) for i, row in enumerate(rows)]


def _digest(value: object) -> Digest:
    if type(value) is not str:
        raise TypeError("an uncompressed digest is a string")
    return Digest(value)  # a ValueError when it is not one


def layer_members(
    path: Path,
    digest: Digest | None,
    cache: IndexCache | None,
    on_file: FileVisitor | None = None,
) -> tuple[list[Member], Digest | None]:
    """The index of one layer: from ``cache`` when its digest is known, else read (and cached,
    with its uncompressed digest). ``on_file`` sees the files' bytes only when the layer is read
    (not for a cached index). Returned with the layer's uncompressed digest when it was read
    now (else None: ``IndexCache.uncompressed`` has it, or ``uncompressed_digest``)."""
    if cache is None or digest is None:
        return read_index(path, on_file)
    members = cache.load(digest)
    if members is not None:
        return members, None
    index = read_index(path, on_file)
    cache.store(digest, index.members, index.uncompressed)
    return index


def uncompressed_digest(
    path: Path, digest: Digest | None, cache: IndexCache | None, *, algorithm: str = "sha256"
) -> Digest:
    """The digest (``algorithm``) of a layer's uncompressed stream: from ``cache`` under the
    layer's verified ``digest`` when it is there, else hashed from the layer, streamed (flat
    memory; no tar parsing), and cached (sha256 only: what indexing a layer computes)."""
    key = digest if cache is not None and algorithm == "sha256" else None
    if cache is not None and key is not None:
        known = cache.uncompressed(key)
        if known is not None:
            return known
    hasher = hashlib.new(algorithm)
    with open_decompressed(path, whole=True) as stream:
        while chunk := stream.read(_READ_BUFFER):
            hasher.update(chunk)
    found = Digest(f"{algorithm}:{hasher.hexdigest()}")
    if cache is not None and key is not None:
        cache.store_uncompressed(key, found)
    return found
