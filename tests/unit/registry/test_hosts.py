"""Which host a request goes to, and refusing hosts that do not answer as a registry."""

from __future__ import annotations

import base64
import json
import socket

import httpx
import pytest

from crossdock.errors import AuthError, RegistryError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import sha256_of
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Mirrors, Reference
from crossdock.registry.responses import NotARegistryError, access_refused_hint

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
INDEX = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
).encode()
SECRET = "canary-hub-Zk3"


class Recorder:
    """A registry answering every manifest with an empty index, recording what it was sent."""

    def __init__(self, basic_auth: bool = False):
        self.requests: list[httpx.Request] = []
        self.basic_auth = basic_auth

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/v2/":
            return httpx.Response(200, headers=API_VERSION)
        if self.basic_auth and "authorization" not in request.headers:
            return httpx.Response(
                401, headers={**API_VERSION, "WWW-Authenticate": 'Basic realm="hub"'}
            )
        return httpx.Response(
            200,
            content=INDEX,
            headers={**API_VERSION, "Content-Type": "application/vnd.oci.image.index.v1+json"},
        )

    def client(self, registry: str, environ: dict[str, str] | None = None) -> RegistryClient:
        http = httpx.Client(transport=httpx.MockTransport(self.handler), follow_redirects=True)
        return RegistryClient(registry, http=http, environ=environ or {})


@pytest.mark.parametrize(
    "spelling",
    [
        "python:3.13-slim",
        "library/python:3.13-slim",
        "docker.io/library/python:3.13-slim",
        "docker.io/python:3.13-slim",
        "index.docker.io/library/python:3.13-slim",
        "registry-1.docker.io/library/python:3.13-slim",
    ],
)
def test_docker_hub_references_are_requested_from_its_api_host(spelling):
    ref = Reference.parse(spelling)
    recorder = Recorder()
    with recorder.client(ref.registry) as client:
        client.get_manifest(ref)
    assert [str(r.url) for r in recorder.requests] == [
        "https://registry-1.docker.io/v2/",
        "https://registry-1.docker.io/v2/library/python/manifests/3.13-slim",
    ]


def test_docker_hub_credentials_are_found_under_dockers_key(tmp_path):
    # `docker login` writes Docker Hub's credentials under the v1 index URL.
    auth = base64.b64encode(f"hubuser:{SECRET}".encode()).decode()
    config = {"auths": {"https://index.docker.io/v1/": {"auth": auth}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    recorder = Recorder(basic_auth=True)
    ref = Reference.parse("python:3.13-slim")
    with recorder.client(ref.registry, {"DOCKER_CONFIG": str(tmp_path)}) as client:
        client.get_manifest(ref)
    sent = [r.headers.get("authorization") for r in recorder.requests]
    assert sent[-1] == f"Basic {auth}"
    assert {r.url.host for r in recorder.requests} == {"registry-1.docker.io"}


def test_a_mirror_applies_before_the_docker_hub_api_host():
    mirrors = Mirrors.parse("docker.io=127.0.0.1:5555")
    ref = mirrors.apply(Reference.parse("index.docker.io/library/python:3.13-slim"))
    recorder = Recorder()
    with recorder.client(ref.registry) as client:
        client.get_manifest(ref)
    assert str(recorder.requests[-1].url) == (
        "http://127.0.0.1:5555/v2/library/python/manifests/3.13-slim"
    )


def web_site(request: httpx.Request) -> httpx.Response:
    """What docker.io does: /v2/... redirects to the web site, which answers with a page."""
    if request.url.host == "docker.example":
        return httpx.Response(301, headers={"Location": "https://www.example.com/"})
    return httpx.Response(200, content=b"<html>hello</html>", headers={"Content-Type": "text/html"})


def client_for(handler, registry="docker.example") -> RegistryClient:
    http = httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True)
    return RegistryClient(registry, http=http, environ={})


def test_a_redirect_to_a_web_page_is_not_a_registry():
    with client_for(web_site) as client, pytest.raises(NotARegistryError) as error:
        client.get_manifest(Reference.parse("docker.example/library/python:3.13-slim"))
    message = str(error.value)
    assert message.startswith("docker.example does not answer as an OCI registry: ")
    assert "https://docker.example/v2/ -> https://www.example.com/" in message
    assert "\n" not in error.value.message


def test_a_v2_answer_without_the_api_version_header_is_not_a_registry():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    with client_for(handler) as client, pytest.raises(NotARegistryError) as error:
        client.head_manifest(Reference.parse("docker.example/app:1"))
    assert "without Docker-Distribution-API-Version" in str(error.value)


def test_an_html_page_on_a_registry_path_is_refused_not_parsed(tmp_path):
    # /v2/ looks right (a proxy passing only that through), the blob is a portal's page.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200, headers=API_VERSION)
        return httpx.Response(
            200, content=b"<html>log in</html>", headers={"Content-Type": "text/html"}
        )

    descriptor = Descriptor("application/octet-stream", sha256_of(b"x"), 1)
    dest = tmp_path / "blobs" / "x"
    with client_for(handler) as client, pytest.raises(NotARegistryError, match="a web page"):
        client.fetch_blob(Reference.parse("docker.example/app:1"), descriptor, dest)
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", None])
def test_a_manifest_answer_without_a_manifest_type_is_refused(content_type):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200, headers=API_VERSION)
        headers = {**API_VERSION, **({"Content-Type": content_type} if content_type else {})}
        return httpx.Response(200, content=INDEX, headers=headers)

    with client_for(handler) as client, pytest.raises(NotARegistryError, match="not a manifest"):
        client.get_manifest(Reference.parse("docker.example/app:1"))


def test_a_host_name_that_does_not_resolve_is_not_retried():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        # As httpx raises it: the resolver's error is the cause.
        error = httpx.ConnectError("[Errno -2] Name or service not known")
        error.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        raise error

    with client_for(handler, "docker.io") as client, pytest.raises(RegistryError) as error:
        client.get_manifest(Reference.parse("python:3.13-slim"))
    assert len(calls) == 1
    assert "cannot reach registry registry-1.docker.io" in str(error.value)
    assert "does not resolve" in str(error.value)


def hub_denying_pushes(request: httpx.Request) -> httpx.Response:
    """Docker Hub answering a push to a repository the account does not own."""
    if request.url.path == "/v2/":
        return httpx.Response(200, headers=API_VERSION)
    return httpx.Response(401, headers={**API_VERSION, "WWW-Authenticate": 'Basic realm="hub"'})


def test_a_push_refused_under_library_on_docker_hub_says_where_pushes_go(tmp_path):
    # `docker.io/myapp` is library/myapp: Docker's official images, no user may push there.
    auth = base64.b64encode(f"hubuser:{SECRET}".encode()).decode()
    config = {"auths": {"https://index.docker.io/v1/": {"auth": auth}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    ref = Reference.parse("docker.io/myapp:1")
    http = httpx.Client(transport=httpx.MockTransport(hub_denying_pushes))
    with (
        RegistryClient(ref.registry, http=http, environ={"DOCKER_CONFIG": str(tmp_path)}) as hub,
        pytest.raises(AuthError) as refused,
    ):
        hub.check_push_access(ref)
    assert refused.value.hint == (
        "Docker Hub takes pushes under your account's name only: push to "
        "docker.io/<your user>/NAME (a name without '/' means library/NAME, Docker's official "
        "images)"
    )
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("registry", "repository"),
    [("docker.io", "hubuser/app"), ("ghcr.io", "library/app"), ("127.0.0.1:5000", "library/x")],
)
def test_other_refused_pushes_say_to_log_in_under_the_name_credentials_are_stored(
    registry, repository
):
    hint = access_refused_hint(registry, [f"repository:{repository}:pull,push"])
    assert hint == (
        f"log in again (docker login {registry}) or check the account's permissions on this "
        "repository"
    )
