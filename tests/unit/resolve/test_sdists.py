from __future__ import annotations

import hashlib

import pytest
from packaging.utils import canonicalize_name

from crossdock.errors import ResolveError, UnsafeContentError
from crossdock.resolve.lockfile import LockedPackage, LockedSdist
from crossdock.resolve.sdists import fetch_sdist


def _package(path, sha256):
    sdist = LockedSdist(url=None, path=path, sha256=sha256, size=None)
    return LockedPackage(
        name=canonicalize_name("tiny"), version="1.0", source_kind="path", sdist=sdist, wheels=()
    )


def test_a_local_sdist_is_copied_when_its_hash_matches(tmp_path):
    (tmp_path / "dist").mkdir()
    archive = tmp_path / "dist" / "tiny-1.0.tar.gz"
    archive.write_bytes(b"not really a tarball")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    work = tmp_path / "work"
    work.mkdir()
    fetched = fetch_sdist(_package("dist/tiny-1.0.tar.gz", digest), tmp_path, work)
    assert fetched == work / "tiny-1.0.tar.gz"
    assert fetched.read_bytes() == archive.read_bytes()


def test_a_hash_mismatch_is_refused(tmp_path):
    (tmp_path / "tiny-1.0.tar.gz").write_bytes(b"changed on the index")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeContentError, match=r"tiny 1\.0: tiny-1\.0\.tar\.gz has sha256"):
        fetch_sdist(_package("tiny-1.0.tar.gz", "0" * 64), tmp_path, work)


def test_an_sdist_without_a_hash_is_refused(tmp_path):
    with pytest.raises(ResolveError, match="no sdist with a sha256"):
        fetch_sdist(_package("tiny-1.0.tar.gz", None), tmp_path, tmp_path)
