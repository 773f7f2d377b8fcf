"""A registry client on the standard library (``http.client``), for the reads of a build answered
from its record (``crossdock.cli.build_shortcut``, issue 14): the base's tag, and whether a push
would write anything. It imports neither httpx nor stamina, a third of that answer's time.

What is not HTTP it shares with the full client (``client.RegistryClient``): the credentials
(``credentials.find_credentials``: the environment, docker's config.json, credential helpers),
the challenge and the token flow (``auth.Authenticator``: basic, bearer with a realm on another
host, secrets only over HTTPS or to loopback), the host serving the API (Docker Hub's), plain
HTTP only to loopback (``reference.api_base_url``), the system's certificates with
``SSL_CERT_FILE`` (``crossdock.tls``), the manifest types asked for and accepted, and the digest
check of every manifest read.

It writes nothing, retries nothing and follows no redirect. Whatever it does not handle raises
``DeclinedError``: a write (a blob or manifest the registry lacks), a redirect, a 429 or 5xx, a
second 401, a challenge it cannot answer, an answer that is not a manifest, a connection that
fails, ECR (its token comes from boto3). The caller then takes the full client's path, which
handles it or says what is wrong; a ``DeclinedError`` is never shown.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from crossdock.errors import MalformedError, NotFoundError, RegistryError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.document import MAX_DOCUMENT_BYTES
from crossdock.image.manifest import Index, Manifest, parse_manifest_or_index
from crossdock.image.mediatypes import MediaType
from crossdock.registry.access import MANIFEST_ACCEPT, MANIFEST_CONTENT_TYPES, UploadOutcome
from crossdock.registry.auth import Authenticator, TokenServerUnreachable, pull_scope
from crossdock.registry.credentials import find_credentials
from crossdock.registry.ecr import parse_ecr_host
from crossdock.registry.reference import Reference, api_base_url, api_host

if TYPE_CHECKING:
    import ssl
    from pathlib import Path

    from crossdock.registry.ecr import EcrRegistry

__all__ = ["DeclinedError", "LightClient"]

# Seconds for a connection or an answer: a registry that does not answer soon is the full
# client's (it retries, and says what is wrong).
_TIMEOUT = 10.0


class DeclinedError(RegistryError):
    """The light client leaves this to the full client (caught by its caller, never shown)."""


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    @property
    def content_type(self) -> str:
        return self.header("content-type").split(";")[0].strip()


class LightClient:
    """Reads ``registry`` (``host[:port]``) over the standard library; thread-safe: requests
    made at once go on connections of their own, each kept open for the next request."""

    def __init__(self, registry: str, *, environ: Mapping[str, str] | None = None) -> None:
        if parse_ecr_host(registry, environ) is not None:
            raise DeclinedError(f"{registry}: ECR's token comes from its API")
        self.registry = registry
        self.api_host = api_host(registry)
        self.base_url = api_base_url(self.api_host)
        # Open connections not in use, by origin (scheme://host:port).
        self._idle: dict[str, list[http.client.HTTPConnection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self.auth = Authenticator(
            registry, lambda: find_credentials(registry, environ), self._get_token
        )

    @property
    def ecr(self) -> EcrRegistry | None:
        return None  # ECR is declined at construction

    def close(self) -> None:
        with self._lock:
            idle = [connection for pool in self._idle.values() for connection in pool]
            self._idle.clear()
        for connection in idle:
            connection.close()

    def __enter__(self) -> LightClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------------------

    def get_manifest(self, ref: Reference) -> Manifest | Index:
        """The manifest or index ``ref`` names, checked against ``ref.digest`` when pinned and
        against the registry's ``Docker-Content-Digest`` when it sends one."""
        repository = self._repository(ref)
        answer = self._request(
            "GET",
            f"/v2/{repository}/manifests/{ref.identifier}",
            [pull_scope(repository)],
            {"Accept": MANIFEST_ACCEPT},
        )
        if answer.status == 404:
            raise NotFoundError(f"{ref} is not in {self.registry}")
        self._expect(answer, 200)
        content_type = self._manifest_type(answer)
        expected = ref.digest or _header_digest(answer)
        if expected is not None and not expected.matches(answer.body):
            raise self._declined(f"manifest {ref} does not match its digest")
        try:
            return parse_manifest_or_index(answer.body, content_type)
        except MalformedError as err:
            raise self._declined(f"manifest {ref} is not one crossdock reads") from err

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        """What ``ref`` points at now, or None when it does not exist."""
        repository = self._repository(ref)
        answer = self._request(
            "HEAD",
            f"/v2/{repository}/manifests/{ref.identifier}",
            [pull_scope(repository)],
            {"Accept": MANIFEST_ACCEPT},
        )
        if answer.status == 404:
            return None
        self._expect(answer, 200)
        media_type = self._manifest_type(answer)
        digest = _header_digest(answer)
        if digest is None:
            manifest = self.get_manifest(ref)
            return Descriptor(manifest.media_type, manifest.digest, len(manifest.raw))
        return Descriptor(media_type, digest, int(answer.header("content-length") or 0))

    def blob_exists(self, repository: Reference, digest: Digest) -> bool:
        name = self._repository(repository)
        answer = self._request("HEAD", f"/v2/{name}/blobs/{digest}", [pull_scope(name)], {})
        if answer.status == 404:
            return False
        self._expect(answer, 200)
        return True

    def referrers(self, repository: Reference, subject: Digest) -> Index | None:
        """The referrers API's index of ``subject``, or None when the registry has no such API
        (as ``RegistryClient.referrers``)."""
        name = self._repository(repository)
        answer = self._request(
            "GET",
            f"/v2/{name}/referrers/{subject}",
            [pull_scope(name)],
            {"Accept": MediaType.OCI_INDEX},
        )
        if answer.status != 200 or answer.content_type != MediaType.OCI_INDEX:
            if answer.status not in (200, 404):
                raise self._declined(f"GET referrers answered {answer.status}")
            return None
        try:
            return Index.parse(answer.body, MediaType.OCI_INDEX)
        except MalformedError as err:
            raise self._declined("the referrers index is not one crossdock reads") from err

    # -- what a push would write: declined, unless there is nothing to write -----------------

    def upload_blob(
        self,
        repository: Reference,
        descriptor: Descriptor,
        path: Path,  # noqa: ARG002 - never read: a blob the registry lacks is declined
        *,
        mount_from: str | None = None,  # noqa: ARG002
        on_bytes: Callable[[int], object] | None = None,  # noqa: ARG002
    ) -> UploadOutcome:
        if self.blob_exists(repository, descriptor.digest):
            return "present"
        raise self._declined(f"blob {descriptor.digest} would be uploaded")

    def upload_blob_bytes(self, repository: Reference, data: bytes) -> UploadOutcome:
        digest = sha256_of(data)
        if self.blob_exists(repository, digest):
            return "present"
        raise self._declined(f"blob {digest} would be uploaded")

    def put_manifest(
        self,
        repository: Reference,  # noqa: ARG002
        raw: bytes,  # noqa: ARG002
        media_type: str,  # noqa: ARG002
        reference: str | Digest,
    ) -> Digest:
        raise self._declined(f"manifest {reference} would be written")

    # -- HTTP ------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, scopes: Sequence[str], headers: Mapping[str, str]
    ) -> _Answer:
        """``method path`` on the registry, answering one challenge as the full transport
        does (``auth.Authenticator``); credentials go to the registry's own host only."""
        url = self.base_url + path
        authorization = self.auth.header_for(scopes)
        answer = self._send(method, url, headers, authorization)
        if answer.status == 401:
            first, answered = authorization, 0
            while answer.status == 401 and self.auth.may_answer(first, authorization, answered):
                authorization = self.auth.answer_challenge(
                    answer.status, answer.header("www-authenticate"), scopes, refused=authorization
                )
                answer = self._send(method, url, headers, authorization)
                answered += 1
            if answer.status == 401:
                raise self._declined(f"{method} {path} refused the credentials")
        if answer.content_type in ("text/html", "application/xhtml+xml"):
            raise self._declined(f"{method} {path} answered a web page")
        return answer

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], authorization: str | None
    ) -> _Answer:
        sent = dict(headers)
        if authorization is not None:
            sent["Authorization"] = authorization
        try:
            return self._exchange(method, url, sent)
        except (OSError, http.client.HTTPException) as err:
            what = f"{method} {urlsplit(url).path}: {type(err).__name__}"
            raise self._declined(what) from err

    def _get_token(
        self, url: str, params: Sequence[tuple[str, str]], headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """The authenticator's way to a token realm (a ``auth.TokenGet``)."""
        query = urlencode(list(params))
        if query:
            url += ("&" if urlsplit(url).query else "?") + query
        try:
            answer = self._exchange("GET", url, dict(headers))
        except (OSError, http.client.HTTPException) as err:
            raise TokenServerUnreachable(type(err).__name__) from err
        return answer.status, answer.body

    def _exchange(self, method: str, url: str, headers: dict[str, str]) -> _Answer:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self._declined(f"{parts.scheme}: URLs are not read here")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        origin = f"{parts.scheme}://{parts.netloc}"
        connection = self._take(parts.scheme, parts.netloc)
        try:
            connection.request(method, target, headers=headers)
            response = connection.getresponse()
            body = response.read(MAX_DOCUMENT_BYTES + 1)
        except BaseException:
            connection.close()
            raise
        if response.will_close or not response.isclosed():
            connection.close()  # the server's last answer, or a body left unread
        with self._lock:
            # Closed or not: http.client opens a closed connection again at its next request.
            self._idle.setdefault(origin, []).append(connection)
        if len(body) > MAX_DOCUMENT_BYTES:
            raise self._declined(f"{method} {parts.path}: more than {MAX_DOCUMENT_BYTES} bytes")
        return _Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, bytes(body)
        )

    def _take(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        """A connection to ``scheme://netloc`` that no other request is using."""
        with self._lock:
            idle = self._idle.get(f"{scheme}://{netloc}")
            if idle:
                return idle.pop()
            if scheme != "https":
                return http.client.HTTPConnection(netloc, timeout=_TIMEOUT)
            if self._tls is None:
                from crossdock.tls import system_ssl_context

                self._tls = system_ssl_context()
            return http.client.HTTPSConnection(netloc, timeout=_TIMEOUT, context=self._tls)

    # -- checks ----------------------------------------------------------------------------

    def _expect(self, answer: _Answer, status: int) -> None:
        if answer.status != status:
            raise self._declined(f"answered {answer.status}")

    def _manifest_type(self, answer: _Answer) -> str:
        if answer.content_type not in MANIFEST_CONTENT_TYPES:
            raise self._declined(
                f"answered {answer.content_type or 'no content type'}, not a manifest"
            )
        return answer.content_type

    def _repository(self, ref: Reference) -> str:
        if ref.registry != self.registry:
            raise self._declined(f"{ref} is not on {self.registry}")
        return ref.repository

    def _declined(self, why: str) -> DeclinedError:
        return DeclinedError(f"registry {self.registry}: {why}")


def _header_digest(answer: _Answer) -> Digest | None:
    value = answer.header("docker-content-digest").strip()
    if not value:
        return None
    try:
        return Digest(value)
    except ValueError:
        return None
