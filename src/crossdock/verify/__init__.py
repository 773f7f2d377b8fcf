"""``crossdock verify``: prove that every native binary in an image fits its platform, its
glibc and its Python, whatever built the image.

Public API: ``verify_image`` (one platform), ``verify_image_set`` (a build's result), the report
types and their renderings; ``verify.sources`` loads images from a registry, an OCI layout or a
``docker save`` tarball.
"""

from crossdock.verify.engine import verify_fs, verify_image, verify_image_set
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
    "verify_fs",
    "verify_image",
    "verify_image_set",
]
