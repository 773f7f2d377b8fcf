"""``docker save`` tarballs (``docker-archive:FILE[:REF]``), as go-containerregistry's
``tarball`` package reads them: manifest.json lists each image's config and layer files, and
its tags (Docker 25+ archives are OCI layouts too, and the same manifest.json describes them).

A tarball keeps no manifest: each image gets the manifest its config and layers make (OCI
media types; a layer is typed gzip or plain by its bytes), and its listed descriptor carries
its tags. Layers are copied out and hashed on the way: each is known by the digest computed
from its bytes, and its content must match the diff_id its config claims (file names prove
nothing).
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from crossdock.errors import ConfigError, MalformedError, NotFoundError, UnsafeContentError
from crossdock.image.artifact import BlobSource, ImageSet, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.document import (
    MAX_DOCUMENT_BYTES,
    load_list,
    optional,
    reading,
    require,
)
from crossdock.image.manifest import Manifest
from crossdock.image.mediatypes import MediaType
from crossdock.platform import Platform
from crossdock.rootfs.layerindex import uncompressed_digest
from crossdock.sources.oci_layout import REF_NAME
from crossdock.sources.select import wanted

__all__ = ["read_docker_archive"]

_CHUNK = 1024 * 1024


def read_docker_archive(
    archive: Path,
    work_dir: Path,
    *,
    platforms: Sequence[Platform] = (),
    reference: str | None = None,
) -> ImageSet:
    """The images of a ``docker save`` tarball (or only those of ``platforms``), their layers
    copied to ``work_dir``; ``reference`` keeps the image tagged so (``docker-archive:FILE:REF``).
    Each image's listed descriptor names its tags (``org.opencontainers.image.ref.name``, comma
    separated), or its config file when it has none."""
    if not archive.is_file():
        raise NotFoundError(f"docker-archive:{archive}: no such file")
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, mode="r:") as tar, reading(str(archive)):
            entries = _archive_entries(_member_bytes(tar, "manifest.json"))
            images: list[PlatformImage] = []
            if reference is not None:
                entries = [e for e in entries if reference in e[2]]
                if not entries:
                    raise NotFoundError(
                        f"docker-archive:{archive}:{reference}: no image with that name in the "
                        "archive"
                    )
            for number, (config_name, layer_names, repo_tags) in enumerate(entries):
                config_raw = _member_bytes(tar, config_name)
                _check_named_digest(config_name, config_raw, archive)
                config = ImageConfig.parse(config_raw)
                if not wanted(config.platform, platforms):
                    continue
                diff_ids = config.diff_ids
                if len(diff_ids) != len(layer_names):
                    raise UnsafeContentError(
                        f"{archive}: image {number} lists {len(layer_names)} layers but its "
                        f"config has {len(diff_ids)} diff_ids"
                    )
                paths = [work_dir / f"{number}-{i}.tar" for i in range(len(layer_names))]
                layers = tuple(
                    _copy_layer(tar, name, diff_id, path, archive)
                    for name, diff_id, path in zip(layer_names, diff_ids, paths, strict=True)
                )
                manifest = Manifest.build(
                    MediaType.OCI_MANIFEST,
                    Descriptor(MediaType.OCI_CONFIG, config.digest, len(config_raw)),
                    [layer.descriptor for layer in layers],
                )
                listed = Descriptor(
                    manifest.media_type,
                    manifest.digest,
                    len(manifest.raw),
                    annotations={REF_NAME: ",".join(repo_tags) or config_name},
                )
                images.append(
                    PlatformImage(config.platform, manifest, config, layers, listed=listed)
                )
            return ImageSet(tuple(images), None)
    # A header whose size or offset overflows makes tarfile's seek raise ValueError.
    except (tarfile.TarError, EOFError, UnicodeError, ValueError) as err:
        raise MalformedError(
            f"{archive} is not a readable docker save tarball: {err or type(err).__name__}",
            hint="create it with `docker save IMAGE -o FILE.tar`",
        ) from err


def _archive_entries(raw: bytes) -> list[tuple[str, list[str], list[str]]]:
    """manifest.json: a list of {Config, Layers, RepoTags}, checked field by field."""
    document = load_list(raw, "manifest.json")
    entries = []
    for number, item in enumerate(document):
        what = f"manifest.json[{number}]"
        if not isinstance(item, dict):
            raise MalformedError(f"{what} is not an object")
        config = require(item, "Config", str, what)
        layers = require(item, "Layers", list, what)
        tags = optional(item, "RepoTags", list, what) or []
        for name in (*layers, *tags):
            if not isinstance(name, str):
                raise MalformedError(f"{what}: Layers and RepoTags must be lists of strings")
        entries.append((config, layers, tags))
    return entries


def _archive_name(tar: tarfile.TarFile) -> str:
    return str(tar.name.decode() if isinstance(tar.name, bytes) else tar.name)


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        member = tar.getmember(name)
    except KeyError as err:
        raise ConfigError(f"{_archive_name(tar)}: {name} is missing from the archive") from err
    stream = tar.extractfile(member)
    if stream is None:
        raise ConfigError(f"{_archive_name(tar)}: {name} is not a file")
    return stream


def _member_bytes(tar: tarfile.TarFile, name: str) -> bytes:
    with _member(tar, name) as stream:
        data = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise UnsafeContentError(
            f"{_archive_name(tar)}: {name} is too large for a manifest or config"
        )
    return data


def _check_named_digest(name: str, data: bytes, archive: Path) -> None:
    """A config stored as ``HEX.json`` or ``blobs/sha256/HEX`` must hash to HEX."""
    stem = Path(name).name.removesuffix(".json")
    if len(stem) == 64 and hashlib.sha256(data).hexdigest() != stem:
        raise UnsafeContentError(f"{archive}: {name} does not match its digest")


def _copy_layer(
    tar: tarfile.TarFile, name: str, diff_id: Digest, dest: Path, archive: Path
) -> BlobSource:
    """Copy one layer out of the archive, known by the digest of its bytes, computed while
    copying: that digest, never the config's claim or the file's name, is what the layer is
    known (and cached) by. The layer's uncompressed content must also hash to the diff_id its
    config claims, or the archive is refused."""
    hasher = hashlib.new(diff_id.algorithm)
    size = 0
    with _member(tar, name) as source, dest.open("wb") as out:
        while chunk := source.read(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
            out.write(chunk)
    stored = Digest(f"{diff_id.algorithm}:{hasher.hexdigest()}")
    plain = _is_plain_tar(dest)
    content = (
        stored if plain else uncompressed_digest(dest, None, None, algorithm=diff_id.algorithm)
    )
    if content != diff_id:
        raise UnsafeContentError(
            f"{archive}: layer {name} does not match the diff_id {diff_id} its config claims "
            f"(its content is {content})",
            hint="the archive is damaged or was altered; save the image again",
        )
    media_type = MediaType.OCI_LAYER if plain else MediaType.OCI_LAYER_GZIP
    return BlobSource(Descriptor(media_type, stored, size), dest)


def _is_plain_tar(path: Path) -> bool:
    with path.open("rb") as stream:
        return not stream.read(2).startswith(b"\x1f\x8b")
