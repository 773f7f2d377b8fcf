"""Answering a registry's ``WWW-Authenticate`` challenge: basic auth, or the bearer-token flow.

The token flow (distribution's token spec, used by Docker Hub, GHCR, Harbor, Quay...): a request
without a token gets ``401`` with ``WWW-Authenticate: Bearer realm="...",service="...",
scope="repository:R:pull"``; the client asks the realm for a token for the scopes it needs
(with basic credentials when it has some, anonymously otherwise) and repeats the request with
``Authorization: Bearer <token>``. A push needs ``repository:R:pull,push``; a cross-repository
mount needs that plus ``repository:SOURCE:pull``.

Tokens are cached per set of scopes until shortly before they expire; requests made at once
that need the same scopes wait for one token rather than each asking. A request whose token was
turned away fetches one for itself alone. After the first challenge the registry's scheme is
remembered, so later requests carry credentials from the start: a request with a large body is
then never sent twice just to learn that it needs a token.

Credentials are sent only over HTTPS, or to a loopback address (where HTTP is allowed).

Nothing here sends a request: the token realm is asked through a ``TokenGet`` that the caller's
HTTP stack provides (httpx in ``transport``, the standard library in ``light``), so both clients
answer challenges with this one piece.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from crossdock.errors import AuthError
from crossdock.registry.credentials import Credentials
from crossdock.registry.reference import is_loopback_registry

__all__ = [
    "Authenticator",
    "Challenge",
    "TokenGet",
    "TokenServerUnreachable",
    "parse_www_authenticate",
    "pull_scope",
    "push_scope",
    "redact_url",
]

_log = logging.getLogger(__name__)

# auth-param = token "=" ( token / quoted-string ), RFC 7235; quoted strings may hold commas.
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)')
# Refresh a token this many seconds before the registry says it expires (clock skew, slow
# uploads between the check and the use).
_EXPIRY_MARGIN_SECONDS = 10
# The token spec says a missing expires_in means 60 seconds.
_DEFAULT_TOKEN_SECONDS = 60


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


class TokenServerUnreachable(Exception):  # noqa: N818 - a fact, not a failure of its own
    """Raised by a ``TokenGet`` when no answer came (the HTTP stack's error, by name)."""


TokenGet = Callable[[str, Sequence[tuple[str, str]], Mapping[str, str]], tuple[int, bytes]]
"""``GET url?params`` with ``headers`` from a token realm: its status and body. Raises
``TokenServerUnreachable`` when the server cannot be reached."""


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: the scheme (lower-case) and its parameters."""

    scheme: str
    params: Mapping[str, str]

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())


def parse_www_authenticate(header: str) -> Challenge | None:
    """Parse ``Bearer realm="https://auth",service="reg",scope="repository:a:pull"``.

    Returns None for an empty header. Parameter names are lower-cased; values are unquoted.
    """
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM_RE.match(rest, position)
        if match is None or match.end() == position:
            break
        name, quoted, bare = match.groups()
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params[name.lower()] = value
        position = match.end()
    return Challenge(scheme.lower(), params)


class Authenticator:
    """Holds one registry's credentials, scheme and tokens; thread-safe.

    ``credentials`` is called at most once, when the registry first asks for them (so a
    credential helper or the ECR API is only consulted when needed).
    """

    def __init__(
        self,
        registry: str,
        credentials: Callable[[], Credentials | None],
        get_token: TokenGet,
    ) -> None:
        self.registry = registry
        self._lookup = credentials
        self._get = get_token
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._looked_up = False
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        # One fetch per set of scopes at a time: requests made at once (a push's transfers,
        # the light client's reads of a held release) wait for its token, not ask for theirs.
        self._fetching: dict[tuple[str, ...], threading.Lock] = {}

    def header_for(self, scopes: Sequence[str]) -> str | None:
        """The ``Authorization`` value to send before any challenge, when the scheme is known."""
        with self._lock:
            challenge = self._challenge
        if challenge is None:
            return None
        return self._answer(challenge, scopes)

    def answer_challenge(
        self,
        status: int,
        www_authenticate: str,
        scopes: Sequence[str],
        *,
        refused: str | None = None,
    ) -> str:
        """The ``Authorization`` value that answers a 401 (``status``) carrying the
        ``WWW-Authenticate`` header ``www_authenticate``, for ``scopes``; ``refused`` is the
        ``Authorization`` value the refused request carried (None: it carried none)."""
        challenge = parse_www_authenticate(www_authenticate)
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            raise AuthError(
                f"registry {self.registry} refused the request ({status}) "
                "without a usable WWW-Authenticate challenge",
                hint="the registry needs an auth scheme crossdock does not speak (basic, bearer)",
            )
        merged = tuple(dict.fromkeys([*scopes, *challenge.scopes]))
        key = tuple(sorted(set(merged)))
        with self._lock:
            self._challenge = challenge
            if refused is not None:
                # The token turned away (expired, revoked or too narrow) is sent no more.
                cached = self._tokens.get(key)
                if cached is not None and refused == f"Bearer {cached[0]}":
                    del self._tokens[key]
        if refused is not None and challenge.scheme == "bearer":
            # The answer to a refused token is a token of this request's own, fetched now and
            # not cached: a shared one, even one another request fetched a moment ago, may be as
            # near its end. The next requests share the next token header_for fetches.
            return "Bearer " + self._fetch_token(challenge, key)[0]
        return self._answer(challenge, merged)

    @staticmethod
    def may_answer(first: str | None, refused: str | None, answered: int) -> bool:
        """Whether a request first sent with ``first`` (None: no credentials), refused (401)
        after ``answered`` answers, the last sent with ``refused``, answers the challenge again.
        Every request answers once. A first contact's answer is the token shared by the
        requests made at once, which another may spend (a token can expire between fetch and
        use): its refusal is answered once more, with a token of the request's own. Any other
        second refusal is final (a token of its own refused, or basic credentials)."""
        if answered == 0:
            return True
        return answered == 1 and first is None and (refused or "").startswith("Bearer ")

    def credentials(self) -> Credentials | None:
        with self._lock:
            if not self._looked_up:
                self._credentials = self._lookup()
                self._looked_up = True
                if self._credentials is not None:
                    _log.debug(
                        "using credentials for %s from %s",
                        self.registry,
                        self._credentials.source,
                    )
            return self._credentials

    @property
    def found_none(self) -> bool:
        """Credentials were looked up (the registry asked for them) and none were found."""
        with self._lock:
            return self._looked_up and self._credentials is None

    def describe_credentials(self) -> str:
        """For error messages: where the credentials came from (never what they are)."""
        creds = self.credentials()
        return "no credentials" if creds is None else f"credentials from {creds.source}"

    def _answer(self, challenge: Challenge, scopes: Sequence[str]) -> str:
        if challenge.scheme == "basic":
            creds = self.credentials()
            if creds is None:
                raise self.missing_credentials()
            return creds.basic_header()
        return "Bearer " + self._token(challenge, scopes)

    def _token(self, challenge: Challenge, scopes: Sequence[str]) -> str:
        key = tuple(sorted(set(scopes)))
        with self._lock:
            fetching = self._fetching.setdefault(key, threading.Lock())
        with fetching:
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            token, lifetime = self._fetch_token(challenge, key)
            with self._lock:
                expiry = time.monotonic() + max(lifetime - _EXPIRY_MARGIN_SECONDS, 1)
                self._tokens[key] = (token, expiry)
            return token

    def _fetch_token(self, challenge: Challenge, scopes: Sequence[str]) -> tuple[str, float]:
        realm = challenge.realm
        if not realm:
            raise AuthError(f"registry {self.registry} sent a bearer challenge without a realm")
        creds = self.credentials()
        if creds is not None and not _may_send_secret(realm):
            raise AuthError(
                f"registry {self.registry} asks for credentials to be sent to {realm} "
                "over plain HTTP; crossdock sends secrets only over HTTPS",
                hint="fix the registry's token realm to use https://",
            )
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(("scope", scope) for scope in scopes)
        headers = {"Authorization": creds.basic_header()} if creds is not None else {}
        _log.debug("requesting a token from %s for %s", redact_url(realm), " ".join(scopes))
        try:
            status, content = self._get(realm, params, headers)
        except TokenServerUnreachable as err:
            raise AuthError(
                f"cannot reach the token server {redact_url(realm)} of registry "
                f"{self.registry}: {err}",
                hint="check the network path to the token server",
            ) from err
        if status in (401, 403):
            if creds is None:
                raise self.missing_credentials()
            raise AuthError(
                f"the token server of {self.registry} refused {self.describe_credentials()} "
                f"({status}) for {' '.join(scopes)}",
                hint="log in again (docker login), or check that the account may push there",
            )
        if status != 200:
            raise AuthError(
                f"the token server of {self.registry} answered {status}",
                hint="retry later, or check the registry's status",
            )
        try:
            body = json.loads(content)
            token = str(body.get("token") or body.get("access_token") or "")
            lifetime = float(body.get("expires_in") or _DEFAULT_TOKEN_SECONDS)
        except (ValueError, AttributeError, TypeError, RecursionError) as err:
            # TypeError: an expires_in that is not a number; RecursionError: nested too deep.
            raise AuthError(f"the token server of {self.registry} sent no JSON token") from err
        if not token:
            raise AuthError(f"the token server of {self.registry} sent an empty token")
        return token, lifetime

    def missing_credentials(self) -> AuthError:
        """The error for a registry that wants credentials when none are configured for it."""
        return AuthError(
            f"registry {self.registry} requires credentials and none are configured for it",
            hint=f"run `docker login {self.registry}`, configure a credential helper, or set "
            "CROSSDOCK_REGISTRY_USERNAME and CROSSDOCK_REGISTRY_PASSWORD",
        )


def _may_send_secret(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or is_loopback_registry(parts.netloc)


def redact_url(url: str) -> str:
    """A URL fit for logs: presigned URLs carry signatures in the query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
