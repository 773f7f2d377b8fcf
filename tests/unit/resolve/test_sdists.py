from __future__ import annotations

import hashlib
import socket
import threading

import pytest
import stamina
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


def test_an_index_that_keeps_dropping_the_download_is_one_error_counting_the_attempts(
    registry,  # the fixture lets a unit test connect to loopback; its registry is not used
    tmp_path,
):
    """Every connection to the index is closed without an answer: after its retries the
    download is a ResolveError (no traceback of the HTTP library) whose hint counts the
    connections the index saw."""
    connections: list[object] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.2)
        done = threading.Event()

        def drop_every_connection() -> None:
            while not done.is_set():
                try:
                    connection, _ = server.accept()
                except TimeoutError:
                    continue
                connections.append(connection)
                connection.close()

        listener = threading.Thread(target=drop_every_connection, daemon=True)
        listener.start()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/tiny-1.0.tar.gz"
        sdist = LockedSdist(url=url, path=None, sha256="0" * 64, size=None)
        package = LockedPackage(
            name=canonicalize_name("tiny"), version="1.0", source_kind="registry", sdist=sdist,
            wheels=(),
        )  # fmt: skip
        try:
            with (
                stamina.set_testing(True, attempts=2),
                pytest.raises(ResolveError, match=f"downloading {url} failed") as error,
            ):
                fetch_sdist(package, tmp_path, tmp_path)
        finally:
            done.set()
            listener.join(10)
    assert len(connections) == 2
    assert "gave up after 2 attempts" in str(error.value)
