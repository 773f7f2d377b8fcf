"""Finding the SBOMs attached to an image again: in a registry (referrers API, else the
referrers tag schema) or in an OCI layout (index.json lists them beside the images)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossdock.errors import ConfigError, NotFoundError
from crossdock.image.config import ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.manifest import Index, Manifest, parse_manifest_or_index
from crossdock.platform import Platform
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Mirrors, Reference
from crossdock.registry.referrers import list_referrers
from crossdock.sbom.document import SBOM_ARTIFACT_TYPE
from crossdock.sources.oci_layout import REF_NAME, read_bounded, read_layout_blob
from crossdock.transports import OciLayout, Registry, parse_image_name

__all__ = ["FoundSbom", "find_sboms"]

# An SBOM larger than this is not one crossdock wrote (the example's is ~100 KB).
_MAX_SBOM = 64 * 1024 * 1024


@dataclass(frozen=True)
class FoundSbom:
    platform: Platform
    subject: Digest  # the platform manifest it describes
    artifact: Digest  # the SBOM's own manifest
    document: bytes


def find_sboms(
    name: str, *, platforms: Sequence[Platform] = (), mirrors: Mirrors | None = None
) -> list[FoundSbom]:
    """The SBOM of each platform image of ``name`` (a registry reference or ``oci:DIR``)."""
    match parse_image_name(name):
        case Registry(reference=ref):
            return _from_registry(mirrors.apply(ref) if mirrors else ref, platforms)
        case OciLayout(path=path, tag=tag):
            return _from_layout(path, tag, platforms)
        case other:
            raise ConfigError(
                f"{other}: SBOMs are attached to images in a registry or an OCI layout",
                hint="pass REGISTRY/REPO:TAG or oci:DIR",
            )


def _wanted(platform: Platform, platforms: Sequence[Platform]) -> bool:
    if platform.os == "unknown":
        return False
    return not platforms or any(
        p.matches(platform.os, platform.architecture, platform.variant) for p in platforms
    )


# -- registry ---------------------------------------------------------------------------------


def _from_registry(ref: Reference, platforms: Sequence[Platform]) -> list[FoundSbom]:
    found: list[FoundSbom] = []
    with RegistryClient(ref.registry) as client:
        top = client.get_manifest(ref)
        for manifest, platform in _registry_images(client, ref, top):
            if not _wanted(platform, platforms):
                continue
            artifacts = list_referrers(client, ref, manifest.digest, SBOM_ARTIFACT_TYPE)
            if not artifacts:
                continue
            chosen = _newest(artifacts)
            artifact = client.get_manifest(ref.with_digest(chosen.digest))
            if not isinstance(artifact, Manifest) or not artifact.layers:
                continue
            layer = artifact.layers[-1]
            _check_size(layer)
            found.append(
                FoundSbom(
                    platform, manifest.digest, chosen.digest, client.fetch_blob_bytes(ref, layer)
                )
            )
    return found


def _registry_images(
    client: RegistryClient, ref: Reference, top: Manifest | Index
) -> Iterator[tuple[Manifest, Platform]]:
    if isinstance(top, Manifest):
        config = ImageConfig.parse(client.fetch_blob_bytes(ref, top.config))
        yield top, config.platform
        return
    for desc in top.manifests:
        if desc.platform is None:
            continue
        child = client.get_manifest(ref.with_digest(desc.digest))
        if isinstance(child, Manifest):
            yield child, desc.platform


def _newest(artifacts: Sequence[Descriptor]) -> Descriptor:
    """The latest attached (by its ``created`` annotation; listing order breaks ties)."""
    return max(
        enumerate(artifacts),
        key=lambda item: (item[1].annotations.get("org.opencontainers.image.created", ""), item[0]),
    )[1]


def _check_size(layer: Descriptor) -> None:
    if layer.size > _MAX_SBOM:
        raise NotFoundError(f"the SBOM blob {layer.digest} is {layer.size} bytes; not ours")


# -- OCI layout -------------------------------------------------------------------------------


def _from_layout(root: Path, tag: str | None, platforms: Sequence[Platform]) -> list[FoundSbom]:
    index_path = root / "index.json"
    if not index_path.is_file():
        raise ConfigError(f"{root} is not an OCI image layout (no index.json)")
    listed = Index.parse(read_bounded(index_path)).manifests
    artifacts: dict[Digest, list[Descriptor]] = {}
    for desc in listed:
        if desc.artifact_type != SBOM_ARTIFACT_TYPE:
            continue
        document = parse_manifest_or_index(read_layout_blob(root, desc), desc.media_type)
        if isinstance(document, Manifest) and document.subject is not None:
            artifacts.setdefault(document.subject.digest, []).append(desc)
    images = [
        d
        for d in listed
        if d.artifact_type is None and (tag is None or d.annotations.get(REF_NAME) == tag)
    ]
    found: list[FoundSbom] = []
    for manifest, platform in _layout_images(root, images):
        candidates = artifacts.get(manifest.digest)
        if not candidates or not _wanted(platform, platforms):
            continue
        chosen = _newest(candidates)
        artifact = parse_manifest_or_index(read_layout_blob(root, chosen), chosen.media_type)
        if not isinstance(artifact, Manifest) or not artifact.layers:
            continue
        _check_size(artifact.layers[-1])
        content = read_layout_blob(root, artifact.layers[-1])
        found.append(FoundSbom(platform, manifest.digest, chosen.digest, content))
    return found


def _layout_images(
    root: Path, entries: Sequence[Descriptor]
) -> Iterator[tuple[Manifest, Platform]]:
    for desc in entries:
        document = parse_manifest_or_index(read_layout_blob(root, desc), desc.media_type)
        if isinstance(document, Index):
            yield from _layout_images(root, [d for d in document.manifests if d.platform])
        elif document.artifact_type is None:
            platform = (
                desc.platform or ImageConfig.parse(read_layout_blob(root, document.config)).platform
            )
            yield document, platform
