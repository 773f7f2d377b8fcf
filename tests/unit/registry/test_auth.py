import base64
import logging

import httpx
import pytest
import stamina

from crossdock.errors import AuthError, NotFoundError
from crossdock.registry.auth import parse_www_authenticate
from crossdock.registry.client import RegistryClient
from crossdock.registry.credentials import Credentials
from crossdock.registry.reference import Reference
from crossdock.registry.responses import ImmutableTagError
from crossdock.registry.transport import TransientRegistryError, _backoff, _retry_after_seconds

SECRET = "canary-auth-Pq7"


def test_bearer_challenge_is_parsed():
    challenge = parse_www_authenticate(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:a/b:pull,push repository:c:pull"'
    )
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.service == "registry.example.com"
    assert challenge.scopes == ("repository:a/b:pull,push", "repository:c:pull")


def test_basic_challenge_and_odd_spacing():
    challenge = parse_www_authenticate('Basic  realm = "Registry Realm" , charset="UTF-8"')
    assert challenge is not None
    assert (challenge.scheme, challenge.realm) == ("basic", "Registry Realm")
    assert challenge.params["charset"] == "UTF-8"
    assert parse_www_authenticate("") is None
    escaped = parse_www_authenticate(r'Bearer realm="https://a/t",error="say \"no\""')
    assert escaped is not None
    assert escaped.params["error"] == 'say "no"'


def _challenge() -> httpx.Response:
    """The registry's 401: a bearer challenge whose realm is on another host."""
    return httpx.Response(
        401,
        headers={
            "WWW-Authenticate": 'Bearer realm="https://auth.example.com/token",'
            'service="reg.example.com",scope="repository:app:pull"',
            "Docker-Distribution-API-Version": "registry/2.0",
        },
    )


class FakeRegistry:
    """An in-process token-auth registry for protocol details a real one cannot be made to
    show on demand (counting token requests, 429s, ECR's immutable-tag answer)."""

    def __init__(self):
        self.token_requests: list[list[str]] = []
        self.manifest_status = 201
        self.manifest_body = b""
        self.flaky = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            expected = base64.b64encode(f"me:{SECRET}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return httpx.Response(401)
            scopes = request.url.params.get_list("scope")
            self.token_requests.append(scopes)
            return httpx.Response(200, json={"token": "tok-" + "+".join(scopes)})
        if self.flaky:
            self.flaky -= 1
            return httpx.Response(429, headers={"Retry-After": "0"})
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer tok-"):
            return _challenge()
        if request.method == "PUT":
            return httpx.Response(self.manifest_status, content=self.manifest_body)
        return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN", "message": "no"}]})


def make_client(fake, ecr=False, password=SECRET):
    from crossdock.registry.ecr import EcrRegistry

    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    return RegistryClient(
        "reg.example.com",
        credentials=Credentials("me", password, "test"),
        ecr=EcrRegistry("123456789012", "us-east-1") if ecr else None,
        http=http,
    )


def test_token_flow_caches_per_scope():
    fake = FakeRegistry()
    client = make_client(fake)
    ref = Reference.parse("reg.example.com/app:1")
    for _ in range(3):
        assert client.head_manifest(ref) is None
    client.put_manifest(ref, b"{}", "application/vnd.oci.image.manifest.v1+json", "1")
    client.put_manifest(ref, b"{}", "application/vnd.oci.image.manifest.v1+json", "2")
    assert fake.token_requests == [["repository:app:pull"], ["repository:app:pull,push"]]


def test_refused_credentials_raise_auth_error_without_the_secret(caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(FakeRegistry(), password=SECRET + "-wrong")
    with pytest.raises(AuthError) as error:
        client.head_manifest(Reference.parse("reg.example.com/app:1"))
    assert "refused credentials from test" in str(error.value)
    assert SECRET not in str(error.value)
    assert SECRET not in caplog.text


def test_429_is_retried_and_retry_after_is_honoured():
    fake = FakeRegistry()
    fake.flaky = 2
    client = make_client(fake)
    with stamina.set_testing(True, attempts=3):
        assert client.head_manifest(Reference.parse("reg.example.com/app:1")) is None
    fake.flaky = 5
    with (
        stamina.set_testing(True, attempts=3),
        pytest.raises(TransientRegistryError, match="answered 429"),
    ):
        client.head_manifest(Reference.parse("reg.example.com/app:1"))
    assert _retry_after_seconds("7") == 7.0
    assert _retry_after_seconds("100000") == 60.0  # bounded
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert _retry_after_seconds("soon") is None
    assert _backoff(TransientRegistryError("x", retry_after=3.0)) == 3.0
    assert _backoff(TransientRegistryError("x")) is True
    assert _backoff(AuthError("x")) is False


def test_ecr_name_unknown_says_how_to_create_the_repository():
    fake = FakeRegistry()
    fake.manifest_status = 404
    fake.manifest_body = (
        b'{"errors":[{"code":"NAME_UNKNOWN",'
        b'"message":"The repository with name \'app\' does not exist"}]}'
    )
    client = make_client(fake, ecr=True)
    with pytest.raises(NotFoundError) as error:
        client.put_manifest(Reference.parse("reg.example.com/app"), b"{}", "x", "1")
    assert "--create-repository" in str(error.value)
    assert "ECR does not create repositories on push" in str(error.value)


def test_immutable_tag_refusal_is_its_own_error():
    fake = FakeRegistry()
    fake.manifest_status = 400
    fake.manifest_body = (
        b'{"errors":[{"code":"TAG_INVALID","message":"The image tag \'dev-latest\' already '
        b"exists in the 'app' repository and cannot be overwritten because the repository "
        b'is immutable."}]}'
    )
    client = make_client(fake, ecr=True)
    with pytest.raises(ImmutableTagError, match="immutable"):
        client.put_manifest(Reference.parse("reg.example.com/app"), b"{}", "x", "dev-latest")


def test_credentials_are_not_sent_to_a_plain_http_realm():
    def handler(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers
        return httpx.Response(
            401,
            headers={
                "WWW-Authenticate": 'Bearer realm="http://auth.example.com/t"',
                "Docker-Distribution-API-Version": "registry/2.0",
            },
        )

    client = RegistryClient(
        "reg.example.com",
        credentials=Credentials("me", SECRET, "test"),
        http=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(AuthError, match="only over HTTPS"):
        client.head_manifest(Reference.parse("reg.example.com/app:1"))


class SpendableTokens(FakeRegistry):
    """Each token the realm issues is accepted ``uses`` times, then refused: a token that
    expires between its fetch and its use by the request that asked for it."""

    def __init__(self, uses: int):
        super().__init__()
        self.uses = uses
        self.spent: dict[str, int] = {}
        self.registry_requests: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            self.token_requests.append(request.url.params.get_list("scope"))
            return httpx.Response(200, json={"token": f"tok-{len(self.token_requests)}"})
        authorization = request.headers.get("authorization", "")
        if request.url.path != "/v2/":  # the client's first look at the API, before any
            self.registry_requests.append(authorization)  # request of the test's
        token = authorization.removeprefix("Bearer ")
        self.spent[token] = self.spent.get(token, 0) + 1
        if not token.startswith("tok-") or self.spent[token] > self.uses:
            return _challenge()
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "no"}]})


def test_a_first_contact_whose_shared_token_was_spent_answers_with_a_token_of_its_own():
    fake = SpendableTokens(uses=0)  # every token is spent before its requester's retry...
    client = make_client(fake)
    fake.uses = 0
    with pytest.raises(AuthError):
        client.head_manifest(Reference.parse("reg.example.com/app:1"))
    # ... so: no credentials, the shared token, then a token of its own, and no fourth send.
    assert fake.registry_requests == ["", "Bearer tok-1", "Bearer tok-2"]

    fake = SpendableTokens(uses=1)
    client = make_client(fake)
    fake.spent["tok-1"] = 1  # another request spent the shared token first
    assert client.head_manifest(Reference.parse("reg.example.com/app:1")) is None
    assert fake.registry_requests == ["", "Bearer tok-1", "Bearer tok-2"]


def test_a_refused_token_of_its_own_is_final_and_is_not_cached():
    fake = SpendableTokens(uses=1)
    client = make_client(fake)
    ref = Reference.parse("reg.example.com/app:1")
    assert client.head_manifest(ref) is None  # first contact: tok-1 fetched and cached
    assert client.head_manifest(ref) is None  # tok-1 spent: refused, tok-2 of its own
    assert fake.registry_requests[-2:] == ["Bearer tok-1", "Bearer tok-2"]
    # tok-1 was dropped when refused and tok-2 was not cached: the next request shares a new one.
    assert client.head_manifest(ref) is None
    assert fake.registry_requests[-1] == "Bearer tok-3"
    fake.uses = 0  # now every token is refused: one answer only, then the error
    before = len(fake.registry_requests)
    with pytest.raises(AuthError):
        client.head_manifest(ref)
    assert len(fake.registry_requests) - before == 2


class HostileRegistry(FakeRegistry):
    """A registry whose token server or error answers hold ``body`` (bytes as sent)."""

    def __init__(self, token_body: bytes | None = None, error_body: bytes | None = None):
        super().__init__()
        self.token_body = token_body
        self.error_body = error_body

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com" and self.token_body is not None:
            return httpx.Response(200, content=self.token_body)
        if self.error_body is not None and request.headers.get("authorization"):
            return httpx.Response(400, content=self.error_body)
        return super().handler(request)


@pytest.mark.parametrize(
    "body",
    [
        b'{"token": "t", "expires_in": [60]}',
        b"[" * 100_000,
    ],
    ids=["lifetime-a-list", "nested-too-deep"],
)
def test_a_token_answer_of_the_wrong_shape_is_an_auth_error(body):
    client = make_client(HostileRegistry(token_body=body))
    with pytest.raises(AuthError, match="token server") as caught:
        client.head_manifest(Reference.parse("reg.example.com/app:1"))
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    "body",
    [b'{"errors": 5}', b'{"errors": {"code": 1}}', b'{"errors": ' + b"[" * 100_000],
    ids=["errors-an-int", "errors-an-object", "nested-too-deep"],
)
def test_an_error_answer_of_the_wrong_shape_is_a_registry_error(body):
    from crossdock.errors import RegistryError

    # GET: a HEAD's answer has no body to read.
    client = make_client(HostileRegistry(error_body=body))
    with pytest.raises(RegistryError, match="400") as caught:
        client.get_manifest(Reference.parse("reg.example.com/app:1"))
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    "body", [b'{"errors": 5}', b"[" * 100_000], ids=["errors-an-int", "nested-too-deep"]
)
def test_the_problems_of_an_answer_of_the_wrong_shape_are_none(body):
    from crossdock.registry.responses import problems_of

    assert problems_of(httpx.Response(400, content=body)) == ()
