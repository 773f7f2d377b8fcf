"""``RegistryClient.check_push_access``: what a push would meet first, asked before building,
and the bound on a referrers answer, against the in-process registry (real HTTP on loopback)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import stamina

from crossdock.errors import AuthError, NotFoundError, RegistryError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import sha256_of
from crossdock.image.document import MAX_DOCUMENT_BYTES
from crossdock.image.mediatypes import MediaType
from crossdock.registry.client import RegistryClient
from crossdock.registry.credentials import Credentials
from crossdock.registry.reference import Reference
from tests.support.registry import Canned, InProcessRegistry, Seen, TokenServer, bearer_gate

USER, PASSWORD = "pusher", "s3cret-Pw9"


def basic_login(user: str, password: str) -> Callable[[Seen], Canned | None]:
    """An intercept: basic auth for everything, and only ``user:password`` gets through."""
    accepted = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def gate(seen: Seen) -> Canned | None:
        sent = {k.lower(): v for k, v in seen.headers.items()}.get("authorization")
        if sent != accepted:
            return Canned(401, b"", {"WWW-Authenticate": 'Basic realm="registry"'})
        return None

    return gate


def no_credentials(tmp_path) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(tmp_path / "docker"), "HOME": str(tmp_path)}


def test_the_push_session_is_opened_and_cancelled_and_nothing_is_written(registry, tmp_path):
    repository = Reference.parse(f"{registry.host}/team/api")
    with RegistryClient(registry.host, environ=no_credentials(tmp_path)) as client:
        client.check_push_access(repository)
    ping, access, start, cancel = registry.requests
    assert [(r.method, r.path) for r in (ping, access)] == [("GET", "/v2/")] * 2
    assert (start.method, start.path) == ("POST", "/v2/team/api/blobs/uploads/")
    assert cancel.method == "DELETE"
    assert cancel.path.startswith("/v2/team/api/blobs/uploads/")
    assert registry.uploads == {}  # the session was cancelled
    assert registry.blobs == {}
    assert registry.manifests == {}


def test_the_right_password_passes_and_a_wrong_one_is_refused_without_printing_it(
    registry, tmp_path
):
    registry.intercept = basic_login(USER, PASSWORD)
    repository = Reference.parse(f"{registry.host}/team/api")
    good = Credentials(USER, PASSWORD, "test")
    with RegistryClient(registry.host, credentials=good, environ=no_credentials(tmp_path)) as ok:
        ok.check_push_access(repository)
    assert registry.uploads == {}
    wrong = Credentials(USER, "not-the-Pw9-password", "test")
    with (
        RegistryClient(registry.host, credentials=wrong, environ=no_credentials(tmp_path)) as bad,
        pytest.raises(AuthError) as refused,
    ):
        bad.check_push_access(repository)
    expected = f"registry {registry.host} refused credentials from test"
    assert refused.value.message.startswith(expected)
    assert "\n" not in refused.value.message
    assert refused.value.exit_code == 8
    assert "not-the-Pw9-password" not in str(refused.value)
    assert registry.blobs == {}


def test_no_credentials_for_a_registry_that_wants_them_says_so(registry, tmp_path):
    registry.intercept = basic_login(USER, PASSWORD)
    with (
        RegistryClient(registry.host, environ=no_credentials(tmp_path)) as client,
        pytest.raises(AuthError, match="requires credentials and none are configured") as missing,
    ):
        client.check_push_access(Reference.parse(f"{registry.host}/team/api"))
    assert "docker login" in str(missing.value.hint)


def test_a_token_that_does_not_allow_a_push_is_refused_before_anything_is_sent(registry, tmp_path):
    """Token servers give an account the token it may have (anonymous: pull), not a refusal:
    the registry's refusal of the upload session is what says a push would fail."""
    with TokenServer() as tokens:

        def pull_only(seen: Seen) -> Canned | None:
            if seen.method != "GET" and seen.path != "/v2/":
                return Canned(401, b"", {"WWW-Authenticate": f'Bearer realm="{tokens.realm}"'})
            return None

        registry.intercept = bearer_gate(tokens, then=pull_only)
        with (
            RegistryClient(registry.host, environ=no_credentials(tmp_path)) as client,
            pytest.raises(AuthError, match="requires credentials and none are configured"),
        ):
            client.check_push_access(Reference.parse(f"{registry.host}/team/api"))
    assert tokens.issued  # the token exchange happened, and its token did not suffice
    assert registry.uploads == {}


def test_an_unreachable_registry_is_one_line(registry, tmp_path):  # registry: loopback allowed
    with InProcessRegistry() as gone:
        host = gone.host  # nothing listens there any more
    with (
        stamina.set_testing(True, attempts=2),
        RegistryClient(host, environ=no_credentials(tmp_path)) as client,
        pytest.raises(RegistryError, match=f"cannot reach registry {host}") as unreachable,
    ):
        client.check_push_access(Reference.parse(f"{host}/team/api"))
    assert "\n" not in unreachable.value.message


def test_a_repository_the_registry_does_not_know_is_not_found(registry, tmp_path):
    def unknown(seen: Seen) -> Canned | None:
        if seen.method == "POST":
            body = b'{"errors": [{"code": "NAME_UNKNOWN", "message": "no such repository"}]}'
            return Canned(404, body, {"Content-Type": "application/json"})
        return None

    registry.intercept = unknown
    with (
        RegistryClient(registry.host, environ=no_credentials(tmp_path)) as client,
        pytest.raises(NotFoundError, match=r"cannot start a blob upload on .*team/api: 404"),
    ):
        client.check_push_access(Reference.parse(f"{registry.host}/team/api"))


def test_a_referrers_answer_is_read_no_further_than_the_document_bound(registry):
    """The referrers API's answer announces ten gigabytes and sends one byte more than the
    bound, then nothing: the client stops at the bound and says so, instead of waiting for
    (or holding) the rest."""

    def huge_referrers(seen: Seen) -> Canned | None:
        if "/referrers/" not in seen.path:
            return None
        return Canned(
            200,
            b"{" + b" " * MAX_DOCUMENT_BYTES,
            {
                "Content-Type": "application/vnd.oci.image.index.v1+json",
                "Content-Length": "1" + "0" * 10,
            },
        )

    registry.intercept = huge_referrers
    with (
        RegistryClient(registry.host, environ={}) as client,
        pytest.raises(RegistryError, match=f"larger than {MAX_DOCUMENT_BYTES} bytes") as error,
    ):
        client.referrers(Reference.parse(f"{registry.host}/team/api"), sha256_of(b"subject"))
    assert "the referrers of sha256:" in error.value.message
    assert len([r for r in registry.requests if "/referrers/" in r.path]) == 1  # no retry


def test_a_downloaded_blob_kept_leaves_its_partial_name_to_other_writers(
    registry, tmp_path, monkeypatch
):
    # Several downloads share the blob cache's folder (two platforms, two crossdock processes),
    # each into a partial file of a free name. Once this download renamed its partial file to
    # the blob's name, that name is free again and another download may take it: the end of
    # this download must not remove the other one's partial file (it did, unlinking by name).
    data = b"a base layer" * 100
    descriptor = Descriptor(MediaType.OCI_LAYER_GZIP, sha256_of(data), len(data))
    registry.blobs[str(descriptor.digest)] = data
    registry.links.add(("team/api", str(descriptor.digest)))
    dest = tmp_path / "blobs" / "sha256" / descriptor.digest.hex
    real_replace = os.replace
    others: list[Path] = []

    def replace_then_another_download_takes_the_name(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if Path(dst) == dest:
            other = Path(src)
            other.write_bytes(b"the first bytes of another download")
            others.append(other)

    monkeypatch.setattr(os, "replace", replace_then_another_download_takes_the_name)
    with RegistryClient(registry.host, environ=no_credentials(tmp_path)) as client:
        client.fetch_blob(Reference.parse(f"{registry.host}/team/api"), descriptor, dest)
    assert dest.read_bytes() == data
    assert len(others) == 1
    assert others[0].read_bytes() == b"the first bytes of another download"
