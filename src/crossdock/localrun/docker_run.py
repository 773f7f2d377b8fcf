"""Running an image with the local docker daemon: how long a start may take here; the docker
driver itself (pull, start, watch, read logs, stop) is ``crossdock.dockercli``.
"""

from __future__ import annotations

from crossdock.platform import Platform, host_platform

__all__ = ["default_start_timeout"]

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
