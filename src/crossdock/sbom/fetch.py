"""Finding the SBOMs attached to an image again: in a registry (referrers API, else the
referrers tag schema) or in an OCI layout (index.json lists them beside the images)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crossdock.errors import ConfigError, UnsafeContentError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.document import MAX_ARTIFACT_BYTES
from crossdock.image.manifest import Index, Manifest, parse_manifest_or_index
from crossdock.platform import Platform
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Mirrors, Reference
from crossdock.registry.referrers import list_referrers
from crossdock.sbom.document import SBOM_ARTIFACT_TYPE
from crossdock.sources.oci_layout import read_bounded, read_layout_blob, read_oci_layout
from crossdock.sources.registry import read_image_set
from crossdock.transports import OciLayout, Registry, parse_image_name

__all__ = ["FoundSbom", "fetch_sbom", "find_sboms"]


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
            document = fetch_sbom(client, ref, artifact.layers[-1], platform)
            found.append(FoundSbom(platform, manifest.digest, chosen.digest, document))
    return found


def fetch_sbom(
    client: RegistryClient, ref: Reference, layer: Descriptor, platform: Platform
) -> bytes:
    """The SBOM document ``layer`` of an artifact in ``ref``'s repository: refused before it
    is fetched when it announces more than crossdock reads of an artifact, verified after."""
    _check_size(layer, platform, where=str(ref))
    return client.fetch_blob_bytes(ref, layer, limit=MAX_ARTIFACT_BYTES)


def _newest(artifacts: Sequence[Descriptor]) -> Descriptor:
    """The latest attached (by its ``created`` annotation; listing order breaks ties)."""
    return max(
        enumerate(artifacts),
        key=lambda item: (item[1].annotations.get("org.opencontainers.image.created", ""), item[0]),
    )[1]


def _check_size(layer: Descriptor, platform: Platform, *, where: str) -> None:
    """One bound for every SBOM read (``MAX_ARTIFACT_BYTES``, the readers' own bound too)."""
    if layer.size > MAX_ARTIFACT_BYTES:
        raise UnsafeContentError(
            f"the SBOM of {platform} in {where} ({layer.digest}) is {layer.size} bytes, more "
            f"than the {MAX_ARTIFACT_BYTES // (1024 * 1024)} MiB crossdock reads of an SBOM",
            hint="crossdock did not write it (its SBOMs are a few hundred KB); read it with "
            "another tool (oras, skopeo)",
        )


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
        _check_size(artifact.layers[-1], image.platform, where=f"oci:{root}")
        content = read_layout_blob(root, artifact.layers[-1], MAX_ARTIFACT_BYTES)
        found.append(FoundSbom(image.platform, image.digest, chosen.digest, content))
    return found
