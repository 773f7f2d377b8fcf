"""Running an image with the local docker daemon: how long a start may take here, and how a
container that failed is reported; the docker driver itself (pull, start, watch, read logs,
stop) is ``crossdock.dockercli``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossdock.errors import TargetError
from crossdock.platform import Platform, host_platform
from crossdock.text import excerpt

if TYPE_CHECKING:
    from crossdock.dockercli import Container, Docker

__all__ = ["LOG_TAIL", "default_start_timeout", "failure_with_logs"]

# Lines of the container's log quoted in an error.
LOG_TAIL = 30

# How long a Python service may take to start. Under QEMU every instruction is emulated and the
# dependencies' modules are compiled to bytecode at import (images carry no .pyc): measured on
# the 2-core stage, the example Lambda handler needs ~30 s (amd64: ~1 s) to import awslambdaric
# and ~170 s to import numpy, pillow, cryptography and pydantic.
_NATIVE_START_TIMEOUT_S = 120.0
_EMULATED_START_TIMEOUT_S = 600.0


def default_start_timeout(platform: Platform) -> float:
    """Seconds to wait for an image of ``platform`` to start on this host."""
    if platform.architecture == host_platform().architecture:
        return _NATIVE_START_TIMEOUT_S
    return _EMULATED_START_TIMEOUT_S


def failure_with_logs(
    docker: Docker, container: Container, message: str, *, hint: str
) -> TargetError:
    """A TargetError saying ``message``, then the last ``LOG_TAIL`` lines ``container`` wrote
    (what the service or handler said before it failed)."""
    logs = excerpt(docker.logs(container, tail=LOG_TAIL), 3000, end=True)
    return TargetError(
        f"{message}; last {LOG_TAIL} lines of container {container.short_id}: "
        f"{logs or '(the container wrote nothing)'}",
        hint=hint,
    )
