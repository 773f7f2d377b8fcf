"""OCI 1.1 referrers: artifacts (an SBOM, a signature) that point at an image through their
manifest's ``subject``, so the image itself, and any index over it, stays exactly as it was.

Lambda refuses an index, so anything stored *inside* an index (BuildKit's attestations) makes a
Lambda image unusable; a referrer lives beside the image and changes none of its bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.manifest import Manifest
from crossdock.image.mediatypes import MediaType

__all__ = ["EMPTY_CONFIG", "Referrer", "fallback_tag", "make_referrer"]

# image-spec manifest.md: artifacts without a config use this two-byte blob.
EMPTY_CONFIG = b"{}"


@dataclass(frozen=True)
class Referrer:
    """An artifact manifest and its (small) blobs, held in memory: the empty config and the
    artifact's content."""

    manifest: Manifest
    blobs: tuple[tuple[Descriptor, bytes], ...]

    @property
    def digest(self) -> Digest:
        return self.manifest.digest

    @property
    def artifact_type(self) -> str:
        return self.manifest.artifact_type or ""

    @property
    def subject(self) -> Descriptor:
        if self.manifest.subject is None:  # make_referrer always sets it
            raise ValueError(f"artifact {self.digest} has no subject")
        return self.manifest.subject

    def content(self) -> bytes:
        """The artifact's own bytes (its one layer)."""
        return self.blobs[-1][1]


def make_referrer(
    subject: Descriptor,
    artifact_type: str,
    media_type: str,
    content: bytes,
    annotations: Mapping[str, str] | None = None,
) -> Referrer:
    """An artifact of one blob that refers to ``subject`` (media type, digest, size only)."""
    config = Descriptor(MediaType.OCI_EMPTY, sha256_of(EMPTY_CONFIG), len(EMPTY_CONFIG))
    layer = Descriptor(media_type, sha256_of(content), len(content))
    manifest = Manifest.build(
        MediaType.OCI_MANIFEST,
        config,
        [layer],
        annotations,
        artifact_type=artifact_type,
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
    )
    return Referrer(manifest, ((config, EMPTY_CONFIG), (layer, content)))


def fallback_tag(subject: Digest) -> str:
    """The referrers tag schema (distribution-spec 1.1): where a registry without the referrers
    API keeps the index of ``subject``'s referrers, e.g. ``sha256-0123...``."""
    return subject.dashed
