"""One platform image's SBOM, as the OCI 1.1 referrer a build attaches to it.

The document of a rebuild whose dependencies did not change (a code-only change) differs from
the last one only in the image's manifest digest (the root component's version, and the serial
number derived from it). So the document is written once with a stand-in digest (a template),
kept by everything else it is made from, and each image gets the template with its own digest
filled in: the bytes the library writes for that digest (tests compare the two), without
importing or running it again.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import re
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.utils import NormalizedName

from crossdock._version import __version__
from crossdock.cache import CacheLayout, Records
from crossdock.image.artifact import PlatformImage
from crossdock.image.digest import Digest
from crossdock.image.manifest import Manifest
from crossdock.image.mediatypes import MediaType
from crossdock.image.referrer import Referrer, make_referrer
from crossdock.platform import Platform
from crossdock.resolve.lockfile import LockedPackage
from crossdock.resolve.resolution import InstalledDistribution
from crossdock.rootfs.fsview import LayerFS
from crossdock.sbom.inventory import OsInventory, python_packages
from crossdock.sbom.ospackages import read_os_packages

__all__ = ["SBOM_PLATFORM_ANNOTATION", "base_os_packages", "sbom_referrer"]

# On the SBOM's manifest: which platform's image it describes (readable without the subject).
SBOM_PLATFORM_ANNOTATION = "dev.crossdock.sbom.platform"
_CREATED = "org.opencontainers.image.created"
# The stand-in for the image's manifest digest in a template (no image has it).
_STAND_IN = Digest("sha256:" + "0" * 64)
# Bump when what a template holds, or what its key covers, changes.
_TEMPLATE_VERSION = 1


def base_os_packages(
    base: PlatformImage, cache_dir: Path, *, fs: LayerFS | None = None
) -> OsInventory:
    """The OS packages of a base image, kept in crossdock's cache folder ``cache_dir`` by its
    manifest digest (a base is immutable). ``fs``: the view of its layers when the caller has
    one (the package files it kept while indexing are read from memory)."""

    def read_layers() -> OsInventory:
        view = fs or LayerFS(
            [blob.path for blob in base.layers],
            [blob.descriptor.digest for blob in base.layers],
            index_cache=cache_dir,
        )
        return read_os_packages(view)

    return (
        CacheLayout(cache_dir)
        .records("base-os-packages", version=1)
        .load_or_store(base.digest.dashed, OsInventory.from_json, read_layers, OsInventory.to_json)
    )


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
    templates: Records | None = None,
    tree_key: str | None = None,
) -> Referrer:
    """The SBOM of the image ``manifest`` names, as a referrer whose subject is that manifest.
    With ``templates`` and ``tree_key`` (the content key of ``tree``: the same key, the same
    files), the document's template is kept and reused (see the module's doc)."""
    key = None
    if templates is not None and tree_key is not None:
        key = _template_key(
            image_name=image_name,
            platform=platform,
            created=created,
            tree_key=tree_key,
            distributions=distributions,
            lock=lock,
            os_packages=os_packages,
            base_name=base_name,
            base_digest=base_digest,
        )

    def document_for(subject: Digest) -> bytes:
        return _document(
            image_name,
            subject,
            platform,
            created,
            tree,
            distributions,
            lock,
            os_packages,
            base_name,
            base_digest,
        )

    template = templates.load(key, _text) if templates is not None and key is not None else None
    if template is None:
        template = document_for(_STAND_IN).decode()
        if templates is not None and key is not None:
            templates.store(key, template)
    document = _filled(template, manifest.digest)
    if document is None:  # a stand-in not found once each: written for this digest instead
        document = document_for(manifest.digest)
    return make_referrer(
        manifest.descriptor(),
        MediaType.CYCLONEDX_JSON,
        MediaType.CYCLONEDX_JSON,
        document,
        {_CREATED: created, SBOM_PLATFORM_ANNOTATION: str(platform)},
    )


def _document(  # noqa: PLR0917 - private, the document's inputs
    image_name: str,
    manifest_digest: Digest,
    platform: Platform,
    created: str,
    tree: Path,
    distributions: Sequence[InstalledDistribution],
    lock: Mapping[tuple[NormalizedName, str], LockedPackage],
    os_packages: OsInventory,
    base_name: str,
    base_digest: Digest,
) -> bytes:
    from crossdock.sbom.document import sbom_document

    return sbom_document(
        image_name=image_name,
        manifest_digest=manifest_digest,
        platform=platform,
        created=datetime.datetime.fromisoformat(created.replace("Z", "+00:00")),
        python=python_packages(tree, distributions, lock),
        os_packages=os_packages,
        base_name=base_name,
        base_digest=base_digest,
    )


def _serial(digest: Digest) -> str:
    """The document's serial number for an image (sbom_document derives it the same way)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"crossdock-sbom:{digest}"))


def _filled(template: str, digest: Digest) -> bytes | None:
    """The template with the image's digest (and the serial number derived from it) in place of
    the stand-in's; None unless each stand-in occurs exactly once."""
    stand_ins = ((str(_STAND_IN), str(digest)), (_serial(_STAND_IN), _serial(digest)))
    for old, _ in stand_ins:
        if template.count(old) != 1:
            return None
    for old, new in stand_ins:
        template = template.replace(old, new)
    return template.encode()


def _text(payload: object) -> str:
    if not isinstance(payload, str):
        raise TypeError("an SBOM template is text")
    return payload


def _template_key(
    *,
    image_name: str,
    platform: Platform,
    created: str,
    tree_key: str,
    distributions: Sequence[InstalledDistribution],
    lock: Mapping[tuple[NormalizedName, str], LockedPackage],
    os_packages: OsInventory,
    base_name: str,
    base_digest: Digest,
) -> str:
    material = [
        _TEMPLATE_VERSION,
        __version__,
        # The libraries that write the document and its license expressions.
        *(_version_of(name) for name in ("cyclonedx-python-lib", "license-expression")),
        image_name,
        str(platform),
        created,
        tree_key,
        [repr(d) for d in distributions],
        [repr(lock.get((d.name, d.version))) for d in distributions],
        os_packages.to_json(),
        base_name,
        str(base_digest),
    ]
    encoded = json.dumps(material, sort_keys=True, default=repr).encode()
    return hashlib.sha256(encoded).hexdigest()


@functools.cache  # the libraries do not change while crossdock runs
def _version_of(distribution: str) -> str:
    """``importlib.metadata.version(distribution)``, or "absent". Found here in the usual case
    (a ``NAME-VERSION.dist-info`` folder in a folder of sys.path, the first that has one, as
    importlib.metadata searches them): importlib.metadata indexes every distribution of every
    folder first, ~30 ms of a code-only rebuild's SBOM (issue 14); anything else is asked of it."""
    wanted = _normalized(distribution)
    for entry in sys.path:
        folder = Path(entry or ".")
        if folder.is_file():  # a zip archive on sys.path: importlib.metadata reads those
            return _version_from_importlib(distribution)
        try:
            names = [child.name for child in folder.iterdir()]
        except OSError:
            continue
        found = [
            name
            for name in names
            if name.lower().endswith((".dist-info", ".egg-info"))
            and _normalized(name.lower().rpartition(".")[0].partition("-")[0]) == wanted
        ]
        if not found:
            continue
        version = None
        if found[0].lower().endswith(".dist-info"):
            version = _metadata_version(folder / found[0] / "METADATA")
        return version or _version_from_importlib(distribution)
    return "absent"


def _normalized(name: str) -> str:
    """A distribution's name as importlib.metadata compares them (its ``Prepared.normalize``)."""
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _metadata_version(path: Path) -> str | None:
    """The ``Version`` header of a METADATA file (the headers end at the first empty line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if not line:
            break
        field, colon, value = line.partition(":")
        if colon and field.strip().lower() == "version":
            return value.strip() or None
    return None


def _version_from_importlib(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"
