"""A client for one OCI registry: manifests and blobs, pulled verified and pushed exactly.

* Pulls verify every digest: a manifest fetched by digest must hash to it, a blob is hashed
  while it streams to disk and only renamed into place when size and digest match.
* Pushes send bytes as they are: manifests are PUT as the exact bytes given (their digest is the
  digest of those bytes), blobs are streamed from files.
* Uploads HEAD first and skip blobs already there; a blob known to live in another repository of
  the same registry is mounted instead of uploaded.

One ``RegistryClient`` talks to one registry host; it is safe to share between threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx

from crossdock import scratch
from crossdock.errors import (
    AuthError,
    ConfigError,
    MalformedError,
    RegistryError,
    UnsafeContentError,
)
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.document import MAX_DOCUMENT_BYTES, reading
from crossdock.image.manifest import Index, Manifest, parse_manifest_or_index
from crossdock.image.mediatypes import MediaType
from crossdock.registry.access import MANIFEST_ACCEPT, MANIFEST_CONTENT_TYPES, UploadOutcome
from crossdock.registry.auth import Authenticator, pull_scope, push_scope
from crossdock.registry.credentials import Credentials, find_credentials
from crossdock.registry.ecr import EcrRegistry, ecr_credentials, parse_ecr_host
from crossdock.registry.reference import Reference, api_host
from crossdock.registry.responses import error_for_response, not_a_registry
from crossdock.registry.transport import TransientRegistryError, Transport, retrying
from crossdock.registry.upload import UploadMode, file_body, start_upload

__all__ = ["MANIFEST_ACCEPT", "RegistryClient", "UploadOutcome"]

_log = logging.getLogger(__name__)

# Above this size, non-ECR uploads go in chunks (proxies often cap request bodies).
_DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024
_DOWNLOAD_ATTEMPTS = 3


class RegistryClient:
    """Talks to ``registry`` (``host[:port]``): HTTP for loopback hosts, HTTPS otherwise.

    Credentials: ``credentials`` when given, else those configured for the host (see
    ``crossdock.registry.credentials``), else for ECR a token from the ECR API. ``ecr`` marks
    the registry as ECR when its host name does not say so (tests, private endpoints).
    ``upload_mode`` None chooses: monolithic for ECR, chunked above ``chunk_size`` elsewhere.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        ecr: EcrRegistry | None = None,
        upload_mode: UploadMode | None = None,
        chunk_size: int = _DEFAULT_CHUNK_SIZE,
        environ: Mapping[str, str] | None = None,
        http: httpx.Client | None = None,
        attempts: int = 5,
    ) -> None:
        self.registry = registry
        self.ecr = ecr or parse_ecr_host(registry, environ)
        self.upload_mode = upload_mode
        self.chunk_size = chunk_size
        # Requests go to the host serving the API (Docker Hub: registry-1.docker.io);
        # credentials are still looked up under the registry's name (docker.io's keys).
        self.api_host = api_host(registry)
        self._owns_http = http is None
        self._http = http or Transport.new_http_client()

        def lookup() -> Credentials | None:
            found = credentials or find_credentials(registry, environ)
            if found is None and self.ecr is not None:
                found = ecr_credentials(self.ecr)
            return found

        authenticator = Authenticator(registry, lookup, Transport.token_get(self._http))
        self.transport = Transport(self.api_host, authenticator, self._http, attempts=attempts)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- manifests -------------------------------------------------------------------------

    def get_manifest(self, ref: Reference) -> Manifest | Index:
        """The manifest or index ``ref`` names, verified against ``ref.digest`` when pinned.

        The result keeps the exact bytes received; its ``digest`` is their digest.
        """
        repository = self._repository(ref)
        response = self.transport.request(
            "GET",
            f"/v2/{repository}/manifests/{ref.identifier}",
            scopes=[pull_scope(repository)],
            headers={"Accept": MANIFEST_ACCEPT},
            stream=True,
        )
        with contextlib.closing(response):
            if response.status_code != 200:
                response.read()
                raise self._error(response, repository, f"get manifest {ref.identifier}")
            content_type = self._manifest_content_type(response)
            raw = _read_bounded(response, MAX_DOCUMENT_BYTES, f"manifest {ref}")
        expected = ref.digest or _header_digest(response)
        if expected is not None and not expected.matches(raw):
            raise RegistryError(
                f"manifest {ref} from {self.registry} does not match its digest {expected}",
                hint="the registry or a proxy altered the manifest; do not use this image",
            )
        try:
            return parse_manifest_or_index(raw, content_type)
        except MalformedError as err:
            raise RegistryError(
                f"manifest {ref} from {self.registry} is not an OCI/Docker manifest or index "
                f"({content_type}): {err.message}",
                hint="crossdock reads OCI and Docker schema 2 manifests and indexes",
            ) from err

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        """What ``ref`` points at now (media type, digest, size), or None when it does not exist."""
        repository = self._repository(ref)
        response = self.transport.request(
            "HEAD",
            f"/v2/{repository}/manifests/{ref.identifier}",
            scopes=[pull_scope(repository)],
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error(response, repository, f"check manifest {ref.identifier}")
        digest = _header_digest(response)
        media_type = self._manifest_content_type(response)
        if digest is None:
            # Some registries omit Docker-Content-Digest on HEAD: hash the manifest instead.
            manifest = self.get_manifest(ref)
            return Descriptor(manifest.media_type, manifest.digest, len(manifest.raw))
        size = int(response.headers.get("content-length") or 0)
        return Descriptor(media_type, digest, size)

    def put_manifest(
        self, repository: Reference, raw: bytes, media_type: str, reference: str | Digest
    ) -> Digest:
        """PUT exactly ``raw`` as ``repository:reference`` (tag or digest); returns its digest."""
        name = self._repository(repository)
        digest = sha256_of(raw)
        response = self.transport.request(
            "PUT",
            f"/v2/{name}/manifests/{reference}",
            scopes=[push_scope(name)],
            headers={"Content-Type": media_type},
            body=raw,
        )
        if response.status_code not in (200, 201):
            raise self._error(response, name, f"push manifest {reference}")
        returned = _header_digest(response)
        if returned is not None and returned.algorithm == "sha256" and returned != digest:
            raise RegistryError(
                f"registry {self.registry} stored manifest {reference} under {returned}, "
                f"not under the digest of the bytes sent ({digest})",
                hint="the registry rewrote the manifest; report this registry's behaviour",
            )
        return digest

    def delete_tag(self, ref: Reference) -> None:
        """Remove the tag ``ref`` names, not the manifest it points at (distribution-spec 1.1:
        ``DELETE /v2/<name>/manifests/<tag>``). Many registries refuse it (distribution 2.8
        deletes by digest only, which would take every other tag's manifest along): that
        refusal is raised, and nothing else is tried."""
        if ref.tag is None or ref.digest is not None:
            raise ConfigError(f"{ref}: only a tag is deleted, never a manifest by digest")
        name = self._repository(ref)
        response = self.transport.request(
            "DELETE", f"/v2/{name}/manifests/{ref.tag}", scopes=[push_scope(name)]
        )
        if response.status_code not in (200, 202, 204):
            raise self._error(response, name, f"delete tag {ref.tag}")

    def referrers(self, repository: Reference, subject: Digest) -> Index | None:
        """The referrers API's index of ``subject`` (distribution-spec 1.1), or None when the
        registry has no such API (distribution 2.8 answers 404): then the referrers tag schema
        holds them (``crossdock.registry.referrers``)."""
        name = self._repository(repository)
        response = self.transport.request(
            "GET",
            f"/v2/{name}/referrers/{subject}",
            scopes=[pull_scope(name)],
            headers={"Accept": MediaType.OCI_INDEX},
            stream=True,
        )
        with contextlib.closing(response):
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            if response.status_code != 200 or content_type != MediaType.OCI_INDEX:
                response.read()  # an error's answer, read whole as every other one
                return None
            # Read no further than the bound: the answer is outside data of any announced size.
            what = f"the referrers of {subject} in {self.registry}/{name}"
            raw = _read_bounded(response, MAX_DOCUMENT_BYTES, what)
        with reading(what):
            return Index.parse(raw, MediaType.OCI_INDEX)

    # -- blobs -----------------------------------------------------------------------------

    def blob_exists(self, repository: Reference, digest: Digest) -> bool:
        name = self._repository(repository)
        response = self.transport.request(
            "HEAD", f"/v2/{name}/blobs/{digest}", scopes=[pull_scope(name)]
        )
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._error(response, name, f"check blob {digest}")

    def fetch_blob(
        self,
        repository: Reference,
        descriptor: Descriptor,
        dest: Path,
        *,
        on_bytes: Callable[[int], object] | None = None,
    ) -> Path:
        """Download a blob to ``dest``: streamed to a temporary file next to it, checked against
        the descriptor's size and digest, then renamed into place. Nothing is left on failure.

        A download cut off midway goes on from the bytes already received (``Range``) when the
        registry, or the storage it redirects to, answers with them; else it starts again.
        ``on_bytes`` hears of every chunk received (progress).
        """
        name = self._repository(repository)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _PartialBlob(dest, descriptor.digest.algorithm) as partial:
            # No wall-clock budget (stamina's default is 45 s): a large blob cut off after
            # minutes is resumed like one cut off at once; attempts bound the retrying. Only a
            # cut is retried here: the transport has retried the request itself already.
            retrying(
                lambda: self._download(name, descriptor, partial, on_bytes),
                attempts=_DOWNLOAD_ATTEMPTS,
                on=_is_cut_off,
                registry=self.transport.registry,
                what=f"GET /v2/{name}/blobs/{descriptor.digest}",
            )
            if partial.size != descriptor.size:
                raise self._bad_blob(name, descriptor, f"has {partial.size} bytes, not the size")
            if partial.hexdigest() != descriptor.digest.hex:
                raise self._bad_blob(name, descriptor, "does not match its digest")
            partial.keep_as(dest)
        return dest

    @contextlib.contextmanager
    def _blob_response(
        self, name: str, descriptor: Descriptor, start: int = 0
    ) -> Iterator[httpx.Response]:
        """A streamed GET of a blob, closed after: 200, or 206 when asked from ``start`` > 0 (a
        registry may ignore the Range and answer 200). Anything else raises."""
        headers = {"Range": f"bytes={start}-"} if start else None
        response = self.transport.request(
            "GET",
            f"/v2/{name}/blobs/{descriptor.digest}",
            scopes=[pull_scope(name)],
            headers=headers,
            stream=True,
        )
        with contextlib.closing(response):
            if response.status_code not in ((200, 206) if start else (200,)):
                response.read()
                raise self._error(response, name, f"get blob {descriptor.digest}")
            yield response

    def _download(
        self,
        name: str,
        descriptor: Descriptor,
        partial: _PartialBlob,
        on_bytes: Callable[[int], object] | None = None,
    ) -> None:
        with self._blob_response(name, descriptor, partial.size) as response:
            if response.status_code != 206 or _range_start(response) != partial.size:
                partial.restart()
            elif partial.size:
                _log.debug("resuming blob %s at byte %d", descriptor.digest, partial.size)
            # As the bytes arrive (no re-chunking): what came before a cut is kept.
            for chunk in response.iter_bytes():
                if partial.size + len(chunk) > descriptor.size:
                    raise self._bad_blob(name, descriptor, "is larger than its descriptor")
                partial.write(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))

    def fetch_blob_bytes(
        self, repository: Reference, descriptor: Descriptor, *, limit: int = MAX_DOCUMENT_BYTES
    ) -> bytes:
        """A document blob (an image config; with ``limit=MAX_ARTIFACT_BYTES``, an artifact's
        content such as an SBOM) in memory, verified against its descriptor and bounded by
        ``limit`` (``crossdock.image.document``'s limits)."""
        name = self._repository(repository)
        if descriptor.size > limit:
            raise UnsafeContentError(
                f"blob {descriptor.digest} in {self.registry}/{name} is {descriptor.size} bytes, "
                f"more than the {limit} bytes crossdock reads of such a document",
                hint="it is not an image config or an artifact crossdock wrote; inspect it with "
                "skopeo or oras",
            )
        with self._blob_response(name, descriptor) as response:
            data = _read_bounded(response, descriptor.size, f"blob {descriptor.digest}")
        if len(data) != descriptor.size or not descriptor.digest.matches(data):
            raise self._bad_blob(name, descriptor, "does not match its descriptor")
        return data

    def upload_blob(
        self,
        repository: Reference,
        descriptor: Descriptor,
        path: Path,
        *,
        mount_from: str | None = None,
        on_bytes: Callable[[int], object] | None = None,
    ) -> UploadOutcome:
        """Make the blob in ``path`` present in ``repository``: skip it when it is there already,
        mount it from ``mount_from`` (a repository on this registry) if possible, else upload.
        ``on_bytes`` hears of every chunk sent (progress)."""
        name = self._repository(repository)
        if self.blob_exists(repository, descriptor.digest):
            return "present"
        # The session is retried as a whole (its requests are sent once each).
        return retrying(
            lambda: self._upload(name, descriptor, path, mount_from, on_bytes),
            attempts=self.transport.attempts,
            on=_is_transient,
            registry=self.transport.registry,
            what=f"upload blob {descriptor.digest} to {name}",
        )

    def upload_blob_bytes(self, repository: Reference, data: bytes) -> UploadOutcome:
        """Upload a small blob held in memory (an image config), unless it is there already."""
        name = self._repository(repository)
        digest = sha256_of(data)
        if self.blob_exists(repository, digest):
            return "present"
        retrying(
            lambda: start_upload(self.transport, name, ecr=self.ecr is not None).put_whole(
                digest, len(data), data
            ),
            attempts=self.transport.attempts,
            on=_is_transient,
            registry=self.transport.registry,
            what=f"upload blob {digest} to {name}",
        )
        return "uploaded"

    def check_push_access(self, repository: Reference) -> None:
        """Raise what a push to ``repository`` would meet first, before there is anything to
        push: a host that does not resolve, answer or answer as a registry, a certificate that
        is not trusted (``GET /v2/``), and credentials that are missing or refused for
        ``pull,push`` on the repository (the token exchange, where the registry challenges).

        A token alone proves nothing: token servers give anonymous or read-only accounts a
        token with the actions they may take (pull), not a refusal. So an upload session is
        opened, as a push's first blob opens it, and cancelled at once: nothing is written.
        """
        name = self._repository(repository)
        try:
            # /v2/ with what a push sends: the token for pull,push where the registry challenges.
            answer = self.transport.request("GET", "/v2/", scopes=[push_scope(name)])
            if answer.status_code != 200:
                raise self._error(answer, name, "check access")
            # Retried like an upload: a passing fault must not fail the build it precedes.
            session = retrying(
                lambda: start_upload(self.transport, name, ecr=self.ecr is not None),
                attempts=self.transport.attempts,
                on=_is_transient,
                registry=self.transport.registry,
                what=f"start a blob upload to {name}",
            )
        except AuthError as err:
            if self.transport.auth.found_none:
                raise self.transport.auth.missing_credentials() from err
            raise
        session.cancel()

    def _upload(
        self,
        name: str,
        descriptor: Descriptor,
        path: Path,
        mount_from: str | None,
        on_bytes: Callable[[int], object] | None = None,
    ) -> UploadOutcome:
        mount = (descriptor.digest, mount_from) if mount_from and mount_from != name else None
        session = start_upload(self.transport, name, mount=mount, ecr=self.ecr is not None)
        if session.mounted:
            _log.debug("mounted %s from %s into %s", descriptor.digest, mount_from, name)
            return "mounted"
        _check_size(path, descriptor)
        if self._mode_for(descriptor.size) is UploadMode.CHUNKED:
            session.put_chunked(
                descriptor.digest, path, descriptor.size, self.chunk_size, on_bytes=on_bytes
            )
        else:
            session.put_whole(
                descriptor.digest, descriptor.size, file_body(path, on_bytes=on_bytes)
            )
        return "uploaded"

    def _mode_for(self, size: int) -> UploadMode:
        if self.upload_mode is not None:
            if self.ecr is not None and self.upload_mode is UploadMode.CHUNKED:
                _log.warning("ECR may drop upload chunks; uploading in one piece instead")
                return UploadMode.MONOLITHIC
            return self.upload_mode
        if self.ecr is not None or size <= self.chunk_size:
            return UploadMode.MONOLITHIC
        return UploadMode.CHUNKED

    # -- helpers ---------------------------------------------------------------------------

    def _manifest_content_type(self, response: httpx.Response) -> str:
        """The manifest media type of a 200 answer; anything else is not a registry's answer."""
        content_type = str(response.headers.get("content-type", "")).split(";")[0].strip()
        if content_type not in MANIFEST_CONTENT_TYPES:
            raise not_a_registry(
                self.api_host,
                f"{response.request.method} {response.request.url.copy_with(query=None)} gave "
                f"{content_type or 'no content type'}, not a manifest type",
            )
        return content_type

    def _repository(self, ref: Reference) -> str:
        if ref.registry != self.registry:
            raise ConfigError(
                f"reference {ref} is on registry {ref.registry}, but this client talks to "
                f"{self.registry}",
                hint="use one RegistryClient per registry",
            )
        return ref.repository

    def _error(self, response: httpx.Response, repository: str, action: str) -> RegistryError:
        return error_for_response(
            response,
            registry=self.registry,
            repository=repository,
            action=action,
            ecr=self.ecr is not None,
        )

    def _bad_blob(self, name: str, descriptor: Descriptor, what: str) -> RegistryError:
        return RegistryError(
            f"blob {descriptor.digest} from {self.registry}/{name} {what} "
            f"({descriptor.size} bytes expected); it was not kept",
            hint="the registry served corrupt data; retry, and report it if it persists",
        )


class _PartialBlob:
    """A blob's bytes received so far: a temporary file beside its destination and their hash.
    Removed on exit unless kept."""

    def __init__(self, dest: Path, algorithm: str) -> None:
        handle, self._path = scratch.mkstemp(prefix=".partial-", dir=dest.parent)
        self._file = os.fdopen(handle, "wb")
        self._algorithm = algorithm
        self._hasher = hashlib.new(algorithm)
        self.size = 0
        self._kept = False

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hasher.update(chunk)
        self.size += len(chunk)

    def restart(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._hasher = hashlib.new(self._algorithm)
        self.size = 0

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def keep_as(self, dest: Path) -> None:
        self._file.close()
        self._path.replace(dest)
        self._kept = True
        scratch.forget(self._path)

    def __enter__(self) -> _PartialBlob:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._file.close()
        # Once kept, the partial name is free: another download in the folder may have taken
        # it since, and its file is not this one's to remove.
        if not self._kept:
            self._path.unlink(missing_ok=True)
            scratch.forget(self._path)


def _range_start(response: httpx.Response) -> int | None:
    """Where a 206 answer's ``Content-Range: bytes START-END/SIZE`` starts."""
    value = response.headers.get("content-range", "")
    unit, _, rest = value.partition(" ")
    start = rest.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


def _is_transient(error: Exception) -> bool:
    return isinstance(error, TransientRegistryError | httpx.TransportError)


def _is_cut_off(error: Exception) -> bool:
    """A download broken off mid-body (the request itself was retried by the transport)."""
    return isinstance(error, httpx.TransportError)


def _check_size(path: Path, descriptor: Descriptor) -> None:
    try:
        actual_size = path.stat().st_size
    except FileNotFoundError as err:
        raise RegistryError(
            f"cannot upload blob {descriptor.digest}: {path} does not exist",
            hint="the build's blob files were removed; rebuild the image",
        ) from err
    if actual_size != descriptor.size:
        raise RegistryError(
            f"cannot upload blob {descriptor.digest}: {path} has {actual_size} bytes, "
            f"its descriptor says {descriptor.size}",
            hint="the local file changed or is truncated; rebuild the image",
        )


def _header_digest(response: httpx.Response) -> Digest | None:
    value = response.headers.get("docker-content-digest")
    if not value:
        return None
    try:
        return Digest(value.strip())
    except ValueError:
        return None


def _read_bounded(response: httpx.Response, limit: int, what: str) -> bytes:
    """The response body, refusing to read more than ``limit`` bytes of it."""
    parts: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > limit:
            raise RegistryError(
                f"{what} is larger than {limit} bytes; refusing to read it",
                hint="the registry sent more than the descriptor announced",
            )
        parts.append(chunk)
    return b"".join(parts)
