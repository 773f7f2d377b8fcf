"""Failure paths of pulling and pushing that no other test reaches (issue 13, item 11), each
against the in-process registry and token realm (tests/support/registry.py): real HTTP on
loopback, the fault switched on by the test. Each test says what crossdock does: the error (its
class, so its exit code, and its message), and what is left in the registry.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import stamina

from crossdock.errors import AuthError, BaseImageError, RegistryError
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.mediatypes import MediaType
from crossdock.platform import AMD64
from crossdock.registry import (
    EcrRegistry,
    Reference,
    RegistryClient,
    ensure_repository,
)
from crossdock.sinks import push_image_set
from tests.support.images import app_files, six_tags
from tests.support.images import image_set as make_image_set
from tests.support.prerequisites import require_module
from tests.support.registry import Canned, InProcessRegistry, Quirks, Seen, TokenServer, bearer_gate
from tests.support.stage import (
    PROJECTS,
    crossdock,
    make_service,
)

pytestmark = pytest.mark.integration


REPOSITORY = "fault/app"
ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def _no_backoff():
    """Retries happen as in production, without the waits between them."""
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


LOGIN = {"CROSSDOCK_REGISTRY_USERNAME": "pusher", "CROSSDOCK_REGISTRY_PASSWORD": "s3cret-pw"}


def client_for(
    registry: InProcessRegistry, environ: dict[str, str] | None = None
) -> RegistryClient:
    return RegistryClient(registry.host, environ=environ or {})


def tags_in(registry: InProcessRegistry) -> dict[str, str]:
    """Every tag the registry holds, and the digest of what it points at."""
    return {
        ref: str(sha256_of(raw))
        for (name, ref), (raw, _) in registry.manifests.items()
        if name == REPOSITORY and not ref.startswith("sha256:")
    }


def push(
    registry: InProcessRegistry, folder: Path, environ: dict[str, str] | None = None
) -> tuple[dict[str, Digest], object]:
    image_set = make_image_set(folder, shared=app_files())
    tags = six_tags(image_set)
    with client_for(registry, environ) as client:
        report = push_image_set(
            client, image_set, Reference.parse(f"{registry.host}/{REPOSITORY}"), tags
        )
    return tags, report


# -- bearer tokens ---------------------------------------------------------------------------


def expire_after_uses(tokens: TokenServer, uses: int) -> Callable[[Seen], Canned | None]:
    """An intercept: a token that has authorized ``uses`` requests expires (its lifetime is over)
    and is refused from then on, like any expired token. Expiry by use, not at one moment for all:
    a token fetched in answer to a 401 always gets its first request through, so a 401 after
    renewal would be a client bug, not a token that happened to expire between fetch and use
    (which a real registry treats as revoked, and crossdock reports as an AuthError)."""
    uses_of: dict[str, int] = {}
    lock = threading.Lock()
    gate = bearer_gate(tokens)

    def step(seen: Seen) -> Canned | None:
        authorization = {k.lower(): v for k, v in seen.headers.items()}.get("authorization", "")
        token = authorization.removeprefix("Bearer ")
        with lock:
            if token in tokens.live:
                uses_of[token] = uses_of.get(token, 0) + 1
                if uses_of[token] > uses:
                    tokens.live.discard(token)
        return gate(seen)

    return step


def test_a_token_that_expires_mid_push_is_renewed_and_the_push_completes(tmp_path):
    with TokenServer() as tokens, InProcessRegistry(intercept=bearer_gate(tokens)) as registry:
        registry.intercept = expire_after_uses(tokens, 3)
        tags, _ = push(registry, tmp_path)
    assert tokens.refused  # the registry did turn an expired token away mid-push
    assert set(tokens.refused).isdisjoint(tokens.live)
    assert len(tokens.issued) > len(set(tokens.refused))  # and a new one was fetched
    assert tags_in(registry) == {tag: str(digest) for tag, digest in tags.items()}


def test_a_token_revoked_mid_push_is_an_auth_error_and_no_tag_is_written(tmp_path):
    with TokenServer() as tokens, InProcessRegistry() as registry:

        def revoke_after_first_upload(request: Seen) -> Canned | None:
            if request.method == "PUT" and "/blobs/uploads/" in request.path:
                tokens.revoke()
            return None

        registry.intercept = bearer_gate(tokens, then=revoke_after_first_upload)
        # Which of them refuses first depends on the timing of the concurrent uploads: the token
        # server (no new token for this account) or the registry (a token fetched just before
        # the revocation, refused too: the second 401). Either way the message names the source.
        refused = r"refused credentials from environment \(CROSSDOCK_REGISTRY_USERNAME\)"
        with pytest.raises(AuthError, match=refused) as err:
            push(registry, tmp_path, LOGIN)
    assert tokens.refused  # the revoked token was presented and turned away (the first 401)
    assert err.value.exit_code == 8
    assert LOGIN["CROSSDOCK_REGISTRY_PASSWORD"] not in str(err.value)
    assert tags_in(registry) == {}
    assert not any(ref for (_, ref) in registry.manifests)  # not even a manifest by digest


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("unreachable", r"cannot reach the token server http://127\.0\.0\.1:\d+/token"),
        ("error", r"the token server of .* answered 503"),
        ("not-json", r"the token server of .* sent no JSON token"),
    ],
)
def test_a_token_server_that_fails_is_a_one_line_auth_error(tmp_path, mode, message):
    with TokenServer() as tokens:
        realm = None
        if mode == "unreachable":
            with socket.socket() as sock:  # a port nothing listens on
                sock.bind(("127.0.0.1", 0))
                realm = f"http://127.0.0.1:{sock.getsockname()[1]}/token"
        else:
            tokens.mode = mode
        with InProcessRegistry() as registry:
            registry.intercept = bearer_gate(tokens, realm=realm)
            with pytest.raises(AuthError, match=message) as refused:
                push(registry, tmp_path)
    assert refused.value.exit_code == 8
    assert "\n" not in refused.value.message
    assert registry.blobs == {}
    assert tags_in(registry) == {}


# -- uploads ---------------------------------------------------------------------------------


def test_a_connection_cut_in_the_middle_of_an_upload_is_retried_and_the_push_completes(tmp_path):
    with InProcessRegistry(Quirks(cut_uploads=1)) as registry:
        tags, _ = push(registry, tmp_path)
    assert registry.cut_upload_bytes and registry.cut_upload_bytes[0] > 0  # cut mid-body
    assert tags_in(registry) == {tag: str(digest) for tag, digest in tags.items()}


def test_a_registry_that_accepts_connections_and_never_answers_fails_in_one_line(tmp_path):
    """A silent registry (the port accepts, nothing ever answers) is an error, not a hang:
    `crossdock verify` ends with one line and the registry's exit code well before the bound
    (each attempt of the first GET /v2/ times out after 8 s)."""
    held: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.5)
        port = server.getsockname()[1]
        done = threading.Event()

        def accept_and_stay_silent() -> None:
            while not done.is_set():
                try:
                    connection, _ = server.accept()
                except TimeoutError:
                    continue
                held.append(connection)  # kept open, never read, never answered

        listener = threading.Thread(target=accept_and_stay_silent, daemon=True)
        listener.start()
        try:
            run = crossdock(
                {**os.environ, "HOME": str(tmp_path)},
                "verify",
                f"127.0.0.1:{port}/silent/app:1",
                timeout=90,  # a generous bound; the real limit is in the transport
            )
        finally:
            done.set()
            listener.join(10)
            for connection in held:
                connection.close()
    assert held  # it did connect
    assert run.returncode == RegistryError.exit_code, run.output
    lines = [line for line in run.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1, run.stderr
    assert f"cannot reach registry 127.0.0.1:{port}" in lines[0], run.stderr
    assert "Traceback" not in run.output


class _SlowClock:
    """tenacity's clock (what stamina's ``timeout`` is measured on), ten minutes later at each
    reading: every attempt looks as if it ran for ten minutes before it failed."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 600.0
        return self.now


def test_an_upload_cut_late_in_a_long_attempt_is_still_retried(tmp_path, monkeypatch):
    """No wall-clock budget caps the retries (stamina's default is 45 s): an upload reset ten
    minutes into its attempt is retried like one reset at once. Not in stamina's testing mode,
    which would ignore a timeout and so hide one."""
    import tenacity

    monkeypatch.setattr(tenacity, "time", _SlowClock())
    with stamina.set_testing(False), InProcessRegistry(Quirks(cut_uploads=1)) as registry:
        tags, _ = push(registry, tmp_path)
    assert registry.cut_upload_bytes and registry.cut_upload_bytes[0] > 0  # cut mid-body
    assert tags_in(registry) == {tag: str(digest) for tag, digest in tags.items()}


def test_a_push_whose_uploads_keep_being_cut_fails_with_no_tag(tmp_path):
    with (
        InProcessRegistry(Quirks(cut_uploads=1000)) as registry,
        pytest.raises(RegistryError, match=r"cannot reach registry .* \(PUT "),
    ):
        push(registry, tmp_path)
    assert registry.cut_upload_bytes and all(n > 0 for n in registry.cut_upload_bytes)
    assert registry.manifests == {}


PUSHER = """
import sys
from pathlib import Path
from crossdock.registry import Reference, RegistryClient
from crossdock.sinks import push_image_set
from tests.support.images import app_files, image_set as make_image_set, six_tags

host, folder = sys.argv[1], Path(sys.argv[2])
image_set = make_image_set(folder, shared=app_files(32 * 1024 * 1024))
print("built", flush=True)
with RegistryClient(host, environ={}) as client:
    push_image_set(client, image_set, Reference.parse(f"{host}/fault/app"), six_tags(image_set))
print("pushed", flush=True)
"""
BIG_BODY = 16 * 1024 * 1024  # more than loopback's socket buffers hold


def test_a_push_killed_mid_upload_leaves_no_manifest_and_no_tag(tmp_path):
    """The pushing process is killed (SIGKILL) while the registry is receiving a layer's body:
    nothing it sent is visible under a tag, not even a manifest."""
    with InProcessRegistry(Quirks(hold_upload_over=BIG_BODY)) as registry:
        pusher = subprocess.Popen(
            [sys.executable, "-c", PUSHER, registry.host, str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        try:
            assert registry.holding.wait(120), "the push never started the big upload"
            pusher.kill()
            assert pusher.wait(30) == -signal.SIGKILL
        finally:
            registry.release.set()
            pusher.kill()
            pusher.wait(30)
            assert pusher.stdout is not None
            output = pusher.stdout.read()
            pusher.stdout.close()
        assert registry.held is not None
        received = bytes_read(registry, registry.held)
    assert output == b"built\n"
    # The body was cut short: the process died with the upload in flight.
    assert 0 < received < int(registry.held.headers["Content-Length"])
    assert registry.manifests == {}  # no manifest, by digest or by tag


def bytes_read(registry: InProcessRegistry, request: Seen) -> int:
    """How many bytes of ``request``'s body the registry read, once it has read them."""
    key = f"{request.method} {request.path}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sizes = [size for seen, size in list(registry.body_sizes) if seen == key]
        if sizes:
            return sizes[0]
        time.sleep(0.1)
    raise AssertionError(f"the registry never read the body of {key}")


# -- pulls -----------------------------------------------------------------------------------


@pytest.fixture
def pushed(tmp_path):
    """A registry holding the small image set under REPOSITORY, and that set."""
    with InProcessRegistry() as registry:
        image_set = make_image_set(tmp_path / "blobs", shared=app_files())
        with client_for(registry) as client:
            push_image_set(
                client,
                image_set,
                Reference.parse(f"{registry.host}/{REPOSITORY}"),
                six_tags(image_set),
            )
        yield registry, image_set


@pytest.mark.parametrize(
    ("fault", "message"),
    [("short", r"has \d+ bytes, not the size"), ("altered", "does not match its digest")],
)
def test_a_blob_served_short_or_altered_is_refused_and_not_kept(pushed, tmp_path, fault, message):
    registry, image_set = pushed
    registry.quirks.bad_blob_bodies = fault
    layer = image_set.image_for(AMD64).layers[0].descriptor
    dest = tmp_path / "pulled" / "layer"
    with client_for(registry) as client, pytest.raises(RegistryError, match=message):
        client.fetch_blob(Reference.parse(f"{registry.host}/{REPOSITORY}"), layer, dest)
    assert list(dest.parent.iterdir()) == []  # neither the blob nor a partial file


def test_a_manifest_that_does_not_match_its_digest_is_refused(pushed):
    registry, image_set = pushed
    registry.quirks.alter_manifest_gets = True
    digest = image_set.image_for(AMD64).manifest.digest
    repository = Reference.parse(f"{registry.host}/{REPOSITORY}")
    with client_for(registry) as client:
        with pytest.raises(RegistryError, match="does not match its digest"):
            client.get_manifest(repository.with_digest(digest))
        # By tag, the registry's own Docker-Content-Digest is what the bytes must match.
        with pytest.raises(RegistryError, match="does not match its digest"):
            client.get_manifest(repository.with_tag("dev-amd64-latest"))


def test_a_head_without_docker_content_digest_is_answered_by_hashing_the_manifest(pushed):
    registry, image_set = pushed
    registry.quirks.no_manifest_digest = True
    image = image_set.image_for(AMD64)
    with client_for(registry) as client:
        found = client.head_manifest(
            Reference.parse(f"{registry.host}/{REPOSITORY}").with_tag("dev-amd64-latest")
        )
    assert found is not None
    assert found.digest == image.manifest.digest
    assert [r.method for r in registry.requests[-2:]] == ["HEAD", "GET"]


def test_a_registry_that_stores_a_manifest_under_another_digest_is_refused_before_any_tag(
    tmp_path,
):
    with (
        InProcessRegistry(Quirks(rewrite_manifests=True)) as registry,
        pytest.raises(RegistryError, match=r"stored manifest .* under sha256:[0-9a-f]{64}, not"),
    ):
        push(registry, tmp_path)
    assert tags_in(registry) == {}


# -- writing manifests and tags --------------------------------------------------------------


def fail_manifest_puts(after: int):
    """An intercept: manifest PUTs after the first ``after`` answer 500 (every retry too)."""
    puts: list[str] = []

    def step(request: Seen) -> Canned | None:
        if request.method == "PUT" and "/manifests/" in request.path:
            puts.append(request.path)
            if len(puts) > after:
                return Canned(500, b'{"errors":[{"code":"UNKNOWN","message":"disk full"}]}')
        return None

    return step


def test_a_failure_while_manifests_are_written_leaves_no_tag(tmp_path):
    with (
        InProcessRegistry(intercept=fail_manifest_puts(after=1)) as registry,
        pytest.raises(RegistryError, match=r"answered 500 to PUT .*/manifests/sha256:"),
    ):
        push(registry, tmp_path)
    assert tags_in(registry) == {}
    assert len(registry.manifests) == 1  # one platform manifest, by digest: invisible, collectable


def test_a_failure_while_tags_are_written_says_which_tags_were_set(tmp_path):
    image_set = make_image_set(tmp_path, shared=app_files())
    tags = six_tags(image_set)
    documents = len(image_set.images) + 1  # platform manifests and the index, by digest
    with (
        InProcessRegistry(intercept=fail_manifest_puts(after=documents + 3)) as registry,
        client_for(registry) as client,
        pytest.raises(RegistryError, match="tags were set") as failed,
    ):
        push_image_set(client, image_set, Reference.parse(f"{registry.host}/{REPOSITORY}"), tags)
    written = tags_in(registry)
    order = list(tags)
    assert list(written) == order[:3]
    assert all(written[tag] == str(tags[tag]) for tag in written)  # each at a complete image
    message = failed.value.message
    assert f"3 of {len(tags)} tags were set" in message
    assert ", ".join(order[:3]) in message
    assert order[3] in message


# -- the base --------------------------------------------------------------------------------


def test_a_base_index_without_the_requested_platform_is_a_base_image_error(stage_env, tmp_path):
    """`crossdock build --base` an index that has only arm64, for amd64: exit 5, naming the
    platforms it has; nothing is pulled beyond the index and nothing is pushed."""
    make_service(tmp_path / "project", PROJECTS / "pure-sdist", lock_env=stage_env)
    arm_only = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_INDEX,
        "manifests": [
            {
                "mediaType": MediaType.OCI_MANIFEST,
                "digest": "sha256:" + "ab" * 32,
                "size": 1234,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            }
        ],
    }
    with InProcessRegistry() as registry:
        raw = json.dumps(arm_only).encode()
        registry.manifests[("base/python", "arm-only")] = (raw, MediaType.OCI_INDEX)
        push_to = f"{registry.host}/{REPOSITORY}:x"
        run = crossdock(
            stage_env,
            *("build", "-C", str(tmp_path / "project"), "--service", "api"),
            *("--base", f"{registry.host}/base/python:arm-only", "--platform", "linux/amd64"),
            *("--push", push_to),
        )
        asked = [f"{r.method} {r.path}" for r in registry.requests]
    assert run.returncode == BaseImageError.exit_code, run.output
    assert (
        f"base image {registry.host}/base/python:arm-only has no linux/amd64 image "
        "(it has: linux/arm64/v8)" in run.stderr
    )
    assert "Traceback" not in run.output
    # Nothing pulled, nothing pushed: the only blob requests are the destination's check
    # before the build (an upload session opened and cancelled).
    checked = (f"POST /v2/{REPOSITORY}/blobs/uploads/", f"DELETE /v2/{REPOSITORY}/blobs/uploads/")
    assert [request for request in asked if "/blobs/" in request] == [
        request for request in asked if request.startswith(checked)
    ]
    assert registry.blobs == {}
    assert registry.uploads == {}
    assert registry.manifests.keys() == {("base/python", "arm-only")}


# -- ECR without usable AWS credentials ------------------------------------------------------

ACCOUNT, REGION = "123456789012", "us-east-1"
EXPIRED = json.dumps(
    {
        "__type": "ExpiredTokenException",
        "message": "The security token included in the request is expired",
    }
).encode()


def basic_gate(seen: Seen) -> Canned | None:
    """An intercept: a registry that wants basic auth (ECR's AWS:<token>) for everything."""
    if not {k.lower(): v for k, v in seen.headers.items()}.get("authorization", "").startswith(
        "Basic "
    ):
        return Canned(401, b"", {"WWW-Authenticate": 'Basic realm="ecr"'})
    return None


@pytest.fixture
def aws_api(request, tmp_path, monkeypatch):
    """The ECR API on loopback and the AWS environment of each case: "missing" (moto's server,
    no credentials anywhere) or "expired" (an API that answers ExpiredTokenException, as AWS
    does for an expired session token: moto does not expire credentials)."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    if request.param == "missing":
        server = require_module("moto.server").ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        host, port = server.get_host_and_port()
        yield request.param, f"http://{host}:{port}"
        server.stop()
        return
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXPIREDKEY000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "expired-secret-Zq8vXw")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "expired-session-token-Zq8vXw")
    answer = Canned(400, EXPIRED, {"Content-Type": "application/x-amz-json-1.1"})
    with InProcessRegistry(intercept=lambda _seen: answer) as api:
        yield request.param, api.url


@pytest.mark.parametrize("aws_api", ["missing", "expired"], indirect=True)
def test_ecr_without_usable_aws_credentials_is_an_auth_error_before_any_upload(aws_api, tmp_path):
    case, endpoint = aws_api
    require_module("boto3")
    ecr = EcrRegistry(ACCOUNT, REGION, endpoint)
    code = "NoCredentialsError" if case == "missing" else "ExpiredTokenException"
    with pytest.raises(RegistryError, match=f"cannot check ECR repository .*: {code}"):
        ensure_repository(ecr, "backend/api")
    image_set = make_image_set(tmp_path / "blobs", shared=app_files())
    with InProcessRegistry(intercept=basic_gate) as registry:
        environ = {"DOCKER_CONFIG": str(tmp_path / "no-docker-config")}
        with (
            RegistryClient(registry.host, ecr=ecr, environ=environ) as client,
            pytest.raises(AuthError, match=f"cannot get an ECR token for account {ACCOUNT}") as err,
        ):
            push_image_set(
                client,
                image_set,
                Reference.parse(f"{registry.host}/backend/api"),
                six_tags(image_set),
            )
    assert f"in {REGION}: {code}" in err.value.message
    assert err.value.exit_code == 8
    assert "aws sts get-caller-identity" in str(err.value.hint)
    assert "Zq8vXw" not in str(err.value)  # no secret of the expired credentials
    assert registry.blobs == {}
    assert registry.manifests == {}
