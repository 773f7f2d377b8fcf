"""Where registries differ (OCI distribution spec), against the in-process registry
(tests/support/registry.py): real HTTP on loopback, each behaviour switched on by a test.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import stamina

from crossdock.errors import RegistryError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import sha256_of
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Reference
from crossdock.registry.upload import UploadMode, start_upload
from tests.support.registry import Canned, InProcessRegistry, Quirks, Seen

pytestmark = pytest.mark.integration

CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
BLOB = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def blob(tmp_path: Path) -> tuple[Path, Descriptor]:
    path = tmp_path / "blob"
    path.write_bytes(BLOB)
    return path, Descriptor("application/octet-stream", sha256_of(BLOB), len(BLOB))


def client_for(registry: InProcessRegistry, **options: object) -> RegistryClient:
    return RegistryClient(registry.host, environ={}, **options)  # type: ignore[arg-type]


def content_ranges(registry: InProcessRegistry) -> list[str]:
    return [r.headers["Content-Range"] for r in registry.requests if r.method == "PATCH"]


def test_a_mount_is_used_when_the_registry_mounts(blob):
    path, descriptor = blob
    with InProcessRegistry() as registry, client_for(registry) as client:
        source = Reference.parse(f"{registry.host}/base/app")
        assert client.upload_blob(source, descriptor, path) == "uploaded"
        target = Reference.parse(f"{registry.host}/other/app")
        assert client.upload_blob(target, descriptor, path, mount_from="base/app") == "mounted"
    assert ("other/app", str(descriptor.digest)) in registry.links


def test_a_mount_answered_202_falls_back_to_an_upload_in_that_session(blob):
    path, descriptor = blob
    with InProcessRegistry(Quirks(refuse_mounts=True)) as registry, client_for(registry) as client:
        client.upload_blob(Reference.parse(f"{registry.host}/base/app"), descriptor, path)
        target = Reference.parse(f"{registry.host}/other/app")
        outcome = client.upload_blob(target, descriptor, path, mount_from="base/app")
        assert outcome == "uploaded"
        assert client.blob_exists(target, descriptor.digest)
    posts = [m for m in registry.methods("/other/app/blobs/uploads/") if m.startswith("POST")]
    # One session: the mount's 202 answer, not a second POST.
    assert len(posts) == 1
    assert "mount=" in posts[0]


def test_chunks_honour_oci_chunk_min_length(blob):
    path, descriptor = blob
    quirks = Quirks(chunk_min_length=4096)
    with (
        InProcessRegistry(quirks) as registry,
        client_for(registry, upload_mode=UploadMode.CHUNKED, chunk_size=1000) as client,
    ):
        repository = Reference.parse(f"{registry.host}/chunky/app")
        assert client.upload_blob(repository, descriptor, path) == "uploaded"
    # 4096-byte chunks, not the 1000 asked for; only the last is shorter.
    assert content_ranges(registry) == ["0-4095", "4096-8191", "8192-10239"]
    assert registry.blobs[str(descriptor.digest)] == BLOB


def test_a_short_chunk_is_refused_by_a_registry_with_a_minimum(blob):
    """The switch above is real: a client ignoring the minimum is refused."""
    path, descriptor = blob
    with InProcessRegistry(Quirks(chunk_min_length=4096)) as registry:
        with client_for(registry) as client:
            session = start_upload(client.transport, "chunky/app")
            assert session.chunk_min_length == 4096
            ignoring = dataclasses.replace(session, chunk_min_length=0)
            with pytest.raises(RegistryError, match="refused the chunk at byte 1000"):
                ignoring.put_chunked(descriptor.digest, path, descriptor.size, 1000)
        assert str(descriptor.digest) not in registry.blobs
    assert 416 in registry.answers


def test_a_broken_chunk_is_resumed_where_the_registry_says_the_upload_stands(blob):
    path, descriptor = blob
    with (
        InProcessRegistry(Quirks(break_patch=2)) as registry,
        client_for(registry, upload_mode=UploadMode.CHUNKED, chunk_size=3000) as client,
    ):
        repository = Reference.parse(f"{registry.host}/resume/app")
        assert client.upload_blob(repository, descriptor, path) == "uploaded"
    # The second chunk broke after 1500 of its 3000 bytes; the upload went on from byte 4500.
    assert content_ranges(registry) == ["0-2999", "3000-5999", "4500-7499", "7500-10239"]
    status_checks = [r for r in registry.requests if r.method == "GET" and "/uploads/" in r.path]
    assert len(status_checks) == 1
    assert registry.blobs[str(descriptor.digest)] == BLOB
    # One session throughout: no second POST.
    assert len([r for r in registry.requests if r.method == "POST"]) == 1


def test_without_upload_status_the_whole_upload_is_retried(blob):
    path, descriptor = blob
    quirks = Quirks(break_patch=2, no_upload_status=True)
    with (
        InProcessRegistry(quirks) as registry,
        client_for(registry, upload_mode=UploadMode.CHUNKED, chunk_size=3000) as client,
        # cap: requests sent once on purpose (retry=False) stay once; no waiting between tries.
        stamina.set_testing(True, attempts=3, cap=True),
    ):
        repository = Reference.parse(f"{registry.host}/restart/app")
        assert client.upload_blob(repository, descriptor, path) == "uploaded"
    assert len([r for r in registry.requests if r.method == "POST"]) == 2
    assert registry.blobs[str(descriptor.digest)] == BLOB


def store(registry: InProcessRegistry, repository: str, data: bytes) -> Descriptor:
    descriptor = Descriptor("application/octet-stream", sha256_of(data), len(data))
    registry.blobs[str(descriptor.digest)] = data
    registry.links.add((repository, str(descriptor.digest)))
    return descriptor


def test_a_download_cut_off_resumes_from_the_bytes_received(tmp_path):
    data = bytes(range(256)) * 4096  # 1 MiB
    with InProcessRegistry(Quirks(cut_blob_gets=1)) as registry, client_for(registry) as client:
        descriptor = store(registry, "pull/app", data)
        dest = tmp_path / "blob"
        client.fetch_blob(Reference.parse(f"{registry.host}/pull/app"), descriptor, dest)
    assert dest.read_bytes() == data
    gets = [r for r in registry.requests if r.method == "GET" and "/blobs/" in r.path]
    assert [r.headers.get("Range") for r in gets] == [None, f"bytes={len(data) // 2}-"]
    assert registry.answers[-1] == 206
    assert [p.name for p in tmp_path.iterdir()] == ["blob"]  # no partial file left


def test_a_download_restarts_when_the_registry_ignores_the_range(tmp_path):
    data = bytes(range(256)) * 4096
    quirks = Quirks(cut_blob_gets=1, ignore_range=True)
    with InProcessRegistry(quirks) as registry, client_for(registry) as client:
        descriptor = store(registry, "pull/app", data)
        dest = tmp_path / "blob"
        client.fetch_blob(Reference.parse(f"{registry.host}/pull/app"), descriptor, dest)
    assert dest.read_bytes() == data
    assert registry.answers[-1] == 200


def test_verify_against_a_host_that_redirects_to_a_web_page_says_it_is_not_a_registry(tmp_path):
    """What docker.io does to /v2/...: a redirect to the web site, a page with status 200."""
    page = b"<!doctype html><html><body>Docker Hub</body></html>"

    def web_page(seen: Seen) -> Canned:
        return Canned(200, page, {"Content-Type": "text/html; charset=utf-8"})

    with InProcessRegistry(intercept=web_page) as web:

        def redirect(seen: Seen) -> Canned:
            return Canned(301, headers={"Location": f"{web.url}/"})

        with InProcessRegistry(intercept=redirect) as hub:
            env = {**os.environ, "CROSSDOCK_CACHE_DIR": str(tmp_path / "cache")}
            env.pop("CROSSDOCK_REGISTRY_MIRRORS", None)
            run = subprocess.run(
                [CROSSDOCK, "verify", f"{hub.host}/library/python:3.13-slim"],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=False,
            )
    assert run.returncode == 7, run.stdout + run.stderr
    first, *rest = run.stderr.strip().splitlines()
    assert first == (
        f"error: {hub.host} does not answer as an OCI registry: GET {hub.url}/v2/ -> {web.url}/ "
        "gave 200 text/html (redirected off the registry)"
    )
    assert all(line.startswith("  hint: ") for line in rest)
    assert "Traceback" not in run.stderr
    # Nothing but the base endpoint was asked: the page was never taken for a manifest.
    assert [f"{r.method} {r.path}" for r in hub.requests] == ["GET /v2/"]
