"""Media types, spelled as the OCI image spec and Docker's distribution spec spell them."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "DOCKER_MANIFEST_TYPES",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "OCI_MANIFEST_TYPES",
    "MediaType",
    "family_of",
]


class MediaType(StrEnum):
    OCI_INDEX = "application/vnd.oci.image.index.v1+json"
    OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
    OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
    OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
    OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
    DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
    DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    IN_TOTO = "application/vnd.in-toto+json"
    # OCI 1.1 artifacts: the empty config blob ("{}") and the SBOM format crossdock attaches.
    OCI_EMPTY = "application/vnd.oci.empty.v1+json"
    CYCLONEDX_JSON = "application/vnd.cyclonedx+json"


INDEX_TYPES = frozenset({MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST})
OCI_MANIFEST_TYPES = frozenset({MediaType.OCI_MANIFEST})
DOCKER_MANIFEST_TYPES = frozenset({MediaType.DOCKER_MANIFEST})
MANIFEST_TYPES = OCI_MANIFEST_TYPES | DOCKER_MANIFEST_TYPES


class _Family:
    """The media types one family (OCI or Docker) uses for each role."""

    def __init__(
        self, index: MediaType, manifest: MediaType, config: MediaType, layer_gzip: MediaType
    ) -> None:
        self.index = index
        self.manifest = manifest
        self.config = config
        self.layer_gzip = layer_gzip


OCI = _Family(
    MediaType.OCI_INDEX, MediaType.OCI_MANIFEST, MediaType.OCI_CONFIG, MediaType.OCI_LAYER_GZIP
)
DOCKER = _Family(
    MediaType.DOCKER_MANIFEST_LIST,
    MediaType.DOCKER_MANIFEST,
    MediaType.DOCKER_CONFIG,
    MediaType.DOCKER_LAYER_GZIP,
)


def family_of(media_type: str) -> _Family:
    """The family of a manifest or index media type, so new images are typed like their base."""
    if media_type in (MediaType.DOCKER_MANIFEST, MediaType.DOCKER_MANIFEST_LIST):
        return DOCKER
    return OCI
