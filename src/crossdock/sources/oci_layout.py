"""OCI image layouts (``oci:DIR[:TAG]``, image-spec image-layout.md) and tars of one
(``oci-archive:FILE[:TAG]``), as go-containerregistry's ``layout`` package reads them. A layout
folder is outside data that may have changed since it was written, so every blob is checked
against its descriptor's digest and size before anyone uses it.

Two views of one reader:

* ``read_oci_layout``: every image the layout holds (``crossdock verify``), grouped by the index
  that lists it; attestations and artifacts are skipped, indexes may nest;
* ``read_oci_build``: the one build ``crossdock push`` sends again, with its exact manifest and
  index bytes and its artifacts (SBOMs) as referrers. Accepted shapes of ``index.json`` (the two
  crossdock writes): one entry that is an image index (a multi-platform build), or one or more
  single-platform manifests (Lambda: no index), each with its platform. A layout holding several
  indexes (several builds written into one folder) is refused unless a tag selects one.

A tag selects the entries of ``index.json`` whose ref name (``org.opencontainers.image.ref.name``)
is TAG, or TAG-ARCH for a single-platform manifest (the names crossdock writes for Lambda).
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path

from crossdock.cache import file_digest
from crossdock.errors import ConfigError, NotFoundError, UnsafeContentError
from crossdock.image.artifact import BlobSource, ImageSet, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.document import (
    MAX_ARTIFACT_BYTES,
    MAX_DOCUMENT_BYTES,
    MAX_MANIFESTS,
    reading,
)
from crossdock.image.manifest import Index, Manifest, parse_manifest_or_index
from crossdock.image.referrer import Referrer
from crossdock.platform import Platform
from crossdock.sources.select import wanted

__all__ = [
    "REF_NAME",
    "extract_oci_archive",
    "layout_blob_path",
    "read_bounded",
    "read_layout_blob",
    "read_oci_build",
    "read_oci_layout",
    "verified_layout_file",
]

# image-layout.md: the annotation that names a reference (tag) in index.json.
REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1024 * 1024


def layout_blob_path(root: Path, digest: Digest) -> Path:
    return root / "blobs" / digest.algorithm / digest.hex


def read_bounded(path: Path, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """A small document (index.json, a manifest, a config; with ``limit=MAX_ARTIFACT_BYTES``
    an artifact's content such as an SBOM), refusing anything over ``limit``."""
    if path.stat().st_size > limit:
        raise UnsafeContentError(
            f"{path} is larger than the {limit} bytes crossdock reads of such a document",
            hint="the layout holds a blob no image tool wrote as a manifest, config or SBOM",
        )
    return path.read_bytes()


def read_layout_blob(root: Path, descriptor: Descriptor, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of a small blob (manifest, index, config; an artifact's content with
    ``limit=MAX_ARTIFACT_BYTES``), checked against ``descriptor``."""
    path = layout_blob_path(root, descriptor.digest)
    if not path.is_file():
        raise NotFoundError(f"{root}: blob {descriptor.digest} is missing from the layout")
    data = read_bounded(path, limit)
    if len(data) != descriptor.size or not descriptor.digest.matches(data):
        raise UnsafeContentError(
            f"{path} does not match its digest {descriptor.digest}",
            hint="the layout was changed after it was written; write it again",
        )
    return data


def verified_layout_file(root: Path, descriptor: Descriptor) -> Path:
    """The path of a layer blob after hashing it in a stream (never whole in memory)."""
    path = layout_blob_path(root, descriptor.digest)
    if not path.is_file():
        raise NotFoundError(f"{root}: layer {descriptor.digest} is missing from the layout")
    actual, size = file_digest(path, descriptor.digest.algorithm)
    if size != descriptor.size or actual != descriptor.digest.hex:
        raise UnsafeContentError(
            f"layer {path} does not match its descriptor ({descriptor.digest}, "
            f"{descriptor.size} bytes)",
            hint="the layout was changed after it was written; write it again",
        )
    return path


# ----- every image (crossdock verify) -----


def read_oci_layout(
    root: Path,
    *,
    tag: str | None = None,
    platforms: Sequence[Platform] = (),
    layers: bool = True,
) -> tuple[ImageSet, ...]:
    """The images of the layout ``root`` (or only those of ``platforms`` and ``tag``): one
    ``ImageSet`` per index holding images (the index and the images it lists), and one without
    an index for the manifests ``index.json`` lists directly. ``index.json`` is the layout's
    table of contents, not an image index: only a nested index is an index above an image.
    Without ``layers``, manifests and configs only (no layer blob is read)."""
    index_path = root / "index.json"
    if not root.is_dir():
        raise NotFoundError(f"oci:{root}: no such folder")
    if not index_path.is_file():
        raise ConfigError(
            f"{root} is a folder but not an OCI image layout (no index.json)",
            hint="pass an OCI layout (e.g. skopeo copy ... oci:DIR), a docker save tarball, "
            "or a registry reference",
        )
    with reading(str(root)):
        entries = list(Index.parse(read_bounded(index_path)).manifests)
        if tag is not None:
            selected = [d for d in entries if _tagged(d, tag)]
            if not selected:
                names = sorted({d.annotations.get(REF_NAME) or "-" for d in entries})
                raise NotFoundError(
                    f"oci:{root}:{tag}: no image with that tag in the layout",
                    hint=f"its tags: {', '.join(names)}",
                )
            entries = selected
        walk = _Walk(root, platforms, layers=layers)
        direct = walk.images(entries, None, depth=0)
        sets = [ImageSet(direct, None)] if direct else []
        return (*sets, *walk.sets)


class _Walk:
    """Every image under some ``index.json`` entries. Indexes form a DAG that may name one
    manifest many times (a hostile fan-out of a few KB would otherwise be walked exponentially):
    each manifest or index digest is read once, and a layout with more than MAX_MANIFESTS of
    them is refused."""

    def __init__(self, root: Path, platforms: Sequence[Platform], *, layers: bool) -> None:
        self.root = root
        self.platforms = platforms
        self.layers = layers
        self.seen: set[Digest] = set()
        self.sets: list[ImageSet] = []  # one per index that lists images, in walk order

    def images(
        self, entries: Sequence[Descriptor], inherited: Platform | None, *, depth: int
    ) -> tuple[PlatformImage, ...]:
        """The images ``entries`` name directly; those under a nested index go to ``sets``."""
        if depth > 4:  # index -> index -> manifest is the deepest real tool output
            raise UnsafeContentError(f"{self.root}: image indexes nest more than 4 deep")
        found: list[PlatformImage] = []
        for desc in entries:
            if desc.artifact_type is not None or desc.digest in self.seen:
                continue  # an artifact (an SBOM, a signature), or read already
            self.seen.add(desc.digest)
            if len(self.seen) > MAX_MANIFESTS:
                raise UnsafeContentError(
                    f"{self.root}: more than {MAX_MANIFESTS} distinct manifests; not an image "
                    "layout crossdock verifies",
                    hint="verify one image of it (skopeo copy oci:DIR@DIGEST oci:OTHER)",
                )
            platform = desc.platform or inherited
            child = parse_manifest_or_index(read_layout_blob(self.root, desc), desc.media_type)
            if isinstance(child, Index):
                listed = self.images(child.manifests, platform, depth=depth + 1)
                if listed:
                    self.sets.append(ImageSet(listed, child))
                continue
            if child.artifact_type is not None:
                continue
            config = ImageConfig.parse(read_layout_blob(self.root, child.config))
            if not wanted(platform or config.platform, self.platforms):
                continue
            listed_as = Descriptor(
                desc.media_type, desc.digest, desc.size, platform, desc.annotations
            )
            found.append(
                _image(
                    self.root,
                    platform or config.platform,
                    listed_as,
                    child,
                    config,
                    layers=self.layers,
                )
            )
        return tuple(found)


# ----- one build (crossdock push) -----


def read_oci_build(root: Path, *, tag: str | None = None) -> ImageSet:
    """The one build in the OCI layout ``root`` (optionally only the entries ``tag`` names),
    exact bytes, every blob verified, with the layout's artifacts whose subject is an image as
    that image's referrers."""
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
        entries = [e for e in entries if _tagged(e, tag)]
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
        images = tuple(_built_image(root, child, artifacts) for child in index.manifests)
        return ImageSet(images, index)
    images = tuple(_built_image(root, e, artifacts) for e in entries)
    platforms = [image.platform for image in images]
    if len(set(platforms)) != len(platforms):
        raise ConfigError(
            f"{root} holds several images for one platform",
            hint="select one build with --tag (the name in index.json)",
        )
    return ImageSet(images, None)


def _built_image(root: Path, listed: Descriptor, artifacts: list[Descriptor]) -> PlatformImage:
    if listed.platform is not None and listed.platform.os == "unknown":
        raise ConfigError(
            f"{root} contains an attestation manifest ({listed.digest}); crossdock pushes "
            "only the images it builds",
            hint="push layouts written by `crossdock build --oci-layout`",
        )
    document = parse_manifest_or_index(read_layout_blob(root, listed), listed.media_type)
    if not isinstance(document, Manifest):
        raise ConfigError(f"{root}: {listed.digest} is a nested index; not supported")
    config = ImageConfig.parse(read_layout_blob(root, document.config))
    platform = listed.platform or config.platform
    if platform.architecture != config.platform.architecture:
        raise UnsafeContentError(
            f"{root}: manifest {listed.digest} is listed as {platform} but its config says "
            f"{config.platform}",
            hint="the layout is inconsistent; build it again",
        )
    referrers = _referrers(root, document, artifacts)
    return _image(root, Platform.parse(str(platform)), listed, document, config, referrers)


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
            (blob, read_layout_blob(root, blob, MAX_ARTIFACT_BYTES))
            for blob in (document.config, *document.layers)
        )
        found.append(Referrer(document, blobs))
    return tuple(found)


# ----- shared -----


def _tagged(entry: Descriptor, tag: str) -> bool:
    name = entry.annotations.get(REF_NAME, "")
    return name == tag or (name.startswith(f"{tag}-") and entry.platform is not None)


def _image(  # noqa: PLR0917 - private
    root: Path,
    platform: Platform,
    listed: Descriptor,
    manifest: Manifest,
    config: ImageConfig,
    referrers: tuple[Referrer, ...] = (),
    *,
    layers: bool = True,
) -> PlatformImage:
    """``manifest`` as the one image model, its layer blobs verified (none read without
    ``layers``)."""
    blobs = tuple(
        BlobSource(layer, verified_layout_file(root, layer))
        for layer in (manifest.layers if layers else ())
    )
    return PlatformImage(platform, manifest, config, blobs, referrers, listed=listed)


# ----- oci-archive -----

# Bounds for an oci-archive: outside data unpacked on disk.
_MAX_ARCHIVE_MEMBERS = 100_000


def extract_oci_archive(archive: Path, dest: Path) -> Path:
    """Unpack a tar of an OCI layout (``oci-archive:FILE``) into ``dest``: regular files and
    folders only, every name inside ``dest`` (blobs are checked against their digests later,
    when read)."""
    if not archive.is_file():
        raise NotFoundError(f"oci-archive:{archive}: no such file")
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for count, member in enumerate(tar):
                if count >= _MAX_ARCHIVE_MEMBERS:
                    raise UnsafeContentError(f"{archive}: more than {count} members")
                target = (root / member.name).resolve()
                if not target.is_relative_to(root) or (target == root and not member.isdir()):
                    raise UnsafeContentError(
                        f"{archive}: member {member.name!r} points outside the layout"
                    )
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    if source is None:  # pragma: no cover - a regular file always has bytes
                        raise ConfigError(f"{archive}: {member.name} is not a file")
                    with source, target.open("wb") as out:
                        while chunk := source.read(_CHUNK):
                            out.write(chunk)
                else:
                    raise UnsafeContentError(
                        f"{archive}: member {member.name!r} is not a file or folder",
                        hint="an OCI archive holds only oci-layout, index.json and blobs/",
                    )
    except (tarfile.TarError, EOFError, ValueError) as err:  # ValueError: an overflowing header
        raise ConfigError(
            f"{archive} is not a readable tar of an OCI layout: {err or type(err).__name__}"
        ) from err
    return root
