"""Attaching artifacts to images as OCI 1.1 referrers, and finding them again.

A registry with the referrers API (distribution-spec 1.1) indexes an artifact by its manifest's
``subject`` when the manifest is pushed. One without it (distribution 2.8, the stage's registry;
many mirrors) gets the referrers tag schema instead: the tag ``sha256-<hex of the subject>``
holds an image index listing the subject's referrers, which the pusher reads, extends and writes
back. Readers try the API first and fall back to that tag, as oras, cosign and skopeo do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from crossdock.errors import NotFoundError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.manifest import Index
from crossdock.image.mediatypes import MediaType
from crossdock.image.referrer import Referrer, fallback_tag
from crossdock.registry.reference import Reference

if TYPE_CHECKING:
    from crossdock.registry.access import RegistryAccess

__all__ = ["attach_referrer", "list_referrers"]

AttachedVia = Literal["api", "tag"]


def attach_referrer(
    client: RegistryAccess, repository: Reference, referrer: Referrer
) -> AttachedVia:
    """Push ``referrer`` (blobs, then its manifest by digest) next to its subject, which must
    already be in ``repository``; keep the fallback tag's index up to date when the registry
    has no referrers API. Returns which of the two now lists it."""
    target = Reference(repository.registry, repository.repository)
    for _, data in referrer.blobs:
        client.upload_blob_bytes(target, data)
    manifest = referrer.manifest
    if client.head_manifest(target.with_digest(referrer.digest)) is None:
        client.put_manifest(target, manifest.raw, manifest.media_type, referrer.digest)
    if client.referrers(target, referrer.subject.digest) is not None:
        return "api"
    tag = fallback_tag(referrer.subject.digest)
    existing = _fallback_index(client, target, referrer.subject.digest)
    entries = [d for d in existing if d.digest != referrer.digest]
    entries.append(manifest.descriptor())
    index = Index.build(MediaType.OCI_INDEX, entries)
    if [d.digest for d in existing] != [d.digest for d in entries]:
        client.put_manifest(target, index.raw, index.media_type, tag)
    return "tag"


def list_referrers(
    client: RegistryAccess,
    repository: Reference,
    subject: Digest,
    artifact_type: str | None = None,
) -> tuple[Descriptor, ...]:
    """The referrers of ``subject`` (of ``artifact_type`` only, when given): from the API when
    the registry has it, else from the fallback tag (none when neither exists)."""
    index = client.referrers(repository, subject)
    found = index.manifests if index is not None else _fallback_index(client, repository, subject)
    return tuple(d for d in found if artifact_type is None or d.artifact_type == artifact_type)


def _fallback_index(
    client: RegistryAccess, repository: Reference, subject: Digest
) -> tuple[Descriptor, ...]:
    try:
        document = client.get_manifest(repository.with_tag(fallback_tag(subject)))
    except NotFoundError:
        return ()
    return document.manifests if isinstance(document, Index) else ()
