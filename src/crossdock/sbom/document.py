"""The SBOM document: CycloneDX 1.6 JSON, written with OWASP's cyclonedx-python-lib.

Why CycloneDX rather than SPDX 2.3: each component carries exactly what crossdock knows in
first-class fields (``purl``, ``hashes``, ``licenses``) plus namespaced ``properties`` for the
rest (built from an sdist, wheel tags, which file a hash is of), with no document-wide
identifiers to invent; its JSON media type (``application/vnd.cyclonedx+json``) is the
``artifactType`` scanners look for among an image's referrers (Trivy, Grype, Docker Scout).

The document is reproducible: its serial number derives from the image manifest's digest, its
timestamp is the image's ``created`` (SOURCE_DATE_EPOCH), and components are sorted.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.utils import canonicalize_name

from crossdock._version import __version__
from crossdock.errors import MalformedError
from crossdock.image.digest import Digest
from crossdock.image.document import load_object, optional, require
from crossdock.image.mediatypes import MediaType
from crossdock.platform import Platform
from crossdock.sbom.inventory import OsInventory, OsPackage, PythonPackage
from crossdock.text import excerpt

__all__ = [
    "SBOM_ARTIFACT_TYPE",
    "image_name_of",
    "os_components_of",
    "python_components_of",
    "python_packages_of",
    "sbom_document",
]

SBOM_ARTIFACT_TYPE = MediaType.CYCLONEDX_JSON
_PROPERTY = "crossdock:"
_PURL_TYPES = {"dpkg": "deb", "rpm": "rpm"}
# license-expression's shared SPDX licensing object is not safe to use from two threads at once
# (platforms build in parallel): unserialized, "MIT OR Apache-2.0" sometimes came out as a
# license *name* instead of an expression, so the same inputs gave two different SBOMs.
_LIBRARY_LOCK = threading.Lock()


def _python_component(package: PythonPackage) -> Component:
    properties = [
        Property(name=f"{_PROPERTY}built-from-sdist", value=str(package.built_from_sdist).lower()),
        Property(name=f"{_PROPERTY}hash-of", value=package.hash_source),
    ]
    if package.wheel_tags:
        properties.append(
            Property(name=f"{_PROPERTY}wheel-tags", value=" ".join(package.wheel_tags))
        )
    return Component(
        name=package.name,
        version=package.version,
        type=ComponentType.LIBRARY,
        bom_ref=f"pypi:{package.name}@{package.version}",
        purl=PackageURL("pypi", None, package.name, package.version),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=h) for h in package.sha256],
        licenses=[LicenseFactory().make_from_string(package.license)] if package.license else [],
        properties=properties,
    )


def _os_component(package: OsPackage, inventory: OsInventory) -> Component:
    distro = inventory.distro or ""
    namespace = distro.split("-", 1)[0] or None
    qualifiers = {k: v for k, v in (("arch", package.architecture), ("distro", distro)) if v}
    purl_type = _PURL_TYPES.get(inventory.kind, "generic")
    arch = f":{package.architecture}" if package.architecture else ""
    properties = [Property(name=f"{_PROPERTY}package-database", value=inventory.kind)]
    if package.source:
        properties.append(Property(name=f"{_PROPERTY}source-package", value=package.source))
    return Component(
        name=package.name,
        version=package.version,
        type=ComponentType.LIBRARY,
        bom_ref=f"{purl_type}:{package.name}@{package.version}{arch}",
        purl=PackageURL(purl_type, namespace, package.name, package.version, qualifiers),
        licenses=[LicenseFactory().make_from_string(package.license)] if package.license else [],
        properties=properties,
    )


def sbom_document(
    *,
    image_name: str,
    manifest_digest: Digest,
    platform: Platform,
    created: datetime.datetime,
    python: Sequence[PythonPackage],
    os_packages: OsInventory,
    base_name: str,
    base_digest: Digest,
) -> bytes:
    """The CycloneDX 1.6 JSON of one platform's image."""
    with _LIBRARY_LOCK:
        bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"crossdock-sbom:{manifest_digest}"))
        bom.metadata.timestamp = created
        bom.metadata.tools.components.add(
            Component(name="crossdock", version=__version__, type=ComponentType.APPLICATION)
        )
        base_properties = [
            Property(name=f"{_PROPERTY}base-digest", value=str(base_digest)),
            Property(
                name=f"{_PROPERTY}os-packages",
                value=(
                    f"{len(os_packages.packages)} read from {os_packages.source}"
                    if os_packages.read
                    else f"not read: {os_packages.note}"
                ),
            ),
        ]
        if os_packages.distro:
            base_properties.append(Property(name=f"{_PROPERTY}distro", value=os_packages.distro))
        base = Component(
            name=base_name,
            version=str(base_digest),
            type=ComponentType.CONTAINER,
            bom_ref="base-image",
            properties=base_properties,
        )
        root = Component(
            name=image_name,
            version=str(manifest_digest),
            type=ComponentType.CONTAINER,
            bom_ref="image",
            properties=[Property(name=f"{_PROPERTY}platform", value=str(platform))],
        )
        bom.metadata.component = root
        python_components = [_python_component(p) for p in python]
        os_components = [_os_component(p, os_packages) for p in os_packages.packages]
        for component in (base, *python_components, *os_components):
            bom.components.add(component)
        bom.register_dependency(root, [base, *python_components])
        bom.register_dependency(base, os_components)
        return JsonV1Dot6(bom).output_as_string(indent=None).encode()


# How errors name a document read back (an image's SBOM is outside data: any tool may have
# attached one of this artifact type); callers add where it came from (image.document.reading).
_WHAT = "the SBOM"


def _components(document: bytes) -> list[dict[str, Any]]:
    return _objects(load_object(document, _WHAT), "components", _WHAT, strict=False)


def _objects(
    data: Mapping[str, Any], key: str, what: str, *, strict: bool = True
) -> list[dict[str, Any]]:
    """The optional list ``data[key]``: its JSON objects (``strict``: nothing else allowed)."""
    items = optional(data, key, list, what) or []
    objects = [item for item in items if isinstance(item, dict)]
    if strict and len(objects) != len(items):
        raise MalformedError(f"{what}: {key!r} must list objects only")
    return objects


def image_name_of(document: bytes) -> str:
    """The name of the image a CycloneDX document describes (``metadata.component.name``)."""
    metadata = require(load_object(document, _WHAT), "metadata", dict, _WHAT)
    component = require(metadata, "component", dict, f"{_WHAT}: metadata")
    return require(component, "name", str, f"{_WHAT}: metadata.component")


def python_components_of(document: bytes) -> list[dict[str, Any]]:
    """The ``pkg:pypi`` components of a CycloneDX JSON document."""
    return [c for c in _components(document) if str(c.get("purl", "")).startswith("pkg:pypi/")]


def os_components_of(document: bytes) -> list[dict[str, Any]]:
    """The OS package components (``pkg:deb``, ``pkg:rpm``) of a CycloneDX JSON document."""
    return [
        c
        for c in _components(document)
        if str(c.get("purl", "")).startswith(("pkg:deb/", "pkg:rpm/"))
    ]


def python_packages_of(document: bytes) -> tuple[PythonPackage, ...]:
    """The Python packages a crossdock CycloneDX document lists, read back (a rebase carries
    them over: the image's own layers do not change)."""
    out: list[PythonPackage] = []
    for component in python_components_of(document):
        what = f"{_WHAT}: component {excerpt(str(component.get('purl')), 200)}"
        properties = {
            require(p, "name", str, what): require(p, "value", str, what)
            for p in _objects(component, "properties", what)
        }
        licenses = _objects(component, "licenses", what)
        license_text = None
        if licenses:
            entry = optional(licenses[0], "license", dict, what) or {}
            license_text = (
                optional(entry, "id", str, what)
                or optional(entry, "name", str, what)
                or optional(licenses[0], "expression", str, what)
            )
        out.append(
            PythonPackage(
                name=canonicalize_name(require(component, "name", str, what)),
                version=require(component, "version", str, what),
                sha256=tuple(
                    require(h, "content", str, what)
                    for h in _objects(component, "hashes", what)
                    if h.get("alg") == "SHA-256"
                ),
                license=license_text,
                built_from_sdist=properties.get(f"{_PROPERTY}built-from-sdist") == "true",
                wheel_tags=tuple(properties.get(f"{_PROPERTY}wheel-tags", "").split()),
                hash_source=properties.get(f"{_PROPERTY}hash-of", ""),
            )
        )
    return tuple(out)
