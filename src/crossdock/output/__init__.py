"""Writing a built ImageSet somewhere other than a registry: an OCI layout or a docker archive."""

from crossdock.output.destination import check_writable
from crossdock.output.docker_archive import write_docker_archive
from crossdock.output.oci_layout import write_oci_layout

__all__ = ["check_writable", "write_docker_archive", "write_oci_layout"]
