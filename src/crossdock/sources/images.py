"""Where ``crossdock verify IMAGE`` reads an image from, named as skopeo names it
(``crossdock.transports``): a registry (``docker://REF`` or bare), an OCI image layout folder
(``oci:DIR[:TAG]``) or a tar of one (``oci-archive:FILE``), a ``docker save`` tarball
(``docker-archive:FILE[:REF]``), or the local docker daemon (``docker-daemon:REF``, read through
its Engine API). Each becomes, per platform, the image config and its layer files, with every
blob read checked against its digest.

Attestation manifests (platform ``unknown/unknown``, which BuildKit adds) are not images and are
skipped.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from crossdock import scratch
from crossdock.cache import BlobCache, CacheLayout
from crossdock.dockerengine import save_image
from crossdock.errors import ConfigError, MalformedError, NotFoundError, UnsafeContentError
from crossdock.image.artifact import BlobSource, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.document import (
    MAX_DOCUMENT_BYTES,
    MAX_MANIFESTS,
    load_list,
    optional,
    reading,
    require,
)
from crossdock.image.manifest import Index, Manifest, parse_manifest_or_index
from crossdock.platform import Platform
from crossdock.progress import NO_PROGRESS, Progress, step
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Mirrors, Reference
from crossdock.rootfs.layerindex import open_decompressed
from crossdock.sources.oci_layout import (
    REF_NAME,
    read_bounded,
    read_layout_blob,
    verified_layout_file,
)
from crossdock.transports import (
    DockerArchive,
    DockerDaemon,
    OciArchive,
    OciLayout,
    Registry,
    parse_image_name,
)

__all__ = [
    "LoadedImage",
    "load_docker_archive",
    "load_oci_layout",
    "load_registry",
    "open_images",
    "pull_config",
    "pull_layers",
    "pull_platform_image",
]

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LoadedImage:
    """One platform's image, ready for ``verify_image``."""

    name: str  # what the report shows: source and manifest digest
    config: ImageConfig
    layer_paths: tuple[Path, ...]
    layer_digests: tuple[Digest | None, ...]
    declared_platform: Platform | None  # what the index says, checked against the config
    # The manifest (None for a docker save tarball, which keeps no manifest), and whether the
    # reference or layout entry given names an index above it rather than the manifest itself.
    manifest: Manifest | None = None
    behind_index: bool = False

    @property
    def platform(self) -> Platform:
        return self.declared_platform or self.config.platform


@contextmanager
def open_images(
    source: str,
    *,
    platforms: Sequence[Platform] = (),
    cache_dir: Path | None = None,
    mirrors: Mirrors | None = None,
    progress: Progress = NO_PROGRESS,
) -> Iterator[list[LoadedImage]]:
    """Load every platform image of ``source`` (or only ``platforms``), a skopeo-style image
    name; temporary files live until the context ends. Registry blobs are cached in
    ``cache_dir``; pulls and daemon reads are steps of ``progress``."""
    name = parse_image_name(source)
    with scratch.temporary_directory(prefix="crossdock-verify-") as tmp:
        work = Path(tmp)
        match name:
            case Registry(reference=ref):
                blobs = CacheLayout(cache_dir or work).blobs
                images = load_registry(
                    ref, blobs, platforms=platforms, mirrors=mirrors, progress=progress
                )
            case OciLayout(path=path, tag=tag):
                images = load_oci_layout(path, platforms=platforms, tag=tag)
            case OciArchive(path=path, tag=tag):
                root = extract_oci_archive(path, work / "layout")
                images = load_oci_layout(root, platforms=platforms, tag=tag, shown_as=str(name))
            case DockerArchive(path=path, reference=wanted):
                images = load_docker_archive(path, work, platforms=platforms, reference=wanted)
            case DockerDaemon(reference=wanted):
                with step(progress, None, "docker save", total=0) as saving:
                    saved = save_image(wanted, work / "docker-save.tar", on_bytes=saving.advance)
                images = load_docker_archive(saved, work, platforms=platforms, shown_as=str(name))
        if not images:
            wanted = ", ".join(str(p) for p in platforms) or "any platform"
            raise NotFoundError(f"{source} has no image for {wanted}")
        yield images


def _wanted(platform: Platform | None, platforms: Sequence[Platform]) -> bool:
    if platform is not None and platform.os == "unknown":
        return False  # an attestation manifest
    if not platforms or platform is None:
        return True
    return any(p.matches(platform.os, platform.architecture, platform.variant) for p in platforms)


# ----- OCI image layout -----


def load_oci_layout(
    root: Path,
    *,
    platforms: Sequence[Platform] = (),
    tag: str | None = None,
    shown_as: str | None = None,
) -> list[LoadedImage]:
    """The images of an OCI layout folder; ``tag`` keeps only the index.json entries whose ref
    name (``org.opencontainers.image.ref.name``) it is, as ``oci:DIR:TAG`` means in skopeo."""
    index_path = root / "index.json"
    if not root.is_dir():
        raise NotFoundError(f"oci:{root}: no such folder")
    if not index_path.is_file():
        raise ConfigError(
            f"{root} is a folder but not an OCI image layout (no index.json)",
            hint="pass an OCI layout (e.g. skopeo copy ... oci:DIR), a docker save tarball, "
            "or a registry reference",
        )
    images: list[LoadedImage] = []
    with reading(str(root)):
        top = Index.parse(read_bounded(index_path))
        if tag is not None:
            entries = [d for d in top.manifests if (d.annotations or {}).get(REF_NAME) == tag]
            if not entries:
                names = sorted({(d.annotations or {}).get(REF_NAME) or "-" for d in top.manifests})
                raise NotFoundError(
                    f"oci:{root}:{tag}: no image with that tag in the layout",
                    hint=f"its tags: {', '.join(names)}",
                )
            top = Index.build(top.media_type, entries)
        # index.json is the layout's table of contents, not an image index: what it lists
        # directly are the references a tool would copy, and only a nested index is an index
        # behind a tag.
        _walk_layout(root, top, None, platforms=platforms, out=images, depth=0)
    if shown_as is not None:
        images = [replace(i, name=i.name.replace(f"oci:{root}", shown_as, 1)) for i in images]
    return images


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
                    with _member(tar, member.name) as source, target.open("wb") as out:
                        while chunk := source.read(_CHUNK):
                            out.write(chunk)
                else:
                    raise UnsafeContentError(
                        f"{archive}: member {member.name!r} is not a file or folder",
                        hint="an OCI archive holds only oci-layout, index.json and blobs/",
                    )
    except tarfile.TarError as err:
        raise ConfigError(f"{archive} is not a readable tar of an OCI layout: {err}") from err
    return root


def _walk_layout(
    root: Path,
    index: Index,
    inherited: Platform | None,
    *,
    platforms: Sequence[Platform],
    out: list[LoadedImage],
    depth: int,
    seen: set[Digest] | None = None,
) -> None:
    """Every image under ``index``. Indexes form a DAG that may name one manifest many times
    (a hostile fan-out of a few KB would otherwise be walked exponentially): each manifest or
    index digest is read once, and a layout with more than MAX_MANIFESTS of them is refused."""
    seen = set() if seen is None else seen
    if depth > 4:  # index -> index -> manifest is the deepest real tool output
        raise UnsafeContentError(f"{root}: image indexes nest more than 4 deep")
    for desc in index.manifests:
        if desc.artifact_type is not None:
            continue  # an artifact (an SBOM, a signature), not an image
        if desc.digest in seen:
            continue
        seen.add(desc.digest)
        if len(seen) > MAX_MANIFESTS:
            raise UnsafeContentError(
                f"{root}: more than {MAX_MANIFESTS} distinct manifests; not an image layout "
                "crossdock verifies",
                hint="verify one image of it (skopeo copy oci:DIR@DIGEST oci:OTHER)",
            )
        platform = desc.platform or inherited
        raw = read_layout_blob(root, desc)
        child = parse_manifest_or_index(raw, desc.media_type)
        if isinstance(child, Index):
            _walk_layout(
                root, child, platform, platforms=platforms, out=out, depth=depth + 1, seen=seen
            )
            continue
        if child.artifact_type is not None:
            continue
        config = ImageConfig.parse(read_layout_blob(root, child.config))
        if not _wanted(platform or config.platform, platforms):
            continue
        paths = [verified_layout_file(root, layer) for layer in child.layers]
        out.append(
            LoadedImage(
                name=f"oci:{root}@{child.digest}",
                config=config,
                layer_paths=tuple(paths),
                layer_digests=tuple(layer.digest for layer in child.layers),
                declared_platform=platform,
                manifest=child,
                behind_index=depth > 0,
            )
        )


# ----- docker save -----


def load_docker_archive(
    archive: Path,
    work_dir: Path,
    *,
    platforms: Sequence[Platform] = (),
    reference: str | None = None,
    shown_as: str | None = None,
) -> list[LoadedImage]:
    """Read a ``docker save`` tarball (its manifest.json; Docker 25+ archives are OCI layouts
    too, and the same manifest.json describes them). Layers are copied to ``work_dir`` and
    hashed on the way: each is known by the digest computed from its bytes, and its content must
    match the diff_id its config claims (file names prove nothing). ``reference`` keeps the
    image tagged so (``docker-archive:FILE:REF``)."""
    if not archive.is_file():
        raise NotFoundError(f"docker-archive:{archive}: no such file")
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, mode="r:") as tar, reading(str(archive)):
            entries = _archive_entries(_member_bytes(tar, "manifest.json"))
            images: list[LoadedImage] = []
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
                if not _wanted(config.platform, platforms):
                    continue
                diff_ids = config.diff_ids
                if len(diff_ids) != len(layer_names):
                    raise UnsafeContentError(
                        f"{archive}: image {number} lists {len(layer_names)} layers but its "
                        f"config has {len(diff_ids)} diff_ids"
                    )
                paths = [work_dir / f"{number}-{i}.tar" for i in range(len(layer_names))]
                digests = [
                    _copy_layer(tar, name, diff_id, path, archive)
                    for name, diff_id, path in zip(layer_names, diff_ids, paths, strict=True)
                ]
                tags = ",".join(repo_tags) or config_name
                images.append(
                    LoadedImage(
                        name=f"{shown_as or f'docker-archive:{archive.name}'}:{tags}",
                        config=config,
                        layer_paths=tuple(paths),
                        layer_digests=tuple(digests),
                        declared_platform=None,
                    )
                )
            return images
    except (tarfile.TarError, EOFError, UnicodeError) as err:
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
) -> Digest:
    """Copy one layer out of the archive and return the digest of its bytes, computed while
    copying: that digest, never the config's claim or the file's name, is what the layer is
    known (and cached) by. The layer's uncompressed content must also hash to the diff_id its
    config claims, or the archive is refused."""
    hasher = hashlib.new(diff_id.algorithm)
    with _member(tar, name) as source, dest.open("wb") as out:
        while chunk := source.read(_CHUNK):
            hasher.update(chunk)
            out.write(chunk)
    stored = Digest(f"{diff_id.algorithm}:{hasher.hexdigest()}")
    content = stored if _is_plain_tar(dest) else _uncompressed_digest(dest, diff_id.algorithm)
    if content != diff_id:
        raise UnsafeContentError(
            f"{archive}: layer {name} does not match the diff_id {diff_id} its config claims "
            f"(its content is {content})",
            hint="the archive is damaged or was altered; save the image again",
        )
    return stored


def _is_plain_tar(path: Path) -> bool:
    with path.open("rb") as stream:
        return not stream.read(2).startswith(b"\x1f\x8b")


def _uncompressed_digest(path: Path, algorithm: str) -> Digest:
    hasher = hashlib.new(algorithm)
    with open_decompressed(path) as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return Digest(f"{algorithm}:{hasher.hexdigest()}")


# ----- registry -----


def load_registry(
    ref: Reference,
    blobs: BlobCache,
    *,
    platforms: Sequence[Platform] = (),
    mirrors: Mirrors | None = None,
    progress: Progress = NO_PROGRESS,
) -> list[LoadedImage]:
    """Pull the manifests, configs and layers of ``ref`` (every platform of an index)."""
    pull = mirrors.apply(ref) if mirrors else ref
    images: list[LoadedImage] = []
    with RegistryClient(pull.registry) as client:
        top = client.get_manifest(pull)
        children: list[tuple[Manifest, Platform | None]] = []
        if isinstance(top, Index):
            if len(top.manifests) > MAX_MANIFESTS:
                raise UnsafeContentError(
                    f"{ref} lists {len(top.manifests)} manifests (more than {MAX_MANIFESTS})"
                )
            seen: set[Digest] = set()
            for desc in top.manifests:
                if desc.digest in seen:  # one manifest listed twice is read once
                    continue
                seen.add(desc.digest)
                if not _wanted(desc.platform, platforms) or desc.platform is None:
                    continue
                child = client.get_manifest(pull.with_digest(desc.digest))
                if isinstance(child, Manifest):
                    children.append((child, desc.platform))
        else:
            children.append((top, None))
        for manifest, declared in children:
            config = pull_config(client, pull, manifest)
            if declared is None and not _wanted(config.platform, platforms):
                continue
            where = declared or config.platform
            with step(progress, where, "pull", total=0) as pulling:
                missing = [desc for desc in manifest.layers if not blobs.has(desc)]
                pulling.add_total(sum(desc.size for desc in missing))
                pulled = pull_layers(client, pull, manifest, blobs, on_bytes=pulling.advance)
                paths = tuple(blob.path for blob in pulled)
                count = len(manifest.layers)
                pulling.describe(
                    f"{count} layer{'' if count == 1 else 's'}" + ("" if missing else " cached")
                )
            images.append(
                LoadedImage(
                    name=f"{ref}@{manifest.digest}",
                    config=config,
                    layer_paths=paths,
                    layer_digests=tuple(desc.digest for desc in manifest.layers),
                    declared_platform=declared,
                    manifest=manifest,
                    behind_index=isinstance(top, Index),
                )
            )
    return images


def pull_config(client: RegistryClient, repository: Reference, manifest: Manifest) -> ImageConfig:
    """The config ``manifest`` names, from ``repository`` (digest and size verified)."""
    with reading(f"{repository}: config {manifest.config.digest}"):
        return ImageConfig.parse(client.fetch_blob_bytes(repository, manifest.config))


def pull_layers(
    client: RegistryClient,
    repository: Reference,
    manifest: Manifest,
    blobs: BlobCache,
    *,
    on_bytes: Callable[[int], object] | None = None,
) -> tuple[BlobSource, ...]:
    """The layers of ``manifest`` from ``repository``, verified and cached by digest; each
    remembers the repository it came from, so a push to the same registry can mount it.
    ``on_bytes`` hears of the bytes downloaded (progress)."""
    origin = f"{repository.registry}/{repository.repository}"
    download = _downloader(client, repository, on_bytes)
    return tuple(BlobSource(desc, blobs.ensure(desc, download), origin) for desc in manifest.layers)


def pull_platform_image(
    client: RegistryClient,
    repository: Reference,
    manifest: Manifest,
    platform: Platform,
    blobs: BlobCache,
) -> PlatformImage:
    """``manifest`` (already read, and known to be ``platform``'s) as the one image model."""
    config = pull_config(client, repository, manifest)
    return PlatformImage(
        platform, manifest, config, pull_layers(client, repository, manifest, blobs)
    )


def _downloader(
    client: RegistryClient, ref: Reference, on_bytes: Callable[[int], object] | None = None
) -> Callable[[Descriptor, Path], Path]:
    def download(desc: Descriptor, dest: Path) -> Path:
        return client.fetch_blob(ref, desc, dest, on_bytes=on_bytes)

    return download
