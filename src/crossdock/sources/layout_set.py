"""Reading back what ``crossdock build --oci-layout DIR`` wrote, as an ``ImageSet`` to push.

A push needs more than ``crossdock verify``'s loader keeps (``verify.sources`` reads configs and
layer files for checking): the exact manifest and index bytes, so the pushed digests are the
built ones. Every blob is checked against its digest and size before it is used, because a
layout folder is outside data that may have been changed since it was written.

Accepted shapes of ``index.json`` (the two crossdock writes):

* one entry that is an image index (a multi-platform build): the index and its children;
* one or more single-platform manifests (Lambda: no index), each with its platform.

A layout holding several indexes (several builds written into one folder) is refused unless a
tag (``org.opencontainers.image.ref.name``) selects one.
"""

from __future__ import annotations

from pathlib import Path

from crossdock.errors import ConfigError, UnsafeContentError
from crossdock.image.artifact import BlobSource, ImageSet, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.manifest import Index, Manifest, parse_manifest_or_index
from crossdock.image.referrer import Referrer
from crossdock.platform import Platform
from crossdock.sources.oci_layout import (
    REF_NAME,
    read_bounded,
    read_layout_blob,
    verified_layout_file,
)

__all__ = ["REF_NAME", "load_layout_image_set"]


def load_layout_image_set(root: Path, *, tag: str | None = None) -> ImageSet:
    """The images in the OCI layout ``root`` (optionally only those whose ref name is ``tag``
    or ``tag-ARCH``), with every blob verified."""
    index_path = root / "index.json"
    if not (root / "oci-layout").is_file() or not index_path.is_file():
        raise ConfigError(
            f"{root} is not an OCI image layout (no oci-layout / index.json)",
            hint="write one with `crossdock build --oci-layout DIR`",
        )
    listed = Index.parse(read_bounded(index_path)).manifests
    # Artifacts (SBOMs) are not images: they travel with the image their subject names.
    artifacts = [e for e in listed if e.artifact_type is not None]
    entries = [e for e in listed if e.artifact_type is None]
    if tag is not None:
        entries = [e for e in entries if _selected(e, tag)]
        if not entries:
            raise ConfigError(
                f"{root} has no image tagged {tag!r} (nor {tag}-ARCH)",
                hint="the names are in index.json (org.opencontainers.image.ref.name)",
            )
    documents = [
        (e, parse_manifest_or_index(read_layout_blob(root, e), e.media_type)) for e in entries
    ]
    indexes = [d for _, d in documents if isinstance(d, Index)]
    if indexes:
        if len(documents) != 1:
            raise ConfigError(
                f"{root} holds {len(documents)} top-level entries, including an index; "
                "crossdock pushes one build at a time",
                hint="select one with --tag (the name in index.json), or write each build "
                "to its own folder",
            )
        index = indexes[0]
        images = tuple(_image(root, child, artifacts) for child in index.manifests)
        return ImageSet(images, index)
    images = tuple(_image(root, e, artifacts) for e in entries)
    platforms = [image.platform for image in images]
    if len(set(platforms)) != len(platforms):
        raise ConfigError(
            f"{root} holds several images for one platform",
            hint="select one build with --tag (the name in index.json)",
        )
    return ImageSet(images, None)


def _selected(entry: Descriptor, tag: str) -> bool:
    name = entry.annotations.get(REF_NAME, "")
    return name == tag or (name.startswith(f"{tag}-") and entry.platform is not None)


def _referrers(root: Path, subject: Manifest, artifacts: list[Descriptor]) -> tuple[Referrer, ...]:
    """The layout's artifacts whose subject is ``subject``, blobs verified."""
    found: list[Referrer] = []
    for descriptor in artifacts:
        document = parse_manifest_or_index(
            read_layout_blob(root, descriptor), descriptor.media_type
        )
        if not isinstance(document, Manifest) or document.subject is None:
            continue
        if document.subject.digest != subject.digest:
            continue
        blobs = tuple(
            (blob, read_layout_blob(root, blob)) for blob in (document.config, *document.layers)
        )
        found.append(Referrer(document, blobs))
    return tuple(found)


def _image(root: Path, descriptor: Descriptor, artifacts: list[Descriptor]) -> PlatformImage:
    if descriptor.platform is not None and descriptor.platform.os == "unknown":
        raise ConfigError(
            f"{root} contains an attestation manifest ({descriptor.digest}); crossdock pushes "
            "only the images it builds",
            hint="push layouts written by `crossdock build --oci-layout`",
        )
    document = parse_manifest_or_index(read_layout_blob(root, descriptor), descriptor.media_type)
    if not isinstance(document, Manifest):
        raise ConfigError(f"{root}: {descriptor.digest} is a nested index; not supported")
    config_raw = read_layout_blob(root, document.config)
    config = ImageConfig.parse(config_raw)
    platform = descriptor.platform or config.platform
    if platform.architecture != config.platform.architecture:
        raise UnsafeContentError(
            f"{root}: manifest {descriptor.digest} is listed as {platform} but its config says "
            f"{config.platform}",
            hint="the layout is inconsistent; build it again",
        )
    layers = tuple(
        BlobSource(layer, verified_layout_file(root, layer)) for layer in document.layers
    )
    return PlatformImage(
        Platform.parse(str(platform)),
        document,
        config,
        layers,
        _referrers(root, document, artifacts),
    )
