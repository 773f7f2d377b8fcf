"""The caches behind verification: layer member indexes and observations of member bytes, both
keyed by layer digest. A cached run must give exactly what an uncached run gives, damaged cache
files must be ignored and rebuilt, and nothing cached may be used for other bytes or hide a
failure."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from crossdock.errors import UnsafeContentError
from crossdock.image.digest import Digest
from crossdock.platform import AMD64, ARM64
from crossdock.rootfs.fsview import DEFAULT_READ_LIMIT, Layer, LayerFS, LazyBuffer
from crossdock.rootfs.layerindex import IndexCache, MemberType, normalize, read_members
from crossdock.verify import Check, verify_image
from crossdock.verify.observe import Observation, ObservationCache, observe

from .layertar import Entry, fixture_bytes, other_python_pyc, write_layer
from .miniimage import config_for, image

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
    cache.store(digests[0], read_members(paths[0]))
    # The same file under another digest's name (a copy, a rename): its header says otherwise.
    cache.path_for(digests[1]).write_bytes(cache.path_for(digests[0]).read_bytes())
    assert cache.load(digests[1]) is None
    assert cache.load(digests[0]) == read_members(paths[0])


def test_members_record_data_offsets_and_normalized_paths(tmp_path):
    layer = write_layer(tmp_path / "l.tar", [("./a//b/../c", "file", b"hello")], gzipped=False)
    (member,) = read_members(layer)
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
    types = {m.path: m.type for m in read_members(layer)}
    if types["/sparse.bin"] != MemberType.SPARSE:
        pytest.skip("this filesystem reports no holes, so tar wrote no sparse member")
    fs = LayerFS([layer])
    data = fs.read_files(["/sparse.bin", "/plain.txt"])
    assert data["/plain.txt"] == b"plain"
    assert data["/sparse.bin"][:4] == b"head"
    assert data["/sparse.bin"][-4:] == b"tail"
    assert len(data["/sparse.bin"]) == (4 << 20) + 4


# ----- observations and verification -----


def _problem_image(tmp_path: Path) -> tuple[list[Path], list[Digest | None]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    host_pyc = other_python_pyc(tmp_path)
    layers = image(
        tmp_path,
        ARM64,
        [
            (
                f"{SITE}/ok/_ok.cpython-313-aarch64-linux-gnu.so",
                "file",
                fixture_bytes("aarch64-puts.so"),
            ),
            (
                f"{SITE}/bad/_bad.cpython-313-aarch64-linux-gnu.so",
                "file",
                fixture_bytes("x86_64-puts.so"),
            ),
            (f"{SITE}/pc-2.0.dist-info/WHEEL", "file", b"Tag: cp312-cp312-manylinux_2_17_x86_64\n"),
            (f"{SITE}/mac/_m.cpython-313-darwin.so", "file", fixture_bytes("macos-arm64-head.bin")),
            ("app/__pycache__/m.cpython-311.pyc", "file", host_pyc),
            ("app/broken.so", "file", b"\x7fELF\x02\x01\x01" + b"\0" * 9),
        ],
        [("app/main.py", "file", b"print('hi')\n")],
    )
    return layers, [_digest(p) for p in layers]


def _comparable(report):
    return replace(report, seconds=0.0)


def test_a_warm_cache_gives_the_same_report_without_reading_any_layer(tmp_path):
    layers, digests = _problem_image(tmp_path / "img")
    cache = tmp_path / "cache"
    config = config_for(ARM64)
    uncached = verify_image(config, layers, layer_digests=digests, first_layer=1)
    cold = verify_image(config, layers, layer_digests=digests, first_layer=1, cache_dir=cache)
    warm = verify_image(config, layers, layer_digests=digests, first_layer=1, cache_dir=cache)
    assert _comparable(uncached) == _comparable(cold) == _comparable(warm)
    assert {str(f.check) for f in uncached.failures} >= {
        Check.ELF_PLATFORM,
        Check.ELF_READABLE,
        Check.FOREIGN_BINARY,
        Check.PYC_MAGIC,
        Check.WHEEL_PYTHON,
    }
    # Warm, every byte the checks need comes from the caches: empty the blobs and verify again.
    for path in layers:
        path.write_bytes(b"")
    blind = verify_image(config, layers, layer_digests=digests, first_layer=1, cache_dir=cache)
    assert _comparable(blind) == _comparable(uncached)


def test_a_warm_cache_is_judged_anew_for_another_platform_and_other_allow_rules(tmp_path):
    # The same layers, cached while verified as arm64, now labelled amd64: every arm64 ELF in
    # scope must fail, because only observations are cached, never verdicts.
    tree: list[Entry] = [
        (
            f"{SITE}/ok/_ok.cpython-313-aarch64-linux-gnu.so",
            "file",
            fixture_bytes("aarch64-puts.so"),
        )
    ]
    (tmp_path / "img").mkdir()
    layers = image(tmp_path / "img", ARM64, tree)
    digests: list[Digest | None] = [_digest(p) for p in layers]
    cache = tmp_path / "cache"
    passed = verify_image(
        config_for(ARM64), layers, layer_digests=digests, first_layer=1, cache_dir=cache
    )
    assert passed.passed, passed.failures
    relabelled = verify_image(
        config_for(AMD64), layers, layer_digests=digests, first_layer=1, cache_dir=cache
    )
    assert {(str(f.check), f.file.path) for f in relabelled.failures} >= {
        (Check.ELF_PLATFORM, f"/{tree[0][0]}")
    }
    allowed = verify_image(
        config_for(AMD64),
        layers,
        layer_digests=digests,
        first_layer=1,
        cache_dir=cache,
        allow=[f"elf-platform:/{SITE}/*"],
    )
    assert not any(str(f.check) == Check.ELF_PLATFORM for f in allowed.failures)
    assert allowed.allowed


def test_observations_are_not_reused_for_other_bytes_limits_or_formats(tmp_path):
    layers, digests = _problem_image(tmp_path / "img")
    verify_image(
        config_for(ARM64), layers, layer_digests=digests, first_layer=1, cache_dir=tmp_path
    )
    folder = tmp_path
    deps = Layer(1, layers[1], digests[1])
    cache = ObservationCache(folder, limit=DEFAULT_READ_LIMIT)
    known = [o for o in range(20) if cache.get(deps, o) is not None]
    assert known  # the dependency layer's members were observed and kept
    # Another digest (other bytes), another parse limit: nothing is found.
    other = Layer(1, layers[1], Digest("sha256:" + "0" * 64))
    assert all(cache.get(other, o) is None for o in known)
    assert all(
        ObservationCache(folder, limit=DEFAULT_READ_LIMIT - 1).get(deps, o) is None for o in known
    )
    # A file from an older format (or damaged) is ignored.
    path = cache.path_for(digests[1])  # type: ignore[arg-type]
    older = path.read_bytes().replace(b"observations/2 ", b"observations/1 ")
    assert older != path.read_bytes()
    path.write_bytes(older)
    assert all(
        ObservationCache(folder, limit=DEFAULT_READ_LIMIT).get(deps, o) is None for o in known
    )


def test_a_damaged_observation_file_is_ignored_and_rebuilt(tmp_path):
    layers, digests = _problem_image(tmp_path / "img")
    config = config_for(ARM64)
    expected = _comparable(
        verify_image(config, layers, layer_digests=digests, first_layer=1, cache_dir=tmp_path)
    )
    deps_digest = digests[1]
    assert deps_digest is not None
    folder = ObservationCache(tmp_path, limit=DEFAULT_READ_LIMIT).path_for(deps_digest).parent
    assert list(folder.iterdir())
    for path in folder.iterdir():
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    again = verify_image(config, layers, layer_digests=digests, first_layer=1, cache_dir=tmp_path)
    assert _comparable(again) == expected
    for path in folder.iterdir():
        header, _, payload = path.read_bytes().partition(b"\n")
        assert header.endswith(hashlib.sha256(payload).hexdigest().encode())


def test_an_observation_made_for_another_name_is_not_used(tmp_path):
    # A .pyc check needs the file's header: an observation of the same bytes made under a name
    # that did not ask for it does not fit, so the file is read again.
    data = other_python_pyc(tmp_path)
    as_data = observe(LazyBuffer(io.BytesIO(data), len(data)), "/app/blob.bin")
    as_pyc = observe(LazyBuffer(io.BytesIO(data), len(data)), "/app/m.pyc")
    assert not as_data.fits("/app/m.pyc")
    assert as_pyc.fits("/app/m.pyc")
    assert as_pyc.head == data[:64]
    assert Observation.from_json(as_pyc.to_json()) == as_pyc
    assert Observation.from_json(as_data.to_json()) == as_data
    elf = fixture_bytes("aarch64-puts.so")
    as_elf = observe(LazyBuffer(io.BytesIO(elf), len(elf)), "/x.so")
    assert as_elf.facts is not None
    assert Observation.from_json(as_elf.to_json()) == as_elf
