"""The filesystem an image's runtime sees, read straight from its layer tarballs.

Layers are applied the way the OCI image spec (layer.md) says a runtime applies them: later layers
win, ``.wh.NAME`` deletes NAME from lower layers, ``.wh..wh..opq`` hides every lower-layer child of
its directory. Nothing is extracted to disk and no layer is held in memory:

* building a ``LayerFS`` takes every layer's member index (``layerindex``: read from the tar
  headers once, or from the index cache by layer digest, with no decompression at all) into a
  tree of the winning entries, each remembering its layer and its member in that layer (pass 1);
* ``iter_files`` then streams only the layers that hold a wanted file, skips to each wanted
  member's data offset and hands its bytes to the caller as a lazily filled, bounded, seekable
  buffer (pass 2).

A layer whose index is not cached is decompressed for pass 1 anyway, so whoever will need its
files' bytes can take them in that pass instead of a second one: ``on_file`` sees every regular
file as it is indexed, and the small files ``keep`` names are held (``iter_files`` serves them
from memory).

Paths are normalised to absolute POSIX form (``/usr/lib/x.so``). Symlinks are resolved as inside a
chroot: an absolute target starts again at the image root and ``..`` never climbs above it. A tar
member whose own name climbs out of the root is not part of the view; it is recorded in
``anomalies`` so a verifier can report it.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, NamedTuple

from crossdock.cache import CacheLayout
from crossdock.errors import UnsafeContentError
from crossdock.image.digest import Digest
from crossdock.rootfs.layerindex import (
    FileVisitor,
    IndexCache,
    Member,
    MemberType,
    layer_members,
    normalize,
    open_decompressed,
    open_layer_stream,
    uncompressed_digest,
)

__all__ = [
    "Anomaly",
    "EntryKind",
    "FileContent",
    "FsEntry",
    "Layer",
    "LayerFS",
    "LayerFileVisitor",
    "LazyBuffer",
    "normalize",
    "open_layer_stream",
]

# Bounds on outside data. A real image has well under a million paths; symlink chains longer
# than Linux's own limit (40, ELOOP) are refused like the kernel refuses them.
MAX_ENTRIES = 2_000_000
MAX_SYMLINK_HOPS = 40
MAX_PATH = 4096
# Per file, for parsing: above the largest real shared libraries (libtorch_cpu.so is ~0.5 GiB),
# below what a hostile "file" of a tar bomb could claim.
DEFAULT_READ_LIMIT = 4 * 1024 * 1024 * 1024
# What one file's bytes may take in memory before they spill to a temporary file: ELF parsing
# jumps to section headers at a file's end, so a whole .so may have to be read; spilling keeps
# memory flat whatever the size of the dependencies.
_IN_MEMORY = 8 * 1024 * 1024
# The largest file ``keep`` holds in memory while indexing (a dpkg status file is a few MB, an
# rpm database tens of MB): a larger one is read again when asked for.
MAX_KEPT = 16 * 1024 * 1024

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_SKIP_CHUNK = 1 << 20
_FILL_CHUNK = 1 << 20


@dataclass(frozen=True)
class Layer:
    index: int  # 0 = the bottom layer
    path: Path
    digest: Digest | None = None

    def label(self) -> str:
        return f"layer {self.index}" + (f" ({self.digest})" if self.digest else "")


class EntryKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    OTHER = "other"  # devices, fifos


class FsEntry(NamedTuple):  # a tuple: a view makes one per path (thousands, on every build)
    path: str
    kind: EntryKind
    layer: Layer
    size: int = 0
    mode: int = 0
    link_target: str | None = None  # symlinks: the target as written in the tar
    # Where the bytes are: (layer index, ordinal of the tar member in that layer). For a hardlink
    # this is its target's member, possibly in a lower layer.
    content: tuple[int, int] | None = None


@dataclass(frozen=True)
class Anomaly:
    layer: Layer
    member: str
    reason: str


class _Node:
    # A plain class with slots: an image's view makes one per path (thousands, on every build).
    __slots__ = ("children", "entry")

    def __init__(self, entry: FsEntry | None) -> None:
        self.entry = entry  # None for a directory implied by a child but not in any tar
        self.children: dict[str, _Node] = {}

    @property
    def is_dir(self) -> bool:
        return self.entry is None or self.entry.kind is EntryKind.DIRECTORY


class LazyBuffer(io.RawIOBase):
    """A seekable view of a forward-only stream of known size, filled only as far as it is read.

    ELF parsers seek around; a tar member streamed from a gzip layer can only be read forward.
    This keeps what has been read (in memory up to 8 MiB, then in a temporary file), reads on
    when a later position is asked for, and refuses to go past ``limit`` bytes.
    """

    def __init__(
        self, source: IO[bytes] | io.RawIOBase, size: int, limit: int = DEFAULT_READ_LIMIT
    ) -> None:
        super().__init__()
        self._source = source
        self._size = size
        self._limit = limit
        self._spool = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY)  # noqa: SIM115 - closed in close()
        self._filled = 0
        self._pos = 0

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _fill(self, end: int) -> None:
        end = min(end, self._size)
        if end > self._limit:
            raise UnsafeContentError(
                f"reading {end} bytes of one file exceeds the parse limit of {self._limit} bytes",
                hint="the file is skipped by checks that need its headers; raise the limit if real",
            )
        if self._filled >= end:
            return
        self._spool.seek(self._filled)
        while self._filled < end:
            # Bounded reads: a seek to the end of a 3.5 GiB (sparse) file must not become one
            # 3.5 GiB read; what is read spills to disk past _IN_MEMORY.
            chunk = self._source.read(min(max(end - self._filled, 64 * 1024), _FILL_CHUNK))
            if not chunk:
                break
            self._spool.write(chunk)
            self._filled += len(chunk)

    def read(self, size: int = -1) -> bytes:
        end = self._size if size is None or size < 0 else self._pos + size
        self._fill(end)
        end = min(end, self._filled)
        if end <= self._pos:
            return b""
        self._spool.seek(self._pos)
        data = self._spool.read(end - self._pos)
        self._pos += len(data)
        return data

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes, without moving the position."""
        self._fill(size)
        self._spool.seek(0)
        return self._spool.read(min(size, self._filled))

    def pieces(self, chunk: int) -> Iterator[bytes]:
        """Every byte of the stream from its start, up to its size, in pieces of at most
        ``chunk``: what was read so far (kept), then the rest of the source (not kept). A
        writer that lets a check read a file first then writes exactly the bytes it read."""
        self._spool.seek(0)
        done = 0
        while done < self._filled:
            piece = self._spool.read(min(chunk, self._filled - done))
            done += len(piece)
            yield piece
        while done < self._size:
            piece = self._source.read(min(chunk, self._size - done))
            if not piece:
                return
            done += len(piece)
            yield piece

    def close(self) -> None:
        self._spool.close()
        super().close()


@dataclass(frozen=True)
class FileContent:
    """A winning regular file and its bytes, valid until the iterator moves on."""

    entry: FsEntry
    also: tuple[FsEntry, ...]  # other winning paths with the same bytes (hardlinks)
    data: LazyBuffer


def _tar_members(tar: tarfile.TarFile) -> Iterator[tuple[int, tarfile.TarInfo]]:
    ordinal = 0
    while (member := tar.next()) is not None:
        tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps them otherwise
        yield ordinal, member
        ordinal += 1


class _Section(io.RawIOBase):
    """``size`` bytes of a forward-only stream, from where it stands now."""

    def __init__(self, source: IO[bytes], size: int) -> None:
        super().__init__()
        self._source = source
        self._left = size
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._source.read(want) if want else b""
        self._left -= len(data)
        self.consumed += len(data)
        return data


def _from_memory(entries: list[FsEntry], data: bytes, limit: int) -> Iterator[FileContent]:
    buffer = LazyBuffer(io.BytesIO(data), len(data), limit)
    try:
        yield FileContent(entries[0], tuple(entries[1:]), buffer)
    finally:
        buffer.close()


def _skip(stream: IO[bytes], count: int) -> None:
    while count > 0:
        chunk = stream.read(min(count, _SKIP_CHUNK))
        if not chunk:
            raise UnsafeContentError("a layer ended before a member its index lists")
        count -= len(chunk)


def _unsafe_member(member: Member, parent: str) -> str | None:
    """Why a member is dangerous to extract, though a container runtime would contain it: tools
    that unpack images on a host (docker cp, tar, CI scanners) may write or follow it outside
    their target folder."""
    if member.name.startswith("/"):
        return "absolute path in the layer tar (extractors may write it outside their folder)"
    if member.type == MemberType.OTHER and not (member.path or "").startswith("/dev/"):
        return "device or fifo outside /dev"
    relative_link = member.type == MemberType.SYMLINK and not member.linkname.startswith("/")
    if relative_link and normalize(posixpath.join(parent.lstrip("/"), member.linkname)) is None:
        return f"symlink to {member.linkname!r} climbs out of the image root"
    return None


# Sees each regular file of a layer being indexed, with its bytes (see ``FileVisitor``).
LayerFileVisitor = Callable[[Layer, Member, IO[bytes]], None]


class LayerFS:
    """The merged filesystem of a list of layers (bottom first)."""

    def __init__(
        self,
        layer_paths: Sequence[Path],
        digests: Sequence[Digest | None] | None = None,
        *,
        index_cache: Path | None = None,
        on_file: LayerFileVisitor | None = None,
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        """``digests`` must be the verified digests of the blobs at ``layer_paths`` (or None):
        with ``index_cache`` (crossdock's cache folder), a layer's member index is taken from and
        kept in it under its digest, so a wrong digest would give a wrong view.

        For each layer read to index it (its index not cached), ``on_file`` sees every regular
        file's bytes, and the files whose paths ``keep`` accepts (up to ``MAX_KEPT`` bytes each)
        are held, so that reading them later decompresses nothing."""
        if digests is not None and len(digests) != len(layer_paths):
            raise ValueError("one digest (or None) per layer")
        self.layers = tuple(
            Layer(i, Path(p), digests[i] if digests else None) for i, p in enumerate(layer_paths)
        )
        self.anomalies: list[Anomaly] = []
        self._root = _Node(None)
        self._count = 0
        self._index_cache = IndexCache(index_cache) if index_cache is not None else None
        # Each layer's members, loaded when first needed (a layer under a cached view's is
        # only loaded when its files' bytes are read).
        self._members: list[list[Member] | None] = [None] * len(self.layers)
        # Each layer's uncompressed digest, as the pass that indexed it here hashed it.
        self._uncompressed: dict[int, Digest] = {}
        self._kept: dict[tuple[int, int], bytes] = {}
        # The view of every layer but the top one, kept by their digests: a code-only rebuild
        # applies its new app layer on the view of the unchanged ones (issue 14). Not with
        # visitors: they are there to see the layers' bytes as they are read.
        views = None
        if index_cache is not None and on_file is None and keep is None:
            views = _LowerViews.for_layers(index_cache, self.layers)
        start = 0
        if views is not None and views.restore(self):
            start, views = len(self.layers) - 1, None
        for layer in self.layers[start:]:
            if views is not None and layer.index == len(self.layers) - 1:
                views.store(self)  # the view of the layers below is complete
            visitor = self._visitor(layer, on_file, keep)
            members = self._load_members(layer, visitor)
            self._apply(layer, members)

    def _layer_members(self, index: int) -> list[Member]:
        members = self._members[index]
        if members is None:
            members = self._load_members(self.layers[index], None)
        return members

    def _load_members(self, layer: Layer, visitor: FileVisitor | None) -> list[Member]:
        members, uncompressed = layer_members(layer.path, layer.digest, self._index_cache, visitor)
        self._members[layer.index] = members
        if uncompressed is not None:
            self._uncompressed[layer.index] = uncompressed
        return members

    def uncompressed_digest(self, index: int, algorithm: str = "sha256") -> Digest:
        """The digest of layer ``index``'s uncompressed stream (what the image config must
        name as its ``diff_id``): as this view's pass over the layer hashed it, else from the
        index cache by the layer's digest, else hashed from the layer now (a streamed pass)."""
        known = self._uncompressed.get(index)
        if known is not None and known.algorithm == algorithm:
            return known
        layer = self.layers[index]
        found = uncompressed_digest(
            layer.path, layer.digest, self._index_cache, algorithm=algorithm
        )
        self._uncompressed[index] = found
        return found

    # ----- the view of the lower layers, as a record -----

    def _view_rows(self) -> Iterator[list[object]]:
        """Every node of the view, parents before children and children in the order they
        were placed: ``[depth, name]`` and, when it has one, its entry's fields."""
        stack: list[tuple[int, str, _Node]] = [
            (1, name, child) for name, child in reversed(self._root.children.items())
        ]
        while stack:
            depth, name, node = stack.pop()
            entry = node.entry
            if entry is None:
                yield [depth, name]
            else:
                content = None if entry.content is None else list(entry.content)
                fields = [entry.kind.value, entry.layer.index, entry.size, entry.mode]
                yield [depth, name, *fields, entry.link_target, content]
            stack.extend((depth + 1, n, c) for n, c in reversed(node.children.items()))

    def _restored_root(self, rows: list[object], below: int) -> _Node:
        """The root of the view ``_view_rows`` describes, of the ``below`` lowest layers; a row
        that does not fit them is a ValueError or TypeError (a damaged record)."""
        root = _Node(None)
        nodes: list[_Node] = [root]
        paths: list[str] = [""]
        layers = self.layers[:below]
        kinds = _ENTRY_KINDS
        for row in rows:
            # The record is checksummed (Records): these checks keep a record of another
            # shape from making a view that the code below would misread.
            if type(row) is not list:  # a string or an object would unpack as characters/keys
                raise TypeError("a view row is a list")
            depth, name, *fields = row
            if (
                type(depth) is not int
                or not 0 < depth <= len(nodes)
                or type(name) is not str
                or not _plain_name(name)
            ):
                raise ValueError("a view row's depth or name")
            del nodes[depth:], paths[depth:]
            path = f"{paths[-1]}/{name}"
            entry = None
            if fields:
                kind, layer, size, mode, link_target, content = fields
                if type(size) is not int or type(mode) is not int or size < 0 or mode < 0:
                    raise ValueError("a view row's size or mode")
                if link_target is not None and type(link_target) is not str:
                    raise TypeError("a view row's link target")
                where = None
                if content is not None:
                    if type(content) is not list:
                        raise TypeError("a view row's content is a list")
                    at, ordinal = content
                    if (
                        type(at) is not int
                        or not 0 <= at < below
                        or type(ordinal) is not int
                        or ordinal < 0
                    ):
                        raise ValueError("a view row's content")
                    where = (at, ordinal)
                if type(layer) is not int or not 0 <= layer < below:
                    raise ValueError("a view row's layer is not below the top layer")
                # Made as the tuple it is (thousands per view, on every build).
                entry = tuple.__new__(
                    FsEntry, (path, kinds[kind], layers[layer], size, mode, link_target, where)
                )
            node = _Node(entry)
            nodes[-1].children[name] = node
            nodes.append(node)
            paths.append(path)
        return root

    def _visitor(
        self,
        layer: Layer,
        on_file: LayerFileVisitor | None,
        keep: Callable[[str], bool] | None,
    ) -> FileVisitor | None:
        if on_file is None and keep is None:
            return None

        def visit(member: Member, data: IO[bytes]) -> None:
            path = member.path
            if keep is not None and path is not None and member.size <= MAX_KEPT and keep(path):
                kept = data.read(member.size)
                self._kept[layer.index, member.ordinal] = kept
                data = io.BytesIO(kept)
            if on_file is not None:
                on_file(layer, member, data)

        return visit

    # ----- pass 1: the index -----

    def _apply(self, layer: Layer, members: Sequence[Member]) -> None:
        own: dict[str, FsEntry] = {}
        whiteouts: list[str] = []
        opaque: list[str] = []
        for member in members:
            path = member.path
            if path is None or len(path) > MAX_PATH:
                self.anomalies.append(Anomaly(layer, member.name, "path escapes the root"))
                continue
            cut = path.rfind("/")
            parent, base = path[:cut] or "/", path[cut + 1 :]
            if base == _OPAQUE:
                opaque.append(parent)
                continue
            if base.startswith(_WHITEOUT):
                if not base.startswith(_WHITEOUT + _WHITEOUT):  # other AUFS metadata: skip
                    whiteouts.append(posixpath.join(parent, base[len(_WHITEOUT) :]))
                continue
            unsafe = _unsafe_member(member, parent)
            if unsafe is not None:
                self.anomalies.append(Anomaly(layer, member.name, unsafe))
            entry = self._entry_for(layer, member, path, own)
            if entry is not None:
                own[path] = entry
        # Whiteouts and opaque markers hide lower layers only (layer.md), so they are applied
        # before this layer's own entries, whatever their order in the tar.
        for path in whiteouts:
            self._remove(path)
        for path in opaque:
            node = self._node(path)
            if node is not None:
                node.children.clear()
        parents: dict[str, _Node] = {}
        for path in sorted(own):  # parents before children
            self._put(own[path], parents)

    def _entry_for(
        self,
        layer: Layer,
        member: Member,
        path: str,
        own: dict[str, FsEntry],
    ) -> FsEntry | None:
        kind = member.type
        if kind == MemberType.DIRECTORY:
            return FsEntry(path, EntryKind.DIRECTORY, layer, mode=member.mode)
        if kind == MemberType.SYMLINK:
            return FsEntry(
                path, EntryKind.SYMLINK, layer, mode=member.mode, link_target=member.linkname
            )
        if kind == MemberType.HARDLINK:
            target_path = normalize(member.linkname)
            target = None
            if target_path is not None:
                target = own.get(target_path)
                if target is None:
                    node = self._node(target_path)
                    target = node.entry if node is not None else None
            if target is None or target.kind is not EntryKind.FILE:
                reason = f"hardlink to {member.linkname!r}, which is not a file in this image"
                self.anomalies.append(Anomaly(layer, member.name, reason))
                return None
            return FsEntry(
                path, EntryKind.FILE, layer, target.size, member.mode, content=target.content
            )
        if kind in (MemberType.FILE, MemberType.SPARSE):
            return FsEntry(
                path,
                EntryKind.FILE,
                layer,
                member.size,
                member.mode,
                content=(layer.index, member.ordinal),
            )
        return FsEntry(path, EntryKind.OTHER, layer, mode=member.mode)

    def _node(self, path: str) -> _Node | None:
        node = self._root
        for part in path.strip("/").split("/"):
            if not part:
                continue
            child = node.children.get(part)
            if child is None:
                return None
            node = child
        return node

    def _remove(self, path: str) -> None:
        parent, base = posixpath.split(path)
        node = self._node(parent)
        if node is not None:
            node.children.pop(base, None)

    def _put(self, entry: FsEntry, parents: dict[str, _Node]) -> None:
        """Place one entry; ``parents`` remembers directory nodes already walked to while
        placing this layer's entries. Sound because entries come sorted: a directory's own
        entry is placed before anything under it, so a remembered node is never replaced."""
        cut = entry.path.rfind("/")
        parent_path, base = entry.path[:cut] or "/", entry.path[cut + 1 :]
        node = parents.get(parent_path)
        if node is None:
            node = self._root
            for part in parent_path.strip("/").split("/"):
                if not part:
                    continue
                child = node.children.get(part)
                if child is None or not child.is_dir:
                    # A file in a lower layer where this layer needs a directory is replaced.
                    child = _Node(None)
                    node.children[part] = child
                node = child
            parents[parent_path] = node
        existing = node.children.get(base)
        if entry.kind is EntryKind.DIRECTORY and existing is not None and existing.is_dir:
            existing.entry = entry  # directories merge: the upper one's metadata, all children
            return
        self._count += 1
        if self._count > MAX_ENTRIES:
            raise UnsafeContentError(f"the image has more than {MAX_ENTRIES} paths")
        node.children[base] = _Node(entry)

    # ----- lookups -----

    def get(self, path: str, *, follow: bool = True) -> FsEntry | None:
        """The entry at ``path`` (following symlinks unless ``follow`` is False)."""
        resolved = self.resolve(path, follow_final=follow)
        if resolved is None:
            return None
        node = self._node(resolved)
        if node is None:
            return None
        if node.entry is None:
            return FsEntry(resolved, EntryKind.DIRECTORY, self.layers[0])
        return node.entry

    def exists(self, path: str, *, follow: bool = True) -> bool:
        return self.get(path, follow=follow) is not None

    def is_file(self, path: str) -> bool:
        entry = self.get(path)
        return entry is not None and entry.kind is EntryKind.FILE

    def listdir(self, path: str) -> list[str]:
        """Names in a directory (following symlinks to it); empty when it does not exist."""
        resolved = self.resolve(path)
        node = self._node(resolved) if resolved is not None else None
        if node is None or not node.is_dir:
            return []
        return sorted(node.children)

    def resolve_symlink(self, path: str) -> str | None:
        """Where a path leads inside the image root, or None when it leads nowhere."""
        return self.resolve(path)

    def resolve(self, path: str, *, follow_final: bool = True) -> str | None:
        """Resolve every symlink along ``path`` as a chrooted process would."""
        pending = [p for p in path.split("/") if p]
        pending.reverse()
        done: list[str] = []
        hops = 0
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                if done:  # ".." at the root stays at the root, as under chroot
                    done.pop()
                continue
            candidate = "/" + "/".join([*done, part])
            node = self._node(candidate)
            if node is None:
                return None
            entry = node.entry
            is_last = not pending
            if (
                entry is not None
                and entry.kind is EntryKind.SYMLINK
                and (follow_final or not is_last)
            ):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = entry.link_target or ""
                if target.startswith("/"):
                    done = []
                pending.extend(reversed([p for p in target.split("/") if p]))
                continue
            done.append(part)
        return "/" + "/".join(done)

    def walk(self) -> Iterator[FsEntry]:
        """Every winning entry with a tar member of its own, parents before children."""
        stack: list[_Node] = [self._root]
        while stack:
            node = stack.pop()
            if node.entry is not None:
                yield node.entry
            children = node.children
            if children:  # most nodes are files: nothing to sort or push
                stack.extend([children[name] for name in sorted(children, reverse=True)])

    # ----- pass 2: contents -----

    def file_groups(
        self, predicate: Callable[[FsEntry], bool] | None = None
    ) -> dict[tuple[int, int], list[FsEntry]]:
        """Winning regular files that ``predicate`` accepts, grouped by where their bytes are
        (hardlinks share them), in stream order (layer, then member). No I/O."""
        wanted: dict[tuple[int, int], list[FsEntry]] = {}
        for entry in self.walk():
            if (
                entry.kind is EntryKind.FILE
                and entry.content is not None
                and (predicate is None or predicate(entry))
            ):
                wanted.setdefault(entry.content, []).append(entry)
        return dict(sorted(wanted.items()))

    def iter_files(
        self,
        predicate: Callable[[FsEntry], bool] | None = None,
        *,
        limit: int = DEFAULT_READ_LIMIT,
        groups: Mapping[tuple[int, int], Sequence[FsEntry]] | None = None,
    ) -> Iterator[FileContent]:
        """Stream the bytes of every winning regular file that ``predicate`` accepts, or of
        ``groups`` (some of what ``file_groups`` returned: no second walk of the view).

        Only layers holding a wanted file are read, each only as far as its last wanted member.
        Each ``FileContent`` is valid until the iterator advances (its bytes come from the open
        layer stream).
        """
        chosen = self.file_groups(predicate) if groups is None else groups
        by_layer: dict[int, dict[int, list[FsEntry]]] = {}
        for (layer_index, ordinal), entries in sorted(chosen.items()):
            kept = self._kept.get((layer_index, ordinal))
            if kept is not None:  # held while indexing: no need to open its layer
                yield from _from_memory(list(entries), kept, limit)
                continue
            by_layer.setdefault(layer_index, {})[ordinal] = list(entries)
        for layer_index, ordinals in by_layer.items():
            members = self._layer_members(layer_index)
            if any(members[o].type == MemberType.SPARSE for o in ordinals):
                yield from self._iter_with_tarfile(layer_index, ordinals, limit)
            else:
                yield from self._iter_by_offset(layer_index, ordinals, limit)

    def _iter_by_offset(
        self, layer_index: int, ordinals: dict[int, list[FsEntry]], limit: int
    ) -> Iterator[FileContent]:
        # The index knows where each member's data starts, so the stream is only inflated and
        # skipped up to it: no tar header is parsed again.
        members = self._layer_members(layer_index)
        with open_decompressed(self.layers[layer_index].path) as stream:
            position = 0
            for ordinal in sorted(ordinals):
                member = members[ordinal]
                _skip(stream, member.offset - position)
                section = _Section(stream, member.size)
                entries = ordinals[ordinal]
                buffer = LazyBuffer(section, member.size, limit)
                try:
                    yield FileContent(entries[0], tuple(entries[1:]), buffer)
                finally:
                    buffer.close()  # its bytes may sit in a temporary file
                position = member.offset + section.consumed

    def _iter_with_tarfile(
        self, layer_index: int, ordinals: dict[int, list[FsEntry]], limit: int
    ) -> Iterator[FileContent]:
        # Sparse members store holes apart from their data: tarfile knows how to expand them.
        remaining = len(ordinals)
        with open_layer_stream(self.layers[layer_index].path) as tar:
            for ordinal, member in _tar_members(tar):
                entries = ordinals.get(ordinal)
                if entries is None:
                    continue
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - isreg() members always have data
                    continue
                buffer = LazyBuffer(source, member.size, limit)
                try:
                    yield FileContent(entries[0], tuple(entries[1:]), buffer)
                finally:
                    buffer.close()
                remaining -= 1
                if remaining == 0:
                    break  # the rest of this layer holds nothing wanted

    def read_files(
        self, paths: Sequence[str], *, limit: int = DEFAULT_READ_LIMIT
    ) -> dict[str, bytes]:
        """The bytes of several files (symlinks followed), in one pass per layer involved.

        Keys are the paths as asked; paths that are not regular files are missing from the result.
        """
        # The asked files grouped by where their bytes are (hardlinks share them): no walk of
        # the whole view to find them.
        groups: dict[tuple[int, int], dict[str, FsEntry]] = {}
        asked: dict[tuple[int, int], list[str]] = {}
        for path in paths:
            entry = self.get(path)
            if entry is not None and entry.kind is EntryKind.FILE and entry.content is not None:
                groups.setdefault(entry.content, {})[entry.path] = entry
                asked.setdefault(entry.content, []).append(path)
        out: dict[str, bytes] = {}
        chosen = {content: list(entries.values()) for content, entries in groups.items()}
        for content in self.iter_files(groups=chosen, limit=limit):
            where = content.entry.content
            if where is None:  # pragma: no cover - iter_files yields files with bytes only
                continue
            data = content.data.read(limit)
            for path in asked[where]:
                out[path] = data
        return out

    def read_file(self, path: str, *, limit: int = DEFAULT_READ_LIMIT) -> bytes | None:
        """The bytes of one small file (e.g. libc.so.6), or None when it is not a file."""
        return self.read_files([path], limit=limit).get(path)


_ENTRY_KINDS = {kind.value: kind for kind in EntryKind}


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..")


def _natural(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("a view row's number")
    return value


def _text(value: object) -> str:
    if type(value) is not str:
        raise TypeError("a view record's text")
    return value


def _row(value: object) -> list[object]:
    if type(value) is not list:  # a string or an object would unpack as characters or keys
        raise TypeError("a view record's row")
    return value


def _index_below(value: object, below: int) -> int:
    index = _natural(value)
    if index >= below:
        raise ValueError("a view row's layer is not below the top layer")
    return index


class _LowerViews:
    """The view of an image's layers but the top one, one record per list of their digests
    (digests the caller checked against the layers' bytes, as for the member indexes): the
    nodes with their entries, the anomalies found and the count of paths, so that a view of
    the same layers plus another top layer applies only that one. A record that is damaged,
    foreign or does not fit the layers is ignored, and the view is built from the indexes."""

    # Bump when what _apply makes of the layers, or the rows' format, changes.
    _VERSION = 1

    def __init__(self, cache_root: Path, digests: Sequence[Digest]) -> None:
        self._records = CacheLayout(cache_root).records("layer-views", version=self._VERSION)
        self._digests = [str(d) for d in digests]
        self._key = hashlib.sha256("\0".join(self._digests).encode()).hexdigest()

    @classmethod
    def for_layers(cls, cache_root: Path, layers: Sequence[Layer]) -> _LowerViews | None:
        """The record of ``layers`` but the top one; None when there is none below it, or a
        digest is unknown."""
        below = [layer.digest for layer in layers[:-1]]
        if not below or any(d is None for d in below):
            return None
        return cls(cache_root, [d for d in below if d is not None])

    def restore(self, fs: LayerFS) -> bool:
        """Rebuild ``fs``'s view of the lower layers from the record; False when there is none
        that fits (``fs`` is left as it was made: empty)."""
        below = len(self._digests)

        def parse(data: dict[str, object]) -> bool:
            if data["digests"] != self._digests:
                raise ValueError("another list of layers")
            count = _natural(data["count"])
            found, rows = data["anomalies"], data["rows"]
            if not isinstance(found, list) or not isinstance(rows, list):
                raise TypeError("anomalies and rows are lists")
            anomalies = [
                Anomaly(fs.layers[_index_below(i, below)], _text(member), _text(reason))
                for i, member, reason in map(_row, found)
            ]
            # Nothing of ``fs`` changes until the whole record is read.
            fs._root, fs._count, fs.anomalies = fs._restored_root(rows, below), count, anomalies
            return True

        return self._records.load(self._key, parse) is not None

    def store(self, fs: LayerFS) -> None:
        """Record ``fs``'s view, its rows written as JSON a chunk at a time: the record is a
        few bytes per path, its rows as lists many times that (a build's peak memory)."""
        head = {
            "digests": self._digests,
            "count": fs._count,
            "anomalies": [[a.layer.index, a.member, a.reason] for a in fs.anomalies],
        }
        out = io.StringIO()
        out.write(json.dumps(head)[:-1] + ', "rows": [')
        chunk: list[list[object]] = []
        written = False
        for row in fs._view_rows():
            chunk.append(row)
            if len(chunk) == _ROWS_PER_CHUNK:
                written = _write_rows(out, chunk, written)
        _write_rows(out, chunk, written)
        out.write("]}")
        self._records.store_json(self._key, out.getvalue().encode())


# Rows turned into JSON at once when a view is recorded (one json.dumps call per chunk).
_ROWS_PER_CHUNK = 2000


def _write_rows(out: io.StringIO, chunk: list[list[object]], written: bool) -> bool:
    """Append ``chunk``'s rows to a JSON array being written to ``out`` (after a comma when
    rows were ``written`` before it), and empty the chunk; whether any row is written now."""
    if not chunk:
        return written
    if written:
        out.write(",")
    out.write(json.dumps(chunk, separators=(",", ":"))[1:-1])
    chunk.clear()
    return True
