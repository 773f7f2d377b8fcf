"""Finding the SBOMs attached to an image again: in a registry (referrers API, else the
referrers tag schema) or in an OCI layout (index.json lists them beside the images)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crossdock.errors import ConfigError, NotFoundError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.manifest import Index, Manifest, parse_manifest_or_index
from crossdock.platform import Platform
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Mirrors, Reference
from crossdock.registry.referrers import list_referrers
from crossdock.sbom.document import SBOM_ARTIFACT_TYPE
from crossdock.sources.oci_layout import read_bounded, read_layout_blob, read_oci_layout
from crossdock.sources.registry import read_image_set
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


# -- registry ---------------------------------------------------------------------------------


def _from_registry(ref: Reference, platforms: Sequence[Platform]) -> list[FoundSbom]:
    found: list[FoundSbom] = []
    with RegistryClient(ref.registry) as client:
        top = client.get_manifest(ref)
        # Manifests and configs: the images' layers are not needed to find their SBOMs.
        for image in read_image_set(client, ref, top, None, platforms=platforms).images:
            manifest, platform = image.manifest, image.platform
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
    # Manifests and configs: the images' layers are not needed to find their SBOMs.
    images = [
        image
        for found in read_oci_layout(root, tag=tag, platforms=platforms, layers=False)
        for image in found.images
    ]
    artifacts: dict[Digest, list[Descriptor]] = {}
    for desc in Index.parse(read_bounded(root / "index.json")).manifests:
        if desc.artifact_type != SBOM_ARTIFACT_TYPE:
            continue
        document = parse_manifest_or_index(read_layout_blob(root, desc), desc.media_type)
        if isinstance(document, Manifest) and document.subject is not None:
            artifacts.setdefault(document.subject.digest, []).append(desc)
    found: list[FoundSbom] = []
    for image in images:
        candidates = artifacts.get(image.digest)
        if not candidates:
            continue
        chosen = _newest(candidates)
        artifact = parse_manifest_or_index(read_layout_blob(root, chosen), chosen.media_type)
        if not isinstance(artifact, Manifest) or not artifact.layers:
            continue
        _check_size(artifact.layers[-1])
        content = read_layout_blob(root, artifact.layers[-1])
        found.append(FoundSbom(image.platform, image.digest, chosen.digest, content))
    return found
