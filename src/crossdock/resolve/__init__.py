"""Dependency resolution for a target platform: a uv project's lock, installed binary-only.

``resolve()`` is the one call a builder needs; ``export_locked()`` + ``install()`` split it so a
cache can be consulted between the two (``LockedExport.cache_key``).
"""

from __future__ import annotations

from crossdock.resolve.resolution import InstalledDistribution, Resolution
from crossdock.resolve.shebangs import rewrite_shebangs
from crossdock.resolve.uv import LockedExport, Uv, export_locked, install, resolve
from crossdock.resolve.wheeltags import (
    WheelTarget,
    manylinux_platform_tags,
    uv_python_platform,
    wheel_arch,
    wheel_target,
)

__all__ = [
    "InstalledDistribution",
    "LockedExport",
    "Resolution",
    "Uv",
    "WheelTarget",
    "export_locked",
    "install",
    "manylinux_platform_tags",
    "resolve",
    "rewrite_shebangs",
    "uv_python_platform",
    "wheel_arch",
    "wheel_target",
]
