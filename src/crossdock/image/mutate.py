"""New images from old ones, as go-containerregistry's ``mutate`` package does it: append
layers, change the config, set the manifest's annotations, put manifests under an index.

Pure: values in, values out, nothing read or written. Every result is typed like the image it
came from (an OCI base gives OCI manifests and configs, a Docker one Docker types), and its
manifest is rebuilt from the new config and layers, so digests always match the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from crossdock.image.artifact import BlobSource, PlatformImage
from crossdock.image.config import HistoryEntry, ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.manifest import Index, Manifest
from crossdock.image.mediatypes import MediaType, family_of

__all__ = ["Addendum", "append_layers", "index_of", "with_annotations", "with_config"]


@dataclass(frozen=True)
class Addendum:
    """A layer to append: its gzip-compressed blob, the digest of the uncompressed tar (the
    config's diff_id) and the config's history entry for it."""

    blob: BlobSource
    diff_id: Digest
    history: HistoryEntry


def append_layers(image: PlatformImage, addenda: Sequence[Addendum]) -> PlatformImage:
    """``image`` with ``addenda`` on top: layer descriptors typed as the image's family's gzip
    layers, diff_ids and history appended to the config."""
    family = family_of(image.manifest.media_type)
    config = image.config.with_changes(append_layers=[(a.diff_id, a.history) for a in addenda])
    layers = (
        *image.layers,
        *(
            replace(a.blob, descriptor=_typed(a.blob.descriptor, family.layer_gzip))
            for a in addenda
        ),
    )
    return _rebuilt(image, config, layers, image.manifest.annotations)


def with_config(image: PlatformImage, config: ImageConfig) -> PlatformImage:
    """``image`` with another config (same layers: the config's diff_ids must name them)."""
    return _rebuilt(image, config, image.layers, image.manifest.annotations)


def with_annotations(image: PlatformImage, annotations: Mapping[str, str]) -> PlatformImage:
    """``image`` whose manifest carries exactly ``annotations`` (none are inherited: a base's
    annotations describe the base, not what is built on it). Docker manifests have none."""
    return _rebuilt(image, image.config, image.layers, annotations)


def index_of(
    images: Sequence[PlatformImage], annotations: Mapping[str, str] | None = None
) -> Index:
    """The index over ``images``, in their order, each entry naming its platform.

    Docker manifests (what dockerd pushes, what Docker-typed bases give) go in a Docker
    manifest list, anything else in an OCI index: registries and runtimes accept both, a mix
    is what some reject."""
    docker = all(image.manifest.media_type == MediaType.DOCKER_MANIFEST for image in images)
    media_type = MediaType.DOCKER_MANIFEST_LIST if docker else MediaType.OCI_INDEX
    return Index.build(
        media_type,
        [image.manifest.descriptor(image.platform) for image in images],
        annotations=annotations,
    )


def _typed(descriptor: Descriptor, media_type: str) -> Descriptor:
    return Descriptor(media_type, descriptor.digest, descriptor.size)


def _rebuilt(
    image: PlatformImage,
    config: ImageConfig,
    layers: tuple[BlobSource, ...],
    annotations: Mapping[str, str],
) -> PlatformImage:
    family = family_of(image.manifest.media_type)
    manifest = Manifest.build(
        family.manifest,
        Descriptor(family.config, config.digest, len(config.raw)),
        [layer.descriptor for layer in layers],
        annotations=annotations,
    )
    return PlatformImage(image.platform, manifest, config, layers)
