"""What a push asks of a registry, whichever HTTP stack asks it: the full client
(``client.RegistryClient``: httpx, retries, uploads) or the light one (``light.LightClient``:
the standard library, reads only). ``sinks.registry.push_image_set``, ``referrers`` and
``publish.release.run_release`` take either, so a push that would write nothing is found to be
one by the same code that pushes (issue 14)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

from crossdock.image.mediatypes import MediaType

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from crossdock.image.descriptor import Descriptor
    from crossdock.image.digest import Digest
    from crossdock.image.manifest import Index, Manifest
    from crossdock.registry.ecr import EcrRegistry
    from crossdock.registry.reference import Reference

__all__ = ["MANIFEST_ACCEPT", "MANIFEST_CONTENT_TYPES", "RegistryAccess", "UploadOutcome"]

UploadOutcome = Literal["present", "mounted", "uploaded"]

_MANIFEST_TYPES_ASKED = (
    MediaType.OCI_INDEX,
    MediaType.OCI_MANIFEST,
    MediaType.DOCKER_MANIFEST_LIST,
    MediaType.DOCKER_MANIFEST,
)
MANIFEST_ACCEPT = ", ".join(_MANIFEST_TYPES_ASKED)
# What a registry may answer a manifest request with: the types asked for, and Docker's schema 1
# (refused later, with its own message). Anything else is not a manifest.
MANIFEST_CONTENT_TYPES = frozenset(
    {
        *_MANIFEST_TYPES_ASKED,
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)


class RegistryAccess(Protocol):
    """One registry host, as a push uses it."""

    @property
    def registry(self) -> str: ...

    @property
    def ecr(self) -> EcrRegistry | None: ...

    def get_manifest(self, ref: Reference) -> Manifest | Index: ...

    def head_manifest(self, ref: Reference) -> Descriptor | None: ...

    def put_manifest(
        self, repository: Reference, raw: bytes, media_type: str, reference: str | Digest
    ) -> Digest: ...

    def referrers(self, repository: Reference, subject: Digest) -> Index | None: ...

    def upload_blob(
        self,
        repository: Reference,
        descriptor: Descriptor,
        path: Path,
        *,
        mount_from: str | None = None,
        on_bytes: Callable[[int], object] | None = None,
    ) -> UploadOutcome: ...

    def upload_blob_bytes(self, repository: Reference, data: bytes) -> UploadOutcome: ...

    def close(self) -> None: ...
