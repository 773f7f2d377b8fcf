"""What a build produces, before it is written anywhere: manifests and configs as exact bytes,
and for every blob the descriptor plus where its bytes can be read from.

Every output (a registry push, an OCI layout, a ``docker load`` tarball) consumes these values,
so the three outputs cannot disagree about digests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crossdock.image.config import ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.manifest import Index, Manifest
from crossdock.image.referrer import Referrer
from crossdock.platform import Platform

__all__ = ["BlobSource", "ImageSet", "PlatformImage"]


@dataclass(frozen=True)
class BlobSource:
    """A blob and the local file holding its bytes (a layer, or a cached base layer).

    ``origin`` names the repository it came from (e.g. ``127.0.0.1:5555/library/python``), so a
    registry push can mount it instead of uploading when both live on the same registry.
    """

    descriptor: Descriptor
    path: Path
    origin: str | None = None


@dataclass(frozen=True)
class PlatformImage:
    """One single-platform image: manifest, config and every layer blob."""

    platform: Platform
    manifest: Manifest
    config: ImageConfig
    layers: tuple[BlobSource, ...]
    # Artifacts whose subject is this image (its SBOM): pushed and written beside it, never
    # inside an index.
    referrers: tuple[Referrer, ...] = ()
    # How a source reached this image (go-containerregistry's partial.Describable): the entry of
    # the index, or of an OCI layout's index.json, or of a docker save tarball, that lists it.
    # Its platform is what that entry claims (checked against the config by verify); None for a
    # built image or one a reference names directly.
    listed: Descriptor | None = None

    @property
    def digest(self) -> Digest:
        return self.manifest.digest

    def config_descriptor(self) -> Descriptor:
        return self.manifest.config


@dataclass(frozen=True)
class ImageSet:
    """The images of one build: one per platform, and the index over them (None when the
    target wants single manifests only, as Lambda does)."""

    images: tuple[PlatformImage, ...]
    index: Index | None

    def image_for(self, platform: Platform) -> PlatformImage:
        for image in self.images:
            if image.platform == platform:
                return image
        raise KeyError(str(platform))

    def blobs(self) -> Iterator[BlobSource]:
        """Every layer blob once, in a stable order (configs are bytes in ``PlatformImage``)."""
        seen: set[Digest] = set()
        for image in self.images:
            for blob in image.layers:
                if blob.descriptor.digest not in seen:
                    seen.add(blob.descriptor.digest)
                    yield blob
