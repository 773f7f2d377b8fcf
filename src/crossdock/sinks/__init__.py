"""Where a built ImageSet goes: an OCI layout, a docker archive, or a registry (tags last).

Names are loaded on first use (PEP 562, as in ``crossdock.registry``): a build written to an
OCI layout, or answered from its record, does not import the registry push and its logging
(issue 14: a no-op or code-only rebuild's start-up)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossdock.lazy import lazy_names

if TYPE_CHECKING:
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

_WHERE = {
    "PushEvent": "crossdock.sinks.registry",
    "PushReport": "crossdock.sinks.registry",
    "check_writable": "crossdock.sinks.destination",
    "push_image_set": "crossdock.sinks.registry",
    "write_docker_archive": "crossdock.sinks.docker_archive",
    "write_oci_layout": "crossdock.sinks.oci_layout",
}


__getattr__ = lazy_names(__name__, _WHERE)
