"""Blob upload sessions (OCI distribution spec, "Pushing blobs").

A session starts with ``POST /v2/<name>/blobs/uploads/`` (optionally ``?mount=<digest>&from=
<repo>``: a cross-repository mount, answered ``201`` when the registry linked the blob, or
``202`` with an ordinary session when it would not). The bytes then go either

* monolithic: one ``PUT <location>&digest=<digest>`` with the whole blob, or
* chunked: ``PATCH <location>`` per chunk with ``Content-Range: start-end``, each answer giving
  the next location, then ``PUT <location>&digest=<digest>`` with no body.

Pitfalls handled here: the ``Location`` may be relative or absolute and usually already has a
query string (``_state=...``) that must be kept (``digest`` is appended, never replaced); ECR has
dropped chunks after the first (aws/containers-roadmap#2831), so ECR uploads are monolithic.

Where registries differ (OCI distribution spec 1.1):

* a mount may be answered ``202`` (the registry would not mount): the blob is then uploaded in
  the session that answer opened;
* a registry may announce ``OCI-Chunk-Min-Length`` when the session opens: every chunk but the
  last is at least that long;
* a chunk that failed is resumed where the registry says the upload stands (``GET <location>``
  answers ``204`` with ``Range: 0-<last byte>``), instead of starting the blob again; a
  registry that cannot say leaves the retry of the whole upload to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from crossdock.errors import RegistryError
from crossdock.image.digest import Digest
from crossdock.registry.auth import pull_scope, push_scope
from crossdock.registry.responses import error_for_response
from crossdock.registry.transport import Body, TransientRegistryError, Transport

__all__ = ["UploadMode", "UploadSession", "file_body", "start_upload", "with_digest_query"]

_log = logging.getLogger(__name__)

# Reads from disk in pieces this size, so memory stays flat whatever the layer's size.
_READ_SIZE = 1024 * 1024
_OCTET_STREAM = "application/octet-stream"
# A chunk that failed is resumed at most this many times per upload before giving up on it.
_MAX_RESUMES = 3


class UploadMode(StrEnum):
    MONOLITHIC = "monolithic"
    CHUNKED = "chunked"


def with_digest_query(location: str, digest: Digest) -> str:
    """``location`` with ``digest=<digest>`` added to its query, keeping what is there.

    The existing query is kept byte for byte (registries put opaque state in it).
    """
    parts = urlsplit(location)
    added = "digest=" + quote(str(digest), safe="")
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def file_body(
    path: Path,
    offset: int = 0,
    length: int | None = None,
    *,
    on_bytes: Callable[[int], object] | None = None,
) -> Callable[[], Iterator[bytes]]:
    """A body factory streaming ``length`` bytes of ``path`` from ``offset`` (to the end);
    ``on_bytes`` hears of each piece as it is handed to the connection (progress)."""

    def chunks() -> Iterator[bytes]:
        remaining = length
        with path.open("rb") as handle:
            handle.seek(offset)
            while remaining is None or remaining > 0:
                piece = handle.read(_READ_SIZE if remaining is None else min(_READ_SIZE, remaining))
                if not piece:
                    return
                if remaining is not None:
                    remaining -= len(piece)
                yield piece
                if on_bytes is not None:
                    on_bytes(len(piece))

    return chunks


class _OutOfStepError(TransientRegistryError):
    """416 to a chunk: the registry holds a different number of bytes than the client sent.
    Transient: a resume, or a new upload session, gets back in step."""


@dataclass(frozen=True)
class UploadSession:
    """An open upload session on ``repository`` at ``location`` (None: the blob was mounted)."""

    transport: Transport
    repository: str
    location: str | None
    ecr: bool = False
    # OCI-Chunk-Min-Length from the registry: no chunk but the last may be shorter.
    chunk_min_length: int = 0

    @property
    def mounted(self) -> bool:
        return self.location is None

    def put_whole(self, digest: Digest, size: int, body: Body) -> None:
        """Send the whole blob in one PUT and close the session."""
        self._finish(self._location(), digest, size, body)

    def put_chunked(
        self,
        digest: Digest,
        path: Path,
        size: int,
        chunk_size: int,
        *,
        on_bytes: Callable[[int], object] | None = None,
    ) -> None:
        """Send ``path`` in PATCH requests of ``chunk_size`` bytes (at least the registry's
        minimum), resuming a failed chunk where the registry says it stands; then close.
        ``on_bytes`` hears of the bytes sent (progress)."""
        chunk_size = max(chunk_size, self.chunk_min_length)
        location = self._location()
        offset = 0
        resumes = 0
        failed = 0  # chunks sent and failed: what the error counts as this upload's attempts
        while offset < size:
            length = min(chunk_size, size - offset)
            try:
                location, offset = self._patch(
                    location, path, offset, length, digest, on_bytes=on_bytes
                )
            except TransientRegistryError as failure:
                resumes += 1
                failed += failure.attempts
                position = self._position(location) if resumes <= _MAX_RESUMES else None
                if position is None:
                    failure.gave_up_after(failed)
                    raise
                location, offset = position
                _log.debug("resuming blob %s at byte %d (%s)", digest, offset, failure.message)
        self._finish(location, digest, 0, b"")

    def cancel(self) -> bool:
        """End the session without a blob (``DELETE <location>``, the spec's "canceling an
        upload"); whether the registry did. Registries that cannot cancel (405, or no answer)
        drop stale sessions themselves, so a refusal is not an error."""
        if self.location is None:
            return False
        try:
            response = self.transport.request(
                "DELETE", self.location, scopes=[push_scope(self.repository)], retry=False
            )
        except RegistryError as err:
            _log.debug("the upload session on %s was not cancelled: %s", self.repository, err)
            return False
        return response.status_code in (200, 202, 204)

    def _patch(
        self,
        location: str,
        path: Path,
        offset: int,
        length: int,
        digest: Digest,
        *,
        on_bytes: Callable[[int], object] | None = None,
    ) -> tuple[str, int]:
        """One chunk; returns the next location and where the upload stands after it."""
        response = self.transport.request(
            "PATCH",
            location,
            scopes=[push_scope(self.repository)],
            headers={
                "Content-Type": _OCTET_STREAM,
                "Content-Length": str(length),
                "Content-Range": f"{offset}-{offset + length - 1}",
            },
            body=file_body(path, offset, length, on_bytes=on_bytes),
            retry=False,
        )
        if response.status_code == 416:
            raise _OutOfStepError(
                f"registry {self.transport.registry} refused the chunk at byte {offset} of blob "
                f"{digest}: the upload does not stand there"
            )
        if response.status_code != 202:
            raise self._error(response, f"upload a chunk of blob {digest}")
        next_location = _next_location(self.transport, self.repository, response)
        # The registry says how much it holds; a short write is resumed from there. ("0-0"
        # after a one-byte chunk is the ambiguous case: trust the count of bytes sent.)
        sent = offset + length
        received = _received(response.headers.get("range"))
        return next_location, sent if not received else min(received, sent)

    def _position(self, location: str) -> tuple[str, int] | None:
        """Where an upload stands (``GET <location>``), or None when the registry cannot say."""
        try:
            response = self.transport.request(
                "GET", location, scopes=[push_scope(self.repository)], retry=False
            )
        except RegistryError:
            return None
        received = _received(response.headers.get("range"))
        if response.status_code != 204 or received is None:
            return None
        return _next_location(self.transport, self.repository, response), received

    def _finish(self, location: str, digest: Digest, size: int, body: Body) -> None:
        response = self.transport.request(
            "PUT",
            with_digest_query(location, digest),
            scopes=[push_scope(self.repository)],
            headers={"Content-Type": _OCTET_STREAM, "Content-Length": str(size)},
            body=body,
            retry=False,
        )
        if response.status_code != 201:
            raise self._error(response, f"upload blob {digest}")

    def _location(self) -> str:
        if self.location is None:
            raise RegistryError("internal: the blob was mounted; there is no session to upload to")
        return self.location

    def _error(self, response: httpx.Response, action: str) -> RegistryError:
        return error_for_response(
            response,
            registry=self.transport.registry,
            repository=self.repository,
            action=action,
            ecr=self.ecr,
        )


def _received(value: str | None) -> int | None:
    """How many bytes an upload holds, from its ``Range: 0-<last byte>`` header.

    distribution answers ``0-0`` for an empty upload too (it never says ``0--1``); taking it as
    empty is safe: a registry holding one byte refuses a chunk from 0 and the upload restarts.
    """
    if not value:
        return None
    start, dash, end = value.strip().removeprefix("bytes=").partition("-")
    if not dash or not start.isdigit() or not end.isdigit() or int(start) != 0:
        return None
    return 0 if int(end) == 0 else int(end) + 1


def _next_location(transport: Transport, repository: str, response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        raise RegistryError(
            f"registry {transport.registry} gave no Location for an upload session on {repository}",
            hint="the registry does not follow the OCI distribution spec here",
        )
    # Relative locations are relative to the request; keep them absolute from here on.
    return str(response.url.join(location))


def start_upload(
    transport: Transport,
    repository: str,
    *,
    mount: tuple[Digest, str] | None = None,
    ecr: bool = False,
) -> UploadSession:
    """Open an upload session, or mount ``mount = (digest, source repository)`` instead."""
    path = f"/v2/{repository}/blobs/uploads/"
    scopes = [push_scope(repository)]
    if mount is not None:
        digest, source = mount
        path += f"?mount={quote(str(digest), safe='')}&from={quote(source, safe='/')}"
        scopes.append(pull_scope(source))
    response = transport.request(
        "POST", path, scopes=scopes, headers={"Content-Length": "0"}, retry=False
    )
    if mount is not None and response.status_code == 201:
        return UploadSession(transport, repository, None, ecr)
    if response.status_code != 202:
        raise error_for_response(
            response,
            registry=transport.registry,
            repository=repository,
            action="start a blob upload",
            ecr=ecr,
        )
    return UploadSession(
        transport,
        repository,
        _next_location(transport, repository, response),
        ecr,
        chunk_min_length=_chunk_min_length(response),
    )


def _chunk_min_length(response: httpx.Response) -> int:
    value = response.headers.get("oci-chunk-min-length", "").strip()
    return int(value) if value.isdigit() else 0
