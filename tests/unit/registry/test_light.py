"""The light registry client (crossdock.registry.light: the standard library's HTTP, for a build
answered from its record) against an in-process registry on loopback: it reads what the full
client reads, through the same credentials and challenge handling (anonymous, a bearer realm on
another host, basic auth from the environment or docker's config.json), and declines what it
does not handle (a write, a redirect, a 5xx, a web page, altered bytes, a registry that does not
answer, ECR). The HTTPS stage's CA and token realm: tests/integration/test_https_registry.py."""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crossdock.errors import AuthError, CrossdockError, NotFoundError
from crossdock.image.artifact import ImageSet
from crossdock.image.digest import sha256_of
from crossdock.platform import ARM64
from crossdock.publish.pipeline import Publishing, release, release_if_present
from crossdock.publish.release import ReleaseRequest
from crossdock.registry.client import RegistryClient
from crossdock.registry.light import DeclinedError, LightClient
from crossdock.registry.reference import Reference
from tests.support import images
from tests.support.registry import Canned, InProcessRegistry, Seen, TokenServer, bearer_gate

REPOSITORY = "team/api"
SECRET = "s3cret-Zq8vXw"
WRITES = ("PUT", "POST", "PATCH", "DELETE")


def _stored(registry: InProcessRegistry, tmp_path: Path) -> ImageSet:
    image_set = images.image_set(tmp_path / "blobs", shared=images.app_files())
    registry.put_image_set(REPOSITORY, image_set, "latest")
    return image_set


def _ref(registry: InProcessRegistry, tag: str = "latest") -> Reference:
    return Reference.parse(f"{registry.host}/{REPOSITORY}:{tag}")


def _no_credentials(tmp_path: Path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(tmp_path / "no-docker-config"), "HOME": str(tmp_path)}


def _authorizations(registry: InProcessRegistry) -> list[str]:
    return [
        value
        for seen in registry.requests
        for name, value in seen.headers.items()
        if name.lower() == "authorization"
    ]


def test_anonymous_reads_are_the_full_clients_reads(registry, tmp_path):
    image_set = _stored(registry, tmp_path)
    assert image_set.index is not None
    environ = _no_credentials(tmp_path)
    with LightClient(registry.host, environ=environ) as light:
        document = light.get_manifest(_ref(registry))
        head = light.head_manifest(_ref(registry))
        missing = light.head_manifest(_ref(registry, "nope"))
        layer = image_set.images[0].layers[0].descriptor.digest
        present = light.blob_exists(_ref(registry), layer)
        absent = light.blob_exists(_ref(registry), sha256_of(b"never pushed"))
        with pytest.raises(NotFoundError):
            light.get_manifest(_ref(registry, "nope"))
    with RegistryClient(registry.host, environ=environ) as full:
        assert full.get_manifest(_ref(registry)).raw == document.raw
        assert full.head_manifest(_ref(registry)) == head
    assert document.digest == image_set.index.digest
    assert head is not None
    assert head.digest == image_set.index.digest
    assert missing is None
    assert (present, absent) == (True, False)
    assert _authorizations(registry) == []


def test_reads_made_at_once_go_on_connections_of_their_own(registry, tmp_path):
    """Four HEADs that the registry answers only once all four arrived (one connection at a
    time would never get there): each gets its own answer."""
    image_set = _stored(registry, tmp_path)
    assert image_set.index is not None
    together = threading.Barrier(4, timeout=10)

    def meet(seen: Seen) -> Canned | None:
        if seen.method == "HEAD":
            together.wait()
        return None

    registry.intercept = meet
    with LightClient(registry.host, environ=_no_credentials(tmp_path)) as light:
        answers = _heads_at_once(light, registry, image_set)
        registry.intercept = None
        assert light.head_manifest(_ref(registry)) is not None  # a kept connection, reused
    expected = [image_set.index.digest, *(i.digest for i in image_set.images), None]
    assert answers == expected


def _heads_at_once(light: LightClient, registry, image_set) -> list[object]:
    """HEADs of the tag, each platform's manifest and a missing tag, all at once: the digests
    answered (None for the missing one)."""
    refs = [_ref(registry), *(_ref(registry).with_digest(i.digest) for i in image_set.images)]
    refs.append(_ref(registry, "nope"))
    with ThreadPoolExecutor(len(refs)) as pool:
        answers = list(pool.map(light.head_manifest, refs))
    return [a.digest if a else None for a in answers]


def test_reads_made_at_once_behind_a_bearer_challenge_share_one_token(registry, tmp_path):
    """Four first reads, each refused until it carries a token, all refused at once: one token
    is asked for, and every read carries it."""
    image_set = _stored(registry, tmp_path)
    assert image_set.index is not None
    refused_together = threading.Barrier(4, timeout=10)
    with TokenServer() as tokens:
        gate = bearer_gate(tokens)

        def refuse_four_at_once(seen: Seen) -> Canned | None:
            canned = gate(seen)
            if canned is not None and canned.status == 401 and not tokens.issued:
                refused_together.wait()
            return canned

        registry.intercept = refuse_four_at_once
        with LightClient(registry.host, environ=_no_credentials(tmp_path)) as light:
            answers = _heads_at_once(light, registry, image_set)
    assert answers == [
        image_set.index.digest,
        *(i.digest for i in image_set.images),
        None,
    ]
    assert len(tokens.issued) == 1
    assert set(_authorizations(registry)) == {f"Bearer {tokens.issued[0]}"}


def test_a_bearer_realm_on_another_host_is_answered_as_the_full_client_answers_it(
    registry, tmp_path
):
    image_set = _stored(registry, tmp_path)
    assert image_set.index is not None
    with TokenServer() as tokens:
        registry.intercept = bearer_gate(tokens)
        assert tokens.url != registry.url  # another origin (its own port)
        with LightClient(registry.host, environ=_no_credentials(tmp_path)) as light:
            assert light.get_manifest(_ref(registry)).digest == image_set.index.digest
            # The scheme is remembered: later reads carry a token from the start.
            asked = len(registry.requests)
            assert light.head_manifest(_ref(registry)) is not None
            assert len(registry.requests) == asked + 1
    assert len(tokens.issued) == 1
    assert _authorizations(registry) == [f"Bearer {tokens.issued[0]}"] * 2


def _basic_gate(seen: Seen) -> Canned | None:
    expected = "Basic " + base64.b64encode(f"pusher:{SECRET}".encode()).decode()
    if {k.lower(): v for k, v in seen.headers.items()}.get("authorization") == expected:
        return None
    return Canned(401, b"{}", {"WWW-Authenticate": 'Basic realm="in-process"'})


def test_basic_auth_takes_the_credentials_the_full_client_takes(registry, tmp_path):
    image_set = _stored(registry, tmp_path)
    assert image_set.index is not None
    registry.intercept = _basic_gate
    host_variable = "CROSSDOCK_REGISTRY_" + "".join(
        c if c.isalnum() else "_" for c in registry.host.upper()
    )
    from_env = {
        **_no_credentials(tmp_path),
        f"{host_variable}_USERNAME": "pusher",
        f"{host_variable}_PASSWORD": SECRET,
    }
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    auth = base64.b64encode(f"pusher:{SECRET}".encode()).decode()
    config.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    from_config = {"DOCKER_CONFIG": str(config.parent), "HOME": str(tmp_path)}
    for environ in (from_env, from_config):
        with LightClient(registry.host, environ=environ) as light:
            assert light.get_manifest(_ref(registry)).digest == image_set.index.digest
    # Without credentials: the full client's error, which names no secret.
    with (
        LightClient(registry.host, environ=_no_credentials(tmp_path)) as light,
        pytest.raises(AuthError, match="requires credentials and none are configured"),
    ):
        light.get_manifest(_ref(registry))
    # With wrong ones: declined (the full client says what is wrong), without the secret.
    wrong = {**from_env, f"{host_variable}_PASSWORD": "wrong-Zq8vXw"}
    with (
        LightClient(registry.host, environ=wrong) as light,
        pytest.raises(DeclinedError) as declined,
    ):
        light.get_manifest(_ref(registry))
    assert "Zq8vXw" not in str(declined.value)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (Canned(503, b"down", {"Content-Type": "text/plain"}), "answered 503"),
        (Canned(429, b"", {"Retry-After": "1"}), "answered 429"),
        (Canned(307, b"", {"Location": "https://example.invalid/"}), "answered 307"),
        (Canned(200, b"<html></html>", {"Content-Type": "text/html"}), "a web page"),
        (Canned(200, b"{}", {"Content-Type": "application/json"}), "not a manifest"),
        (Canned(401, b"{}", {"WWW-Authenticate": 'Negotiate realm="x"'}), "auth scheme"),
    ],
)
def test_what_the_light_client_does_not_handle_is_declined_or_an_error(
    registry, tmp_path, answer, why
):
    _stored(registry, tmp_path)
    registry.intercept = lambda _seen: answer
    with (
        LightClient(registry.host, environ=_no_credentials(tmp_path)) as light,
        pytest.raises(CrossdockError, match=why),
    ):
        light.get_manifest(_ref(registry))
    assert len(registry.requests) == 1  # no retry, no redirect followed


def test_a_manifest_that_does_not_match_its_digest_is_declined(registry, tmp_path):
    _stored(registry, tmp_path)
    registry.quirks.alter_manifest_gets = True
    with (
        LightClient(registry.host, environ=_no_credentials(tmp_path)) as light,
        pytest.raises(DeclinedError, match="does not match its digest"),
    ):
        light.get_manifest(_ref(registry))


def test_a_registry_that_does_not_answer_is_declined(registry, tmp_path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{unused.getsockname()[1]}"  # nothing listens there
    with (
        LightClient(host, environ=_no_credentials(tmp_path)) as light,
        pytest.raises(DeclinedError, match="ConnectionRefusedError"),
    ):
        light.get_manifest(Reference.parse(f"{host}/{REPOSITORY}:latest"))
    assert registry.requests == []


def test_ecr_is_declined_at_once():
    with pytest.raises(DeclinedError, match="ECR"):
        LightClient("123456789012.dkr.ecr.eu-west-1.amazonaws.com")


def test_writes_are_declined_and_never_sent(registry, tmp_path):
    image_set = _stored(registry, tmp_path)
    repository = _ref(registry)
    image = image_set.images[0]
    with LightClient(registry.host, environ=_no_credentials(tmp_path)) as light:
        assert light.upload_blob_bytes(repository, image.config.raw) == "present"
        with pytest.raises(DeclinedError, match="would be uploaded"):
            light.upload_blob_bytes(repository, b"a config the registry lacks")
        with pytest.raises(DeclinedError, match="would be written"):
            light.put_manifest(repository, image.manifest.raw, image.manifest.media_type, "v2")
    assert [seen for seen in registry.requests if seen.method in WRITES] == []


def test_the_light_client_imports_no_http_stack():
    import subprocess

    probe = (
        "import sys, crossdock.registry.light, crossdock.publish.pipeline,"
        " crossdock.cli.build_shortcut;"
        "print(sorted(m for m in ('httpx', 'stamina', 'httpcore') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# -- a release that would write nothing, found by the push's own code -------------------------


def _publishing(registry: InProcessRegistry) -> Publishing:
    request = ReleaseRequest(
        repository=Reference.parse(f"{registry.host}/{REPOSITORY}"), env=None, tag="v1"
    )
    return Publishing(request=request)


def test_a_release_the_registry_holds_already_is_found_without_writing(
    registry, tmp_path, monkeypatch
):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    image_set = images.with_sboms(images.image_set(tmp_path / "blobs", shared=images.app_files()))
    publishing = _publishing(registry)
    assert release_if_present(publishing, image_set) is None  # nothing there yet
    assert [seen for seen in registry.requests if seen.method in WRITES] == []
    first = release(publishing, image_set)
    assert first.report is not None
    assert first.report.blobs_uploaded > 0

    read = len(registry.requests)
    present = release_if_present(publishing, image_set)
    assert present is not None
    assert [seen for seen in registry.requests[read:] if seen.method in WRITES] == []
    # Tags, referrers and listings only: a held manifest's blobs are held (sinks.held).
    assert [seen for seen in registry.requests[read:] if "/blobs/" in seen.path] == []
    # What the full release reports for the same registry state.
    again = release(publishing, image_set)
    assert present.to_json() == again.to_json()
    assert present.report is not None
    assert present.report.blobs_uploaded == 0
    assert sorted(present.report.tags_unchanged) == sorted(t.tag for t in present.plan.tags)
    assert present.report.referrers == again.report.referrers != []  # type: ignore[union-attr]
    # (blobs are checked from several threads: their events come in any order)
    assert sorted(present.events, key=repr) == sorted(again.events, key=repr)


def test_a_moved_tag_or_a_missing_referrer_is_something_to_write(registry, tmp_path, monkeypatch):
    """(Each change at the registry that the push writes back: tests/unit/sinks/test_held.py.)"""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    image_set = images.with_sboms(images.image_set(tmp_path / "blobs", shared=images.app_files()))
    publishing = _publishing(registry)
    release(publishing, image_set)
    assert release_if_present(publishing, image_set) is not None
    other = images.image_set(tmp_path / "other", platforms=(ARM64,))

    def tag_moved() -> None:
        registry.put_image_set(REPOSITORY, other, "v1")

    def referrer_gone() -> None:
        referrer = image_set.images[0].referrers[0]
        del registry.manifests[(REPOSITORY, str(referrer.digest))]

    for change in (tag_moved, referrer_gone):
        change()
        read = len(registry.requests)
        assert release_if_present(publishing, image_set) is None, change.__name__
        assert [s for s in registry.requests[read:] if s.method in WRITES] == []
        release(publishing, image_set)  # the full release writes it back
        assert release_if_present(publishing, image_set) is not None, change.__name__
