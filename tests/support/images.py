"""Images for tests, made one way: real tar (+gzip) layers stored by digest in a folder, configs
and manifests as exact bytes, put together into crossdock's own model (``PlatformImage``,
``ImageSet``), so digests always match the bytes. Usage::

    from tests.support import images

    image_set = images.image_set(tmp_path / "blobs")                    # arm64 + amd64, an index
    image_set = images.image_set(folder, shared=images.app_files(32 << 20), with_index=False)
    base = images.platform_image(AMD64, [images.layer(folder, entries)], config={"Env": [...]})

``unwritten_layer`` describes a layer without writing it, for tests of the model alone (tags,
mutations) that never read a layer's bytes.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from crossdock.image.artifact import BlobSource, ImageSet, PlatformImage
from crossdock.image.config import HistoryEntry, ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.manifest import Index, Manifest
from crossdock.image.mediatypes import MediaType
from crossdock.image.referrer import Referrer, make_referrer
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.publish.tags import plan_tags, tag_digests
from tests.support.layertar import Entry, tar_bytes

__all__ = [
    "DOCKER",
    "OCI",
    "Family",
    "Layer",
    "app_files",
    "image_set",
    "index_over",
    "layer",
    "layer_file",
    "platform_image",
    "six_tags",
    "unwritten_layer",
    "with_sboms",
]


class Family(NamedTuple):
    """The media types of one image format: its manifests, configs and gzip layers."""

    manifest: str
    config: str
    layer: str


OCI = Family(MediaType.OCI_MANIFEST, MediaType.OCI_CONFIG, MediaType.OCI_LAYER_GZIP)
DOCKER = Family(MediaType.DOCKER_MANIFEST, MediaType.DOCKER_CONFIG, MediaType.DOCKER_LAYER_GZIP)


@dataclass(frozen=True)
class Layer:
    """A layer blob and its config diff_id (the digest of the uncompressed tar)."""

    blob: BlobSource
    diff_id: Digest


def layer(
    folder: Path,
    content: Mapping[str, bytes] | Iterable[Entry],
    *,
    media_type: str = MediaType.OCI_LAYER_GZIP,
) -> Layer:
    """A layer of ``content`` (files by name, or layertar entries: directories, links,
    whiteouts) written to ``folder`` under its digest; gzip-compressed unless ``media_type``
    is a plain tar. Files given by name come with their parent directories, as in any real
    layer (Lambda refuses a file whose parent is missing)."""
    entries = _with_parents(content) if isinstance(content, Mapping) else content
    tar = tar_bytes(entries)
    blob = tar if media_type.endswith(".tar") else gzip.compress(tar, mtime=0)
    digest = sha256_of(blob)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / digest.hex
    path.write_bytes(blob)
    return Layer(BlobSource(Descriptor(media_type, digest, len(blob)), path), sha256_of(tar))


def _with_parents(files: Mapping[str, bytes]) -> list[Entry]:
    folders = {
        "/".join(name.split("/")[:end]) for name in files for end in range(1, name.count("/") + 1)
    }
    return [(folder, "dir", None) for folder in sorted(folders)] + [
        (name, "data", data) for name, data in sorted(files.items())
    ]


def layer_file(path: Path, media_type: str = MediaType.OCI_LAYER_GZIP) -> Layer:
    """A layer of an existing file, described as ``media_type`` whatever its bytes are (tests
    of readers that must notice a mismatch); its diff_id is that of the file, gunzipped when it
    starts like gzip."""
    data = path.read_bytes()
    tar = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    return Layer(
        BlobSource(Descriptor(media_type, sha256_of(data), len(data)), path), sha256_of(tar)
    )


def with_layer_files(config: ImageConfig, paths: Sequence[Path]) -> ImageConfig:
    """``config`` with the diff_ids (and a history entry each) of the layer files ``paths``
    appended, as a build that adds those layers writes it."""
    return config.with_changes(
        append_layers=[(layer_file(p).diff_id, HistoryEntry("crossdock test")) for p in paths]
    )


def unwritten_layer(name: str, *, media_type: str = MediaType.OCI_LAYER_GZIP) -> Layer:
    """A layer described but never written (its path, ``/name``, does not exist)."""
    data = name.encode()
    descriptor = Descriptor(media_type, sha256_of(data), len(data))
    return Layer(BlobSource(descriptor, Path(f"/{name}")), sha256_of(b"tar " + data))


def platform_image(
    platform: Platform,
    layers: Sequence[Layer] = (),
    *,
    family: Family = OCI,
    config: Mapping[str, object] | None = None,
    history: Sequence[Mapping[str, object]] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> PlatformImage:
    """One platform's image of ``layers`` (bottom first): ``config`` is the config's ``config``
    section (Env, Cmd, ...); ``history`` defaults to one entry per layer."""
    data: dict[str, object] = {
        "architecture": platform.architecture,
        "os": platform.os,
        **({"variant": platform.variant} if platform.variant else {}),
        "config": dict(config or {}),
        "rootfs": {"type": "layers", "diff_ids": [str(each.diff_id) for each in layers]},
        "history": (
            [dict(entry) for entry in history]
            if history is not None
            else [{"created_by": "crossdock test"} for _ in layers]
        ),
    }
    image_config = ImageConfig.from_data(data)
    manifest = Manifest.build(
        family.manifest,
        Descriptor(family.config, image_config.digest, len(image_config.raw)),
        [each.blob.descriptor for each in layers],
        annotations=annotations,
    )
    return PlatformImage(platform, manifest, image_config, tuple(each.blob for each in layers))


def index_over(images: Sequence[PlatformImage]) -> Index:
    """An OCI index naming each of ``images`` with its platform, in their order."""
    return Index.build(
        MediaType.OCI_INDEX, [image.manifest.descriptor(image.platform) for image in images]
    )


def app_files(random_bytes: int = 5000) -> dict[str, bytes]:
    """A service's files; ``random_bytes`` of noise make the layer as big as a test needs (and
    incompressible: several upload chunks when the chunk size is small)."""
    return {"app/main.py": b"print('hello')\n" * 50, "app/rand": os.urandom(random_bytes)}


def image_set(
    folder: Path,
    platforms: Sequence[Platform] = (ARM64, AMD64),
    *,
    with_index: bool = True,
    shared: Mapping[str, bytes] | None = None,
) -> ImageSet:
    """A small real multi-platform image set, blobs in ``folder``: per platform, the ``shared``
    layer (one blob for all platforms, when given) and then a layer of its own naming its
    platform; an OCI index over them unless ``with_index`` is false."""
    common = [layer(folder, shared)] if shared is not None else []
    images = tuple(
        platform_image(
            platform,
            [*common, layer(folder, {"app/arch.txt": f"built for {platform}\n".encode()})],
            config={"Cmd": ["python", "/app/main.py"]},
        )
        for platform in platforms
    )
    return ImageSet(images, index_over(images) if with_index else None)


def with_sboms(image_set: ImageSet) -> ImageSet:
    """``image_set`` with an SBOM referrer (a small CycloneDX document) beside each image."""

    def sbom(image: PlatformImage) -> Referrer:
        document = json.dumps({"bomFormat": "CycloneDX", "for": str(image.platform)}).encode()
        return make_referrer(
            image.manifest.descriptor(),
            MediaType.CYCLONEDX_JSON,
            MediaType.CYCLONEDX_JSON,
            document,
        )

    return ImageSet(
        tuple(dataclasses.replace(i, referrers=(sbom(i),)) for i in image_set.images),
        image_set.index,
    )


# The dev release the seed's Makefile describes: its timestamp and git commit.
TIMESTAMP = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SHA = "abc1234"


def six_tags(image_set: ImageSet, *, single_manifests: bool = False) -> dict[str, Digest]:
    """The tags of a dev release of ``image_set`` (timestamped, per architecture, latest,
    commit), each with the digest it points at."""
    platforms = [image.platform for image in image_set.images]
    plan = plan_tags("dev", TIMESTAMP, SHA, platforms, ARM64, single_manifests=single_manifests)
    return tag_digests(plan, image_set)
