"""One platform image's SBOM, as the OCI 1.1 referrer a build attaches to it."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.utils import NormalizedName

from crossdock.cache import Records
from crossdock.image.digest import Digest
from crossdock.image.manifest import Manifest
from crossdock.image.referrer import Referrer, make_referrer
from crossdock.platform import Platform
from crossdock.resolve.lockfile import LockedPackage
from crossdock.resolve.resolution import InstalledDistribution
from crossdock.rootfs.fsview import LayerFS
from crossdock.sbom.document import SBOM_ARTIFACT_TYPE, sbom_document
from crossdock.sbom.inventory import OsInventory, python_packages
from crossdock.sbom.ospackages import read_os_packages

__all__ = ["SBOM_PLATFORM_ANNOTATION", "base_os_packages", "sbom_referrer"]

# On the SBOM's manifest: which platform's image it describes (readable without the subject).
SBOM_PLATFORM_ANNOTATION = "dev.crossdock.sbom.platform"
_CREATED = "org.opencontainers.image.created"


def base_os_packages(
    layer_paths: Sequence[Path],
    layer_digests: Sequence[Digest],
    *,
    records: Records | None = None,
    record_key: str | None = None,
    index_cache: Path | None = None,
) -> OsInventory:
    """The OS packages of a base image, kept in ``records`` under ``record_key`` (a base is
    immutable: key it by its manifest digest). ``index_cache``: crossdock's cache folder."""
    if records is not None and record_key is not None:
        cached = records.load(record_key, OsInventory.from_json)
        if cached is not None:
            return cached
    inventory = read_os_packages(LayerFS(layer_paths, layer_digests, index_cache=index_cache))
    if records is not None and record_key is not None:
        records.store(record_key, inventory.to_json())
    return inventory


def sbom_referrer(
    *,
    image_name: str,
    manifest: Manifest,
    platform: Platform,
    created: str,
    tree: Path,
    distributions: Sequence[InstalledDistribution],
    lock: Mapping[tuple[NormalizedName, str], LockedPackage],
    os_packages: OsInventory,
    base_name: str,
    base_digest: Digest,
) -> Referrer:
    """The SBOM of the image ``manifest`` names, as a referrer whose subject is that manifest."""
    document = sbom_document(
        image_name=image_name,
        manifest_digest=manifest.digest,
        platform=platform,
        created=datetime.datetime.fromisoformat(created.replace("Z", "+00:00")),
        python=python_packages(tree, distributions, lock),
        os_packages=os_packages,
        base_name=base_name,
        base_digest=base_digest,
    )
    return make_referrer(
        manifest.descriptor(),
        SBOM_ARTIFACT_TYPE,
        SBOM_ARTIFACT_TYPE,
        document,
        {_CREATED: created, SBOM_PLATFORM_ANNOTATION: str(platform)},
    )
