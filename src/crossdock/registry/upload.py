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
"""

from __future__ import annotations

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
from crossdock.registry.transport import Body, Transport

__all__ = ["UploadMode", "UploadSession", "file_body", "start_upload", "with_digest_query"]

# Reads from disk in pieces this size, so memory stays flat whatever the layer's size.
_READ_SIZE = 1024 * 1024
_OCTET_STREAM = "application/octet-stream"


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
    path: Path, offset: int = 0, length: int | None = None
) -> Callable[[], Iterator[bytes]]:
    """A body factory streaming ``length`` bytes of ``path`` from ``offset`` (to the end)."""

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

    return chunks


@dataclass(frozen=True)
class UploadSession:
    """An open upload session on ``repository`` at ``location`` (None: the blob was mounted)."""

    transport: Transport
    repository: str
    location: str | None
    ecr: bool = False

    @property
    def mounted(self) -> bool:
        return self.location is None

    def put_whole(self, digest: Digest, size: int, body: Body) -> None:
        """Send the whole blob in one PUT and close the session."""
        self._finish(self._location(), digest, size, body)

    def put_chunked(self, digest: Digest, path: Path, size: int, chunk_size: int) -> None:
        """Send ``path`` in PATCH requests of ``chunk_size`` bytes, then close the session."""
        location = self._location()
        offset = 0
        while offset < size:
            length = min(chunk_size, size - offset)
            response = self.transport.request(
                "PATCH",
                location,
                scopes=[push_scope(self.repository)],
                headers={
                    "Content-Type": _OCTET_STREAM,
                    "Content-Length": str(length),
                    "Content-Range": f"{offset}-{offset + length - 1}",
                },
                body=file_body(path, offset, length),
                retry=False,
            )
            if response.status_code != 202:
                raise self._error(response, f"upload a chunk of blob {digest}")
            location = _next_location(self.transport, self.repository, response)
            offset += length
        self._finish(location, digest, 0, b"")

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
        transport, repository, _next_location(transport, repository, response), ecr
    )
