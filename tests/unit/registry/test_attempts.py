"""When retrying gives up, the error says how many attempts were really made: the registry
(in-process, real HTTP on loopback) fails on purpose, counts the requests it saw, and the hint
must name that count, whichever loop did the retrying (the transport's around one request, an
upload session retried as a whole, a download resumed after a cut, or both at once).

stamina's testing mode removes the waits; with ``cap`` it also lowers the number of attempts
below the one configured, which is exactly when a hint quoting the configuration would lie.
"""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Callable, Iterator

import pytest
import stamina

from crossdock.errors import RegistryError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import sha256_of
from crossdock.image.mediatypes import MediaType
from crossdock.registry.client import _DOWNLOAD_ATTEMPTS, RegistryClient
from crossdock.registry.reference import Reference
from crossdock.registry.transport import TransientRegistryError
from crossdock.registry.upload import UploadMode
from tests.support.registry import Canned, InProcessRegistry, Seen

CONFIGURED = 5  # the client's attempts per retry loop
BLOB = bytes(range(256)) * 64


@pytest.fixture(params=[3, 4], ids=["capped-at-3", "capped-at-4"])
def allowed(request: pytest.FixtureRequest) -> Iterator[int]:
    """The attempts each retry loop may make in this test: fewer than configured."""
    with stamina.set_testing(True, attempts=request.param, cap=True):
        yield request.param


def failing(kind: str, method: str, status: int = 500) -> Callable[[Seen], Canned | None]:
    """An intercept answering ``status`` to every ``method`` whose path holds ``kind``."""

    def intercept(seen: Seen) -> Canned | None:
        if seen.method == method and kind in seen.path:
            return Canned(status, b'{"errors":[{"code":"UNAVAILABLE","message":"down"}]}')
        return None

    return intercept


def seen(registry: InProcessRegistry, method: str, kind: str) -> int:
    return sum(1 for r in registry.requests if r.method == method and kind in r.path)


def attempts_in(error: BaseException) -> int:
    """The count the hint states, read back from the words a user sees."""
    found = re.findall(r"gave up after (\d+) attempts?\b", str(error))
    assert len(found) == 1, str(error)
    return int(found[0])


def client_of(registry: InProcessRegistry, **options: object) -> RegistryClient:
    return RegistryClient(registry.host, environ={}, attempts=CONFIGURED, **options)  # type: ignore[arg-type]


def test_a_request_retried_by_the_transport_counts_its_own_attempts(registry, allowed):
    registry.intercept = failing("/manifests/", "GET", status=503)
    with client_of(registry) as client, pytest.raises(TransientRegistryError) as error:
        client.get_manifest(Reference.parse(f"{registry.host}/team/api:1"))
    assert seen(registry, "GET", "/manifests/") == allowed
    assert attempts_in(error.value) == allowed
    assert error.value.attempts == allowed
    assert error.value.exit_code == RegistryError.exit_code
    assert "answered 503" in error.value.message


def test_an_upload_retried_as_a_whole_counts_the_sessions_it_opened(registry, allowed, tmp_path):
    """The session's requests are sent once each (retry=False); the client retries the upload:
    the hint counts the uploads tried, one POST each, not the transport's single attempt."""
    registry.intercept = failing("/blobs/uploads/", "POST")
    path = tmp_path / "blob"
    path.write_bytes(BLOB)
    descriptor = Descriptor(MediaType.OCI_LAYER_GZIP, sha256_of(BLOB), len(BLOB))
    repository = Reference.parse(f"{registry.host}/team/api")
    with client_of(registry) as client, pytest.raises(TransientRegistryError) as error:
        client.upload_blob(repository, descriptor, path)
    assert seen(registry, "POST", "/blobs/uploads/") == allowed
    assert attempts_in(error.value) == allowed
    assert registry.blobs == {}


def test_an_upload_cut_every_time_counts_every_cut(registry, allowed, tmp_path):
    registry.quirks.cut_uploads = 1000
    path = tmp_path / "blob"
    path.write_bytes(BLOB)
    descriptor = Descriptor(MediaType.OCI_LAYER_GZIP, sha256_of(BLOB), len(BLOB))
    with (
        client_of(registry) as client,
        pytest.raises(TransientRegistryError, match=r"cannot reach registry .* \(PUT ") as error,
    ):
        client.upload_blob(Reference.parse(f"{registry.host}/team/api"), descriptor, path)
    assert len(registry.cut_upload_bytes) == allowed
    assert seen(registry, "PUT", "/blobs/uploads/") == allowed
    assert attempts_in(error.value) == allowed


def test_a_chunked_upload_counts_its_resumed_chunks_and_its_sessions(registry, allowed, tmp_path):
    """Each session resumes its failed chunk three times (it asks the registry where the
    upload stands) before the client opens a new session: every failed PATCH is counted."""
    registry.intercept = failing("/blobs/uploads/", "PATCH")
    path = tmp_path / "blob"
    path.write_bytes(BLOB)
    descriptor = Descriptor(MediaType.OCI_LAYER_GZIP, sha256_of(BLOB), len(BLOB))
    with (
        client_of(registry, upload_mode=UploadMode.CHUNKED, chunk_size=4096) as client,
        pytest.raises(TransientRegistryError) as error,
    ):
        client.upload_blob(Reference.parse(f"{registry.host}/team/api"), descriptor, path)
    patches = seen(registry, "PATCH", "/blobs/uploads/")
    assert patches == allowed * 4  # the first try and three resumes, per session
    assert seen(registry, "POST", "/blobs/uploads/") == allowed
    assert attempts_in(error.value) == patches


def test_a_download_cut_every_time_is_one_error_counting_the_cuts(registry, allowed, tmp_path):
    """A blob GET that keeps being cut mid-body is resumed, then given up on as a registry error
    (no traceback of the HTTP library), counting the GETs made."""
    registry.quirks.cut_blob_gets = 1000
    descriptor = Descriptor(MediaType.OCI_LAYER_GZIP, sha256_of(BLOB), len(BLOB))
    registry.blobs[str(descriptor.digest)] = BLOB
    registry.links.add(("team/api", str(descriptor.digest)))
    with client_of(registry) as client, pytest.raises(TransientRegistryError) as error:
        client.fetch_blob(Reference.parse(f"{registry.host}/team/api"), descriptor, tmp_path / "b")
    gets = seen(registry, "GET", "/blobs/sha256:")
    assert gets == min(allowed, _DOWNLOAD_ATTEMPTS)  # the download loop's own bound
    assert attempts_in(error.value) == gets
    assert f"(GET /v2/team/api/blobs/{descriptor.digest})" in error.value.message
    assert not (tmp_path / "b").exists()


def test_a_cut_download_then_a_failing_registry_adds_both_loops_attempts(
    registry, allowed, tmp_path
):
    """The first GET is cut mid-body (the download loop tries again), then the registry answers
    503 to every GET (the transport retries that request until it gives up): the hint counts
    the cut GET and the transport's GETs together, as the registry saw them."""
    descriptor = Descriptor(MediaType.OCI_LAYER_GZIP, sha256_of(BLOB), len(BLOB))
    registry.blobs[str(descriptor.digest)] = BLOB
    registry.links.add(("team/api", str(descriptor.digest)))
    registry.quirks.cut_blob_gets = 1
    gets = itertools.count(1)

    def fail_after_the_cut(seen_request: Seen) -> Canned | None:
        blob_get = seen_request.method == "GET" and "/blobs/sha256:" in seen_request.path
        return Canned(503) if blob_get and next(gets) > 1 else None

    registry.intercept = fail_after_the_cut
    with client_of(registry) as client, pytest.raises(TransientRegistryError) as error:
        client.fetch_blob(Reference.parse(f"{registry.host}/team/api"), descriptor, tmp_path / "b")
    made = seen(registry, "GET", "/blobs/sha256:")
    assert made == 1 + allowed
    assert attempts_in(error.value) == made


def test_the_push_access_check_counts_the_sessions_it_tried_to_open(registry, allowed):
    registry.intercept = failing("/blobs/uploads/", "POST", status=502)
    with client_of(registry) as client, pytest.raises(TransientRegistryError) as error:
        client.check_push_access(Reference.parse(f"{registry.host}/team/api"))
    assert seen(registry, "POST", "/blobs/uploads/") == allowed
    assert attempts_in(error.value) == allowed


def test_a_registry_that_refuses_connections_counts_the_connections_tried(registry, allowed):
    """Nothing listens: each attempt is one refused connection. The count is the one the
    transport made, not the one it was configured with. (``registry``: the fixture lets a
    unit test connect to loopback.)"""
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # closed below: nothing listens there
    refused: list[object] = []
    original = socket.socket.connect

    def counting(self: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and address[1] == port:
            refused.append(address)
        return original(self, address)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", counting)
        with (
            RegistryClient(f"127.0.0.1:{port}", environ={}, attempts=CONFIGURED) as client,
            pytest.raises(TransientRegistryError, match="cannot reach registry") as error,
        ):
            client.get_manifest(Reference.parse(f"127.0.0.1:{port}/team/api:1"))
    assert len(refused) == allowed
    assert attempts_in(error.value) == allowed
