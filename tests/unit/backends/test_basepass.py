"""A base image read once (backends.basepass): one decompressing pass per base layer gives the
profile, and leaves what the base's verification and its SBOM's OS packages need in the cache,
so that they read no layer; what they conclude is what reading the layers gives, and a damaged
record is ignored and rebuilt from the layers."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import crossdock.rootfs.fsview
import crossdock.rootfs.layerindex
from crossdock.backends.basepass import base_profile
from crossdock.image.artifact import PlatformImage
from crossdock.platform import AMD64
from crossdock.rootfs.baseprofile import BaseProfile, cached_base_profile
from crossdock.sbom import OsInventory, base_os_packages
from crossdock.verify import Check, PlatformReport, verify_base, verify_platform_image
from tests.support import images
from tests.support.layertar import fixture_bytes
from tests.support.miniimage import base_entries

STATUS = "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n"


def _base(folder: Path) -> PlatformImage:
    """A two-layer amd64 base: the upper layer replaces dpkg's status and adds an arm64 library
    (the base fails verification, so a cache that skipped a check would show)."""
    lower = [
        *base_entries(AMD64),
        ("var/lib/dpkg/status", "data", STATUS.format(name="libc6").encode()),
        ("usr/lib/os-release", "data", b'ID=debian\nVERSION_ID="13"\n'),
        ("etc/os-release", "symlink", "../usr/lib/os-release"),
    ]
    upper = [
        ("var/lib/dpkg/status", "data", (STATUS * 2).format(name="zlib1g").encode()),
        ("usr/lib/x86_64-linux-gnu/libforeign.so", "file", fixture_bytes("aarch64-puts.so")),
    ]
    return images.platform_image(
        AMD64,
        [images.layer(folder, lower), images.layer(folder, upper)],
        config={"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["python3"]},
    )


Read = tuple[BaseProfile, PlatformReport, OsInventory]


def _read_without_the_pass(base: PlatformImage, cache: Path) -> Read:
    profile = cached_base_profile(base, cache)
    report = verify_platform_image(
        base, declared_platform=AMD64, profile=profile, startup=False, cache_dir=None
    )
    return profile, replace(report, seconds=0.0), base_os_packages(base, cache)


def _read_after_the_pass(base: PlatformImage, cache: Path) -> Read:
    profile = cached_base_profile(base, cache)
    report = verify_platform_image(
        base, declared_platform=AMD64, profile=profile, startup=False, cache_dir=cache
    )
    return profile, replace(report, seconds=0.0), base_os_packages(base, cache)


@contextlib.contextmanager
def _counting_decompressions(monkeypatch: pytest.MonkeyPatch):
    opened: list[Path] = []
    real = crossdock.rootfs.layerindex.open_decompressed

    @contextlib.contextmanager
    def counted(path: Path, *, whole: bool = False):
        opened.append(path)
        with real(path, whole=whole) as stream:
            yield stream

    monkeypatch.setattr(crossdock.rootfs.layerindex, "open_decompressed", counted)
    monkeypatch.setattr(crossdock.rootfs.fsview, "open_decompressed", counted)
    yield opened


def test_one_pass_per_layer_serves_the_profile_the_verification_and_the_os_packages(
    tmp_path, monkeypatch
):
    base = _base(tmp_path / "blobs")
    expected = _read_without_the_pass(base, tmp_path / "reference")
    profile, report, inventory = expected
    # What is expected, so that "the same" is not "the same and wrong".
    assert profile.glibc_version == "2.36" and profile.python_version == "3.13"
    assert {(str(f.check), f.file.path) for f in report.failures} == {
        (Check.ELF_PLATFORM, "/usr/lib/x86_64-linux-gnu/libforeign.so")
    }
    assert [p.name for p in inventory.packages] == ["zlib1g"]
    assert inventory.distro == "debian-13"

    cache = tmp_path / "cache"
    with _counting_decompressions(monkeypatch) as opened:
        assert base_profile(base, cache) == profile
    assert opened == [blob.path for blob in base.layers]  # each layer once, for everything

    # Nothing else reads a layer: empty the blobs and ask again.
    for blob in base.layers:
        blob.path.write_bytes(b"")
    assert _read_after_the_pass(base, cache) == expected
    failed = verify_base(
        base, profile=profile, platform=AMD64, allow=(), image_name="base", cache_dir=cache
    )
    assert failed is not None
    assert [str(f.check) for f in failed.failures] == [Check.ELF_PLATFORM]


@pytest.mark.parametrize(
    "kind", ["layer-index", "observations", "base-os-packages", "base-profile"]
)
def test_a_damaged_record_of_the_pass_is_ignored_and_read_again(tmp_path, kind):
    base = _base(tmp_path / "blobs")
    expected = _read_without_the_pass(base, tmp_path / "reference")
    cache = tmp_path / "cache"
    base_profile(base, cache)
    records = sorted((cache / "records" / kind).glob("*.rec"))
    assert records
    for record in records:
        data = bytearray(record.read_bytes())
        data[-2] ^= 0x01  # one flipped bit in the payload: its checksum no longer matches
        record.write_bytes(bytes(data))
    assert _read_after_the_pass(base, cache) == expected


def test_the_pass_in_a_child_leaves_what_the_pass_here_leaves(tmp_path, monkeypatch):
    """A build of several platforms reads each base in a child (backends.inchild): the same
    profile, and the verification and OS packages then read no layer, as after the pass here."""
    from crossdock.backends import basepass

    base = _base(tmp_path / "blobs")
    expected = _read_without_the_pass(base, tmp_path / "reference")

    def not_here(*_: object) -> BaseProfile:
        raise AssertionError("read in this process, not in the child")

    monkeypatch.setattr(basepass, "read_base_once", not_here)
    cache = tmp_path / "cache"
    assert base_profile(base, cache, in_child=True) == expected[0]
    for blob in base.layers:
        blob.path.write_bytes(b"")
    assert _read_after_the_pass(base, cache) == expected


@pytest.mark.parametrize("failure", ["no interpreter", "another answer"])
def test_a_child_that_does_not_answer_leaves_the_pass_to_this_process(
    tmp_path, monkeypatch, failure
):
    from crossdock.backends import inchild

    base = _base(tmp_path / "blobs")
    expected = _read_without_the_pass(base, tmp_path / "reference")
    if failure == "no interpreter":
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    else:
        monkeypatch.setattr(inchild, "_answer", lambda *_: {"python_version": 3})
    cache = tmp_path / "cache"
    assert base_profile(base, cache, in_child=True) == expected[0]
    assert _read_after_the_pass(base, cache) == expected
