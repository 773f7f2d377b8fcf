"""The workspace's shared library."""

import platform


def answer(service):
    return {
        "shape": "workspace",
        "service": service,
        "machine": platform.machine(),
        "library": __file__,
    }
