"""Software bills of materials: per platform, from what was installed.

``inventory`` reads what an image holds (the wheels crossdock installed, with the lock's hashes
and each METADATA's license; the base's OS packages from dpkg's status or the rpm database);
``document`` writes it as CycloneDX 1.6 JSON. Attaching it to the image as an OCI 1.1 referrer
is the outputs' job (``image.referrer``, ``registry.referrers``, the OCI layout writer).
"""

from crossdock.sbom.attach import SBOM_PLATFORM_ANNOTATION, base_os_packages, sbom_referrer
from crossdock.sbom.document import SBOM_ARTIFACT_TYPE, sbom_document
from crossdock.sbom.inventory import (
    OsInventory,
    OsPackage,
    PythonPackage,
    python_packages,
)
from crossdock.sbom.ospackages import read_os_packages

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
