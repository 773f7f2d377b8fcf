"""Sending one registry request: the scheme, authentication, and retries with backoff.

Transient faults are retried with exponential backoff (stamina): connection errors, timeouts,
``429 Too Many Requests`` (waiting as long as ``Retry-After`` asks, up to a bound) and ``5xx``.
Everything else is returned to the caller, which knows what the status means for its action.

A request that carries a body takes a *factory* for it, so that a retry or an answer to an auth
challenge can send the body again from the start (bodies are streamed from files, never held).

Plain HTTP is used only for loopback registries (as Docker allows); HTTPS otherwise.
Authorization is attached only to URLs on the registry's own host: an upload ``Location`` or a
redirect to storage elsewhere never sees the registry's credentials.

Before its first request a transport checks, once, that the host is a registry (``GET /v2/``
answers with ``Docker-Distribution-API-Version``, as Docker's client checks); every answer is
checked not to be a web page. A host name that does not resolve, or a certificate that is not
trusted, is not retried: neither changes a second later.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
import stamina

from crossdock import retries
from crossdock.errors import AuthError, RegistryError
from crossdock.registry.auth import Authenticator, TokenGet, TokenServerUnreachable, redact_url
from crossdock.registry.reference import api_base_url
from crossdock.registry.responses import (
    access_refused_hint,
    check_api_version,
    check_registry_answer,
)
from crossdock.tls import system_ssl_context

retries.install()  # each retry: one readable line (crossdock.retries)

__all__ = ["Body", "TransientRegistryError", "Transport", "retrying"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

Body = bytes | Callable[[], Iterable[bytes]] | None
"""Request content: bytes, or a factory returning a fresh iterator over the bytes."""

# Retry-After can ask for minutes; a build waits at most this long for one retry.
_MAX_RETRY_AFTER_SECONDS = 60.0
_DEFAULT_ATTEMPTS = 5
# Timeouts per operation, per attempt (stamina gets no wall-clock budget: an upload reset after
# ten minutes is retried like one reset after a second; attempts bound the retrying):
# - blob transfers (GET/PUT/PATCH under /blobs/): the gap allowed between two reads or writes;
# - everything else (manifests, tags, tokens): small answers, expected quickly;
# - the first GET /v2/: a registry that accepts connections and never answers fails within
#   attempts x 8 s plus backoff (under a minute), before anything else is tried.
_TRANSFER_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=120.0, pool=60.0)
_SMALL_TIMEOUT = httpx.Timeout(connect=10.0, read=20.0, write=30.0, pool=30.0)
_PING_TIMEOUT = httpx.Timeout(8.0)
_TIMEOUT = _TRANSFER_TIMEOUT  # the client's default (redirects to storage follow a blob GET)
# A token server answers a small JSON document: a silent one fails fast, not after minutes.
_TOKEN_TIMEOUT = httpx.Timeout(connect=10.0, read=20.0, write=20.0, pool=30.0)


class TransientRegistryError(RegistryError):
    """A fault worth retrying (connection error, 429, 5xx). Raised by one attempt; when the
    retrying gives up on it (``retrying``), ``attempts`` counts the attempts really made, those
    of every retry loop inside the one that gave up included, and the hint says that number."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after
        self.advice = hint  # the hint without the count of attempts
        self.attempts = 1

    def gave_up_after(self, attempts: int) -> TransientRegistryError:
        """This fault as the last of ``attempts`` failed attempts (the hint says so)."""
        self.attempts = attempts
        count = retries.gave_up_after(attempts)
        self.hint = f"{self.advice}; {count}" if self.advice else count
        return self


def retrying(
    action: Callable[[], _T],
    *,
    attempts: int,
    on: Callable[[Exception], bool | float],
    registry: str,
    what: str,
) -> _T:
    """``action``, tried again with backoff while ``on`` says a fault is worth it, at most
    ``attempts`` times (fewer under stamina's testing mode). A fault that remains is raised as a
    ``TransientRegistryError`` that counts every attempt made: one per failed try of ``action``,
    or as many as a retry loop inside it made (a request retried by the transport, inside a
    blob download retried as a whole). A connection fault that no retry can fix (a host that
    does not resolve, a certificate that is not trusted) is a ``RegistryError`` at once.
    ``what`` names, in the messages, what was being done (``GET /v2/...``, redacted)."""
    made = 0
    try:
        for attempt in stamina.retry_context(
            on=on, attempts=attempts, timeout=None, wait_max=_MAX_RETRY_AFTER_SECONDS
        ):
            with attempt:
                try:
                    return action()
                except TransientRegistryError as err:
                    made += err.attempts
                    raise
                except httpx.TransportError:
                    made += 1
                    raise
    except TransientRegistryError as err:
        err.gave_up_after(made)
        raise
    except httpx.TransportError as err:
        lasting = _lasting_fault(err)
        if lasting is not None:
            lasting_what, hint = lasting
            raise RegistryError(
                f"cannot reach registry {registry} ({what}): {lasting_what}", hint=hint
            ) from err
        raise TransientRegistryError(
            f"cannot reach registry {registry} ({what}): {type(err).__name__}: {err}",
            hint="check that the registry is up and reachable",
        ).gave_up_after(made) from err
    raise AssertionError("stamina ended without a result")  # pragma: no cover


def _backoff(error: Exception) -> bool | float:
    """stamina hook: whether to retry ``error`` and, for 429, how long to wait."""
    if isinstance(error, TransientRegistryError):
        return error.retry_after if error.retry_after is not None else True
    return isinstance(error, httpx.TransportError) and _lasting_fault(error) is None


def _lasting_fault(error: BaseException) -> tuple[str, str] | None:
    """(what, hint) for a connection fault that a retry cannot fix: a host name that does not
    resolve (``EAI_NONAME``; a resolver's temporary ``EAI_AGAIN`` is retried) or a certificate
    that is not trusted. httpx chains the original error as the cause."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, socket.gaierror) and cause.errno != socket.EAI_AGAIN:
            return (
                f"the host name does not resolve ({cause.strerror})",
                (
                    "check the registry host (or the mirror setting, CROSSDOCK_REGISTRY_MIRRORS), "
                    "DNS and the network (proxy, VPN)"
                ),
            )
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"its TLS certificate is not trusted ({cause.verify_message})",
                (
                    "crossdock trusts the system's certificate store: add the registry's (or your "
                    "proxy's) CA there, or point SSL_CERT_FILE at a bundle that holds it"
                ),
            )
        cause = cause.__cause__ or cause.__context__
    return None


class Transport:
    """Sends requests to one registry (``host[:port]``) over a shared, thread-safe httpx client."""

    def __init__(
        self,
        registry: str,
        authenticator: Authenticator,
        http: httpx.Client,
        *,
        attempts: int = _DEFAULT_ATTEMPTS,
    ) -> None:
        self.registry = registry
        self.base_url = api_base_url(registry)
        self.auth = authenticator
        self.http = http
        self.attempts = attempts
        self._checked_api = False
        self._check_lock = threading.Lock()

    @staticmethod
    def new_http_client() -> httpx.Client:
        # Blob downloads may redirect to object storage; httpx follows and drops the
        # Authorization header when the origin changes. Certificates are checked against the
        # system trust store (crossdock.tls).
        return httpx.Client(timeout=_TIMEOUT, follow_redirects=True, verify=system_ssl_context())

    @staticmethod
    def token_get(http: httpx.Client) -> TokenGet:
        """The authenticator's way to a token realm: a GET through ``http`` (redirects
        followed, the system's certificates)."""

        def get(
            url: str, params: Sequence[tuple[str, str]], headers: Mapping[str, str]
        ) -> tuple[int, bytes]:
            try:
                response = http.get(
                    url, params=list(params), headers=dict(headers), timeout=_TOKEN_TIMEOUT
                )
            except httpx.TransportError as err:
                raise TokenServerUnreachable(type(err).__name__) from err
            return response.status_code, response.content

        return get

    def url(self, path_or_url: str) -> str:
        """An absolute URL: paths are relative to the registry (``/v2/...``)."""
        return urljoin(self.base_url + "/", path_or_url)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        scopes: Sequence[str],
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """Send with auth and retries; the caller judges the final status.

        With ``stream`` the response body is not read: close the response when done.
        With ``retry=False`` a transient fault raises TransientRegistryError at once (used
        inside an upload session, which is retried as a whole by its caller: its ``retrying``
        counts this attempt among the upload's).
        """
        url = self.url(path_or_url)
        call = _Call(method, url, tuple(scopes), dict(headers or {}), body, stream)
        tries = 0

        def send() -> httpx.Response:
            nonlocal tries
            tries += 1
            if tries > 1:
                _log.debug("retry %d: %s %s", tries - 1, method, redact_url(url))
            self._check_api_once()
            return self._send_authorized(call)

        return retrying(
            send,
            attempts=self.attempts if retry else 1,
            on=_backoff,
            registry=self.registry,
            what=f"{method} {redact_url(url)}",
        )

    def _check_api_once(self) -> None:
        """``GET /v2/`` once per transport: refuse a host that is not a registry before any of
        its answers is parsed (docker.io itself redirects to a web page, for one)."""
        with self._check_lock:
            if self._checked_api:
                return
            ping = _Call("GET", self.url("/v2/"), (), {}, None, stream=False, timeout=_PING_TIMEOUT)
            response = self._send_once(ping, None)
            if response.status_code == 429 or response.status_code >= 500:
                raise TransientRegistryError(
                    f"registry {self.registry} answered {response.status_code} to GET /v2/",
                    retry_after=_retry_after_seconds(response.headers.get("retry-after")),
                    hint="the registry is overloaded or failing; retry later",
                )
            check_api_version(response, self.registry)
            self._checked_api = True

    def _send_authorized(self, call: _Call) -> httpx.Response:
        own_host = urlsplit(call.url).netloc == self.registry
        authorization = self.auth.header_for(call.scopes) if own_host else None
        response = self._send_once(call, authorization)
        if response.status_code == 401 and own_host:
            first, answered = authorization, 0
            while response.status_code == 401 and self.auth.may_answer(
                first, authorization, answered
            ):
                response.close()
                authorization = self.auth.answer_challenge(
                    response.status_code,
                    response.headers.get("www-authenticate", ""),
                    call.scopes,
                    refused=authorization,
                )
                response = self._send_once(call, authorization)
                answered += 1
            if response.status_code == 401:
                response.close()
                raise AuthError(
                    f"registry {self.registry} refused {self.auth.describe_credentials()} "
                    f"for {call.method} {redact_url(call.url)} (scopes: {' '.join(call.scopes)})",
                    hint=access_refused_hint(self.auth.registry, call.scopes),
                )
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = _retry_after_seconds(response.headers.get("retry-after"))
            status = response.status_code
            response.close()
            raise TransientRegistryError(
                f"registry {self.registry} answered {status} to "
                f"{call.method} {redact_url(call.url)}",
                retry_after=retry_after,
                hint="the registry is overloaded or failing; retry later",
            )
        try:
            check_registry_answer(response, self.registry)
        except RegistryError:
            response.close()
            raise
        return response

    def _send_once(self, call: _Call, authorization: str | None) -> httpx.Response:
        headers = dict(call.headers)
        if authorization is not None:
            headers["Authorization"] = authorization
        content = call.body() if callable(call.body) else call.body
        timeout = call.timeout or (_TRANSFER_TIMEOUT if "/blobs/" in call.url else _SMALL_TIMEOUT)
        request = self.http.build_request(
            call.method, call.url, headers=headers, content=content, timeout=timeout
        )
        response = self.http.send(request, stream=True)
        if not call.stream:
            try:
                response.read()
            finally:
                response.close()
        _log.debug("%s %s -> %d", call.method, redact_url(call.url), response.status_code)
        return response


@dataclass(frozen=True)
class _Call:
    """One request as the caller asked for it, re-sendable (the body is bytes or a factory)."""

    method: str
    url: str
    scopes: tuple[str, ...]
    headers: dict[str, str]
    body: Body
    stream: bool
    timeout: httpx.Timeout | None = None  # None: chosen by the kind of request (_send_once)


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (it may be a number or an HTTP date), bounded."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_SECONDS)
