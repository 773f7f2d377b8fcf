"""Where a built ImageSet goes: an OCI layout, a docker archive, or a registry (tags last)."""

from crossdock.sinks.destination import check_writable
from crossdock.sinks.docker_archive import write_docker_archive
from crossdock.sinks.oci_layout import write_oci_layout
from crossdock.sinks.registry import PushEvent, PushReport, push_image_set

__all__ = [
    "PushEvent",
    "PushReport",
    "check_writable",
    "push_image_set",
    "write_docker_archive",
    "write_oci_layout",
]
