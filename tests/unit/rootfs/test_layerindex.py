"""The layer member index behind verification, keyed by layer digest: a cached index must give
exactly the view an uncached read gives, damaged index files are ignored and rebuilt, and an index
is never used for other bytes. (Observations of member bytes: tests/unit/verify/test_observe.py.)"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from crossdock.errors import UnsafeContentError
from crossdock.image.digest import Digest
from crossdock.rootfs.fsview import LayerFS
from crossdock.rootfs.layerindex import (
    IndexCache,
    MemberType,
    normalize,
    open_decompressed,
    read_index,
)
from tests.support.layertar import write_layer

SITE = "usr/local/lib/python3.13/dist-packages"


def _digest(path: Path) -> Digest:
    return Digest("sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())


def _tricky_layers(tmp_path: Path) -> list[Path]:
    """Whiteouts, opaque directories, symlinks, hardlinks (within and across layers), a
    directory replacing a file, and a member that climbs out of the root."""
    lower = [
        ("usr", "dir", None),
        ("usr/bin", "dir", None),
        ("usr/bin/tool", "file", b"#!/bin/sh\necho tool\n"),
        ("usr/bin/alias", "hardlink", "usr/bin/tool"),
        ("usr/lib", "dir", None),
        ("lib", "symlink", "usr/lib"),
        ("usr/lib/libx.so", "file", b"\x7fELF not really"),
        ("opt/old/a.txt", "file", b"old a"),
        ("opt/old/sub/b.txt", "file", b"old b"),
        ("etc/gone", "file", b"deleted later"),
        ("etc/keep", "file", b"kept"),
        ("srv", "file", b"a file where a directory comes later"),
        ("../escape", "file", b"outside"),
    ]
    upper = [
        ("etc/gone", "whiteout", None),
        ("opt/old", "opaque", None),
        ("opt/old/new.txt", "file", b"new"),
        ("usr/bin/tool", "file", b"#!/bin/sh\necho new tool\n"),
        ("usr/bin/lower-link", "hardlink", "etc/keep"),  # to a file of the layer below
        ("srv/www/index.html", "file", b"<html>"),
        ("./usr/lib//x/../liby.so", "file", b"y"),
    ]
    return [
        write_layer(tmp_path / "lower.tar.gz", lower),
        write_layer(tmp_path / "upper.tar", upper, gzipped=False),
    ]


def _view(fs: LayerFS) -> object:
    entries = [
        (e.path, e.kind, e.layer.index, e.size, e.mode, e.link_target, e.content) for e in fs.walk()
    ]
    anomalies = [(a.layer.index, a.member, a.reason) for a in fs.anomalies]
    contents = {
        c.entry.path: (tuple(a.path for a in c.also), c.data.read()) for c in fs.iter_files()
    }
    return entries, anomalies, contents


def test_a_cached_index_gives_the_same_view_without_reading_the_layers(tmp_path):
    paths = _tricky_layers(tmp_path)
    digests = [_digest(p) for p in paths]
    cache = tmp_path / "index"
    uncached = LayerFS(paths, digests)
    cold = LayerFS(paths, digests, index_cache=cache)
    index_files = {IndexCache(cache).path_for(d) for d in digests}
    assert set(next(iter(index_files)).parent.iterdir()) == index_files
    warm = LayerFS(paths, digests, index_cache=cache)
    assert _view(uncached) == _view(cold) == _view(warm)

    # What the view is, so that "the same" is not "the same and wrong".
    assert uncached.listdir("/opt/old") == ["new.txt"]
    assert not uncached.exists("/etc/gone")
    assert uncached.read_file("/usr/bin/alias") == b"#!/bin/sh\necho tool\n"
    assert uncached.read_file("/usr/bin/lower-link") == b"kept"
    assert uncached.read_file("/lib/liby.so") == b"y"
    assert uncached.read_file("/srv/www/index.html") == b"<html>"
    assert [a.member for a in uncached.anomalies] == ["../escape"]

    # A warm view needs no layer bytes to be built: empty the blobs and build it again.
    for path in paths:
        path.write_bytes(b"")
    again = LayerFS(paths, digests, index_cache=cache)
    assert [(e.path, e.content) for e in again.walk()] == [
        (e.path, e.content) for e in uncached.walk()
    ]


def test_layers_without_a_digest_are_never_cached(tmp_path):
    paths = _tricky_layers(tmp_path)
    cache = tmp_path / "index"
    LayerFS(paths, [None, _digest(paths[1])], index_cache=cache)
    only = IndexCache(cache).path_for(_digest(paths[1]))
    assert list(only.parent.iterdir()) == [only]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data.replace(b'"/usr/bin/tool"', b'"/usr/bin/tooL"', 1),  # a flipped byte
        lambda _data: b"",
        lambda _data: b"not an index at all\n[]",
    ],
    ids=["truncated", "flipped", "empty", "garbage"],
)
def test_a_damaged_index_is_ignored_and_rebuilt(tmp_path, damage):
    paths = _tricky_layers(tmp_path)
    digests = [_digest(p) for p in paths]
    cache = tmp_path / "index"
    expected = _view(LayerFS(paths, digests, index_cache=cache))
    index_file = IndexCache(cache).path_for(digests[0])
    good = index_file.read_bytes()
    damaged = damage(good)
    assert damaged != good
    index_file.write_bytes(damaged)
    assert IndexCache(cache).load(digests[0]) is None
    assert _view(LayerFS(paths, digests, index_cache=cache)) == expected
    assert index_file.read_bytes() == good  # rebuilt from the layer


def test_an_index_is_only_used_for_its_own_digest(tmp_path):
    paths = _tricky_layers(tmp_path)
    digests = [_digest(p) for p in paths]
    cache = IndexCache(tmp_path / "index")
    cache.store(digests[0], *read_index(paths[0]))
    # The same file under another digest's name (a copy, a rename): its header says otherwise.
    cache.path_for(digests[1]).write_bytes(cache.path_for(digests[0]).read_bytes())
    assert cache.load(digests[1]) is None
    assert cache.load(digests[0]) == read_index(paths[0]).members


def test_members_record_data_offsets_and_normalized_paths(tmp_path):
    layer = write_layer(tmp_path / "l.tar", [("./a//b/../c", "file", b"hello")], gzipped=False)
    (member,) = read_index(layer).members
    assert member.path == "/a/c"
    assert member.name == "./a//b/../c"
    assert layer.read_bytes()[member.offset : member.offset + member.size] == b"hello"
    assert normalize("usr/lib/") == "/usr/lib"
    assert normalize("a/.hidden/../b") == "/a/b"
    assert normalize("../x") is None


def test_multi_member_gzip_layers_read_like_the_standard_library(tmp_path):
    # Some tools write a layer as several concatenated gzip members (parallel compressors).
    plain = write_layer(
        tmp_path / "l.tar",
        [("a.txt", "file", b"A" * 70_000), ("b.txt", "file", b"B" * 5)],
        gzipped=False,
    ).read_bytes()
    cut = len(plain) // 3
    layer = tmp_path / "multi.tar.gz"
    layer.write_bytes(gzip.compress(plain[:cut], mtime=0) + gzip.compress(plain[cut:], mtime=0))
    assert gzip.decompress(layer.read_bytes()) == plain
    fs = LayerFS([layer])
    assert fs.read_files(["/a.txt", "/b.txt"]) == {"/a.txt": b"A" * 70_000, "/b.txt": b"BBBBB"}


def test_a_truncated_gzip_layer_is_refused_by_name(tmp_path):
    layer = write_layer(tmp_path / "l.tar.gz", [("a.txt", "file", b"x" * 100_000)])
    layer.write_bytes(layer.read_bytes()[:200])
    with pytest.raises(UnsafeContentError, match=r"l\.tar\.gz"):
        LayerFS([layer])


@pytest.mark.parametrize("whole", [False, True])
def test_a_layer_inflated_ahead_on_another_thread_reads_the_same(tmp_path, whole):
    """A pass over a whole layer inflates it on another thread: the same bytes (a multi-member
    gzip stream too), and a stream damaged after its first blocks is refused by name."""
    data = bytes(range(256)) * 8192 + b"tail"  # several of the blocks inflated ahead
    layer = tmp_path / "l.tar.gz"
    layer.write_bytes(gzip.compress(data[:1000], mtime=0) + gzip.compress(data[1000:], mtime=0))
    with open_decompressed(layer, whole=whole) as stream:
        assert stream.read() == data
    damaged = bytearray(gzip.compress(data, mtime=0))
    damaged[len(damaged) // 2 :] = b"\xff" * (len(damaged) - len(damaged) // 2)
    layer.write_bytes(bytes(damaged))
    with (
        pytest.raises(UnsafeContentError, match=r"l\.tar\.gz"),
        open_decompressed(layer, whole=whole) as stream,
    ):
        while stream.read(1 << 16):
            pass


def test_sparse_members_are_read_through_tarfile(tmp_path):
    # A sparse member's data is not `size` bytes at its offset (holes are left out), so its bytes
    # come through tarfile, which expands it. GNU tar writes real ones.
    tar_exe = shutil.which("tar")
    if tar_exe is None:
        pytest.skip("GNU tar is not installed")
    root = tmp_path / "root"
    root.mkdir()
    with (root / "sparse.bin").open("wb") as handle:
        handle.write(b"head")
        handle.seek(4 << 20)
        handle.write(b"tail")
    (root / "plain.txt").write_bytes(b"plain")
    layer = tmp_path / "sparse.tar"
    subprocess.run(
        [tar_exe, "--sparse", "--format=gnu", "-cf", str(layer), "-C", str(root), "."],
        check=True,
    )
    types = {m.path: m.type for m in read_index(layer).members}
    if types["/sparse.bin"] != MemberType.SPARSE:
        pytest.skip("this filesystem reports no holes, so tar wrote no sparse member")
    fs = LayerFS([layer])
    data = fs.read_files(["/sparse.bin", "/plain.txt"])
    assert data["/plain.txt"] == b"plain"
    assert data["/sparse.bin"][:4] == b"head"
    assert data["/sparse.bin"][-4:] == b"tail"
    assert len(data["/sparse.bin"]) == (4 << 20) + 4


def test_on_file_sees_each_file_of_a_layer_read_to_index_it_once(tmp_path):
    paths = _tricky_layers(tmp_path)
    digests = [_digest(p) for p in paths]
    cache = tmp_path / "index"
    seen: list[tuple[int, str | None, bytes]] = []

    def visit(layer, member, data):
        seen.append((layer.index, member.path, data.read()))

    visited = LayerFS(paths, digests, index_cache=cache, on_file=visit)
    # Every regular file member, in tar order, with its own bytes (hidden ones too: the visitor
    # sees layers, not the view); links, directories and whiteouts have no bytes of their own.
    files = [
        (layer, m.path)
        for layer in (0, 1)
        for m in read_index(paths[layer]).members
        if m.type == MemberType.FILE
    ]
    assert [(layer, path) for layer, path, _ in seen] == files
    by_name = {(layer, path): data for layer, path, data in seen}
    assert by_name[0, "/usr/bin/tool"] == b"#!/bin/sh\necho tool\n"
    assert by_name[1, "/usr/bin/tool"] == b"#!/bin/sh\necho new tool\n"
    assert (0, None, b"outside") in seen  # a name that climbs out still has bytes
    assert _view(visited) == _view(LayerFS(paths, digests))
    # A cached index is not read, so nothing is seen.
    seen.clear()
    LayerFS(paths, digests, index_cache=cache, on_file=visit)
    assert seen == []


def test_kept_files_are_read_from_memory_and_the_view_is_the_same(tmp_path, monkeypatch):
    paths = _tricky_layers(tmp_path)
    digests = [_digest(p) for p in paths]
    expected = _view(LayerFS(paths, digests))
    wanted = {"/etc/keep", "/usr/bin/tool", "/opt/old/new.txt"}
    # Files larger than the bound are not held (read again when asked for).
    monkeypatch.setattr("crossdock.rootfs.fsview.MAX_KEPT", len(b"#!/bin/sh\necho tool\n"))
    fs = LayerFS(paths, digests, keep=wanted.__contains__)
    assert _view(fs) == expected
    # With the blobs emptied, only the kept files can still be read.
    for path in paths:
        path.write_bytes(b"")
    assert fs.read_files(["/etc/keep", "/usr/bin/lower-link", "/opt/old/new.txt"]) == {
        "/etc/keep": b"kept",
        "/usr/bin/lower-link": b"kept",  # a hardlink to a kept file
        "/opt/old/new.txt": b"new",
    }
    with pytest.raises(UnsafeContentError):
        fs.read_file("/usr/bin/tool")  # kept below the bound in layer 0 only; layer 1's is longer
    with pytest.raises(UnsafeContentError):
        fs.read_file("/srv/www/index.html")  # never asked to be kept
