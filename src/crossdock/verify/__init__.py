"""``crossdock verify``: prove that every native binary in an image fits its platform, its
glibc and its Python, whatever built the image.

Public API: ``verify_image`` (one platform, given its config and layer files),
``verify_platform_image`` (one ``PlatformImage``), ``verify_image_set`` (a build's result), the
report types and their renderings. ``crossdock.sources`` reads the images to verify from a
registry, an OCI layout, a ``docker save`` tarball or the docker daemon.
"""

from crossdock.verify.engine import (
    verify_base,
    verify_fs,
    verify_image,
    verify_image_set,
    verify_platform_image,
)
from crossdock.verify.report import (
    AllowRule,
    Check,
    FileRef,
    Finding,
    PlatformReport,
    Requirement,
    render_reports,
    reports_to_json,
)

__all__ = [
    "AllowRule",
    "Check",
    "FileRef",
    "Finding",
    "PlatformReport",
    "Requirement",
    "render_reports",
    "reports_to_json",
    "verify_base",
    "verify_fs",
    "verify_image",
    "verify_image_set",
    "verify_platform_image",
]
