"""Software bills of materials: per platform, from what was installed.

``inventory`` reads what an image holds (the wheels crossdock installed, with the lock's hashes
and each METADATA's license; the base's OS packages from dpkg's status or the rpm database);
``document`` writes it as CycloneDX 1.6 JSON. Attaching it to the image as an OCI 1.1 referrer
is the outputs' job (``image.referrer``, ``registry.referrers``, the OCI layout writer).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossdock.sbom.attach import SBOM_PLATFORM_ANNOTATION, base_os_packages, sbom_referrer
    from crossdock.sbom.document import SBOM_ARTIFACT_TYPE, sbom_document
    from crossdock.sbom.inventory import (
        OsInventory,
        OsPackage,
        PythonPackage,
        python_packages,
    )
    from crossdock.sbom.ospackages import read_os_packages

# Each name is imported from its module when first used: writing a document needs the CycloneDX
# library (a tenth of a second to import), and a build whose SBOM is reused needs none of it.
_MODULES = {
    "SBOM_ARTIFACT_TYPE": "document",
    "SBOM_PLATFORM_ANNOTATION": "attach",
    "OsInventory": "inventory",
    "OsPackage": "inventory",
    "PythonPackage": "inventory",
    "base_os_packages": "attach",
    "python_packages": "inventory",
    "read_os_packages": "ospackages",
    "sbom_document": "document",
    "sbom_referrer": "attach",
}

__all__ = [
    "SBOM_ARTIFACT_TYPE",
    "SBOM_PLATFORM_ANNOTATION",
    "OsInventory",
    "OsPackage",
    "PythonPackage",
    "base_os_packages",
    "python_packages",
    "read_os_packages",
    "sbom_document",
    "sbom_referrer",
]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - whatever the named module defines
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
