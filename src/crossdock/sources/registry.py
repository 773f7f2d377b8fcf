"""Images in a registry (``docker://REF``), as go-containerregistry's ``remote`` package reads
them: the manifest or index a reference names, a platform's manifest under it, its config and
its layers, every blob checked against its digest and layers cached by digest.

The one registry image reader: ``crossdock verify`` (every platform of a reference), the native
backend (a base image's platform), ``crossdock rebase`` (the image, its old and new bases) and
``crossdock k8s`` (an image's architectures) all read through it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from crossdock.cache import BlobCache
from crossdock.errors import BaseImageError, CrossdockError, UnsafeContentError
from crossdock.image.artifact import BlobSource, ImageSet, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.document import MAX_MANIFESTS, reading
from crossdock.image.manifest import Index, Manifest, parse_manifest_or_index
from crossdock.platform import Platform
from crossdock.progress import NO_PROGRESS, Progress, Step, step
from crossdock.registry.reference import Mirrors, Reference
from crossdock.sources.select import wanted

if TYPE_CHECKING:
    from crossdock.registry.client import RegistryClient

__all__ = [
    "Registries",
    "platform_manifest",
    "pull_config",
    "pull_image_set",
    "pull_layers",
    "pull_platform_image",
    "read_image_set",
]


class Registries:
    """The registries a command reads from: one client per registry host, made on demand (by
    ``client_for``, so tests and callers can give their own) and closed together, and the
    registry mirrors applied to every reference read."""

    def __init__(
        self,
        client_for: Callable[[str], RegistryClient] | None = None,
        mirrors: Mirrors | None = None,
    ) -> None:
        self._client_for = client_for or _full_client
        self._clients: dict[str, RegistryClient] = {}
        self.mirrors = mirrors or Mirrors({})

    def client(self, ref: Reference) -> RegistryClient:
        """The client of ``ref``'s registry (``ref`` as read: mirrors already applied)."""
        if ref.registry not in self._clients:
            self._clients[ref.registry] = self._client_for(ref.registry)
        return self._clients[ref.registry]

    def top(self, ref: Reference) -> tuple[Reference, Manifest | Index]:
        """What ``ref`` names (a manifest or an index), and the reference it was read from
        (``ref`` through its mirror, if one is configured)."""
        pull = self.mirrors.apply(ref)
        return pull, self.client(pull).get_manifest(pull)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> Registries:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def pull_image_set(
    ref: Reference,
    blobs: BlobCache,
    *,
    platforms: Sequence[Platform] = (),
    mirrors: Mirrors | None = None,
    progress: Progress = NO_PROGRESS,
) -> ImageSet:
    """Every platform image of ``ref`` (or only ``platforms``), layers pulled: see
    ``read_image_set``."""
    pull = mirrors.apply(ref) if mirrors else ref
    with _full_client(pull.registry) as client:
        top = client.get_manifest(pull)
        return read_image_set(
            client, pull, top, blobs, platforms=platforms, progress=progress, name=str(ref)
        )


def read_image_set(
    client: RegistryClient,
    repository: Reference,
    top: Manifest | Index,
    blobs: BlobCache | None,
    *,
    platforms: Sequence[Platform] = (),
    progress: Progress = NO_PROGRESS,
    name: str | None = None,
) -> ImageSet:
    """The images under ``top`` (read from ``repository``), or only those of ``platforms``: the
    index and the images it lists (each knowing the index entry that lists it), or the one
    image a manifest is. Attestations and other artifacts are not images and are skipped, and
    so is a nested index. Layers are pulled into ``blobs`` (each a step of ``progress``);
    without ``blobs``, manifests and configs only."""
    name = name or str(repository)
    children: list[tuple[Manifest, Descriptor | None]] = []
    if isinstance(top, Index):
        if len(top.manifests) > MAX_MANIFESTS:
            raise UnsafeContentError(
                f"{name} lists {len(top.manifests)} manifests (more than {MAX_MANIFESTS})"
            )
        seen: set[Digest] = set()
        for desc in top.manifests:
            if desc.digest in seen:  # one manifest listed twice is read once
                continue
            seen.add(desc.digest)
            if desc.platform is None or desc.artifact_type is not None:
                continue
            if not wanted(desc.platform, platforms):
                continue
            child = client.get_manifest(repository.with_digest(desc.digest))
            if isinstance(child, Manifest):
                children.append((child, desc))
    else:
        children.append((top, None))
    images: list[PlatformImage] = []
    for manifest, listed in children:
        config = pull_config(client, repository, manifest)
        if listed is None and not wanted(config.platform, platforms):
            continue
        platform = listed.platform if listed and listed.platform else config.platform
        layers: tuple[BlobSource, ...] = ()
        if blobs is not None:
            with step(progress, platform, "pull", total=0) as pulling:
                layers, cached = _pull_layers_shown(client, repository, manifest, blobs, pulling)
                count = len(manifest.layers)
                pulling.describe(
                    f"{count} layer{'' if count == 1 else 's'}" + (" cached" if cached else "")
                )
        images.append(PlatformImage(platform, manifest, config, layers, listed=listed))
    return ImageSet(tuple(images), top if isinstance(top, Index) else None)


def platform_manifest(
    client: RegistryClient,
    repository: Reference,
    top: Manifest | Index,
    platform: Platform,
    *,
    name: str,
    hint: str,
    error: type[CrossdockError] = BaseImageError,
    blobs: BlobCache | None = None,
) -> tuple[Manifest, Descriptor | None]:
    """The manifest of ``platform`` under ``top`` (read from ``repository``) and the index entry
    that lists it; ``top`` itself when it is a manifest (its config then says its platform).
    ``name`` is how errors call the image, ``hint`` what to do when the platform is missing,
    ``error`` what is raised (a base image's problem, by default). ``blobs``: where a manifest
    read by its digest is kept, and read again from (``_document_by_digest``)."""
    if not isinstance(top, Index):
        return top, None
    listed = top.find(platform)
    if listed is None:
        available = ", ".join(str(p) for p in top.platforms()) or "none"
        raise error(f"{name} has no {platform} image (it has: {available})", hint=hint)
    found = _document_by_digest(
        blobs,
        listed,
        lambda: client.get_manifest(repository.with_digest(listed.digest)),
        lambda raw: parse_manifest_or_index(raw, listed.media_type),
    )
    if not isinstance(found, Manifest):
        raise error(f"{name}: the {platform} entry is not an image")
    return found, listed


def pull_platform_image(
    client: RegistryClient,
    repository: Reference,
    top: Manifest | Index,
    platform: Platform,
    blobs: BlobCache,
    *,
    name: str,
    hint: str,
    layers: bool = True,
    pulling: Step | None = None,
    error: type[CrossdockError] = BaseImageError,
) -> PlatformImage:
    """``platform``'s image under ``top`` (an index, or a single-platform manifest that must be
    ``platform``'s): manifest, config and, unless ``layers`` is false, its layers verified and
    cached. ``pulling`` hears of the layer bytes to download and downloaded."""
    manifest, listed = platform_manifest(
        client, repository, top, platform, name=name, hint=hint, error=error, blobs=blobs
    )
    config = pull_config(client, repository, manifest, blobs)
    if listed is None and not platform.matches(
        config.platform.os, config.platform.architecture, config.platform.variant
    ):
        raise error(
            f"{name} is a single-platform {config.platform} image, not {platform}",
            hint="use a multi-arch base (an image index) to build several platforms",
        )
    pulled: tuple[BlobSource, ...] = ()
    if layers:
        pulled, cached = _pull_layers_shown(client, repository, manifest, blobs, pulling)
        if cached and pulling is not None:
            pulling.describe(f"{len(manifest.layers)} layers cached")
    return PlatformImage(platform, manifest, config, pulled, listed=listed)


def pull_config(
    client: RegistryClient,
    repository: Reference,
    manifest: Manifest,
    blobs: BlobCache | None = None,
) -> ImageConfig:
    """The config ``manifest`` names, from ``repository`` (digest and size verified); with
    ``blobs``, kept there and read again from there (``_document_by_digest``)."""
    with reading(f"{repository}: config {manifest.config.digest}"):
        return _document_by_digest(
            blobs,
            manifest.config,
            lambda: ImageConfig.parse(client.fetch_blob_bytes(repository, manifest.config)),
            ImageConfig.parse,
        )


def _full_client(registry: str) -> RegistryClient:
    """The full registry client (httpx), imported when a read needs it: a warm build reads its
    base's documents and layers from the cache (``pull_platform_image``)."""
    from crossdock.registry.client import RegistryClient

    return RegistryClient(registry)


class _Document(Protocol):
    @property
    def raw(self) -> bytes: ...


_D = TypeVar("_D", bound=_Document)


def _document_by_digest(
    blobs: BlobCache | None,
    descriptor: Descriptor,
    fetch: Callable[[], _D],
    parse: Callable[[bytes], _D],
) -> _D:
    """A manifest or config named by its digest: immutable, so kept in the blob cache once read
    (a warm build's base then costs its registry one request, its tag, instead of one more per
    platform manifest and config); a cached copy is checked like every cached blob (hashed
    again when its file changed), and one that does not read is fetched again."""
    if blobs is not None:
        path = blobs.verified(descriptor.digest, descriptor.size)
        if path is not None:
            with contextlib.suppress(CrossdockError, OSError):
                return parse(path.read_bytes())
    found = fetch()
    if blobs is not None:
        with contextlib.suppress(OSError):  # a read-only or full cache costs speed only
            blobs.keep_bytes(found.raw, descriptor.digest)
    return found


def pull_layers(
    client: RegistryClient,
    repository: Reference,
    layers: Sequence[Descriptor],
    blobs: BlobCache,
    *,
    on_bytes: Callable[[int], object] | None = None,
) -> tuple[BlobSource, ...]:
    """``layers`` from ``repository``, verified and cached by digest; each remembers the
    repository it came from, so a push to the same registry can mount it. ``on_bytes`` hears
    of the bytes downloaded (progress)."""
    origin = f"{repository.registry}/{repository.repository}"

    def download(desc: Descriptor, dest: Path) -> Path:
        return client.fetch_blob(repository, desc, dest, on_bytes=on_bytes)

    return tuple(BlobSource(desc, blobs.ensure(desc, download), origin) for desc in layers)


def _pull_layers_shown(
    client: RegistryClient,
    repository: Reference,
    manifest: Manifest,
    blobs: BlobCache,
    pulling: Step | None,
) -> tuple[tuple[BlobSource, ...], bool]:
    """The layers of ``manifest``, and whether every one was cached already; ``pulling`` is
    told the bytes still to download, then hears of them."""
    missing = [desc for desc in manifest.layers if not blobs.has(desc)]
    if pulling is not None:
        pulling.add_total(sum(desc.size for desc in missing))
    layers = pull_layers(
        client,
        repository,
        manifest.layers,
        blobs,
        on_bytes=pulling.advance if pulling is not None else None,
    )
    return layers, not missing
