"""Dependency resolution for a target platform: a uv project's lock, installed binary-only.

``install_dependencies()`` is the one call a builder needs: it checks the lock and returns an
installed tree from a content-addressed cache. ``resolve()`` installs into a given folder;
``export_locked()`` + ``install()`` split that so a cache can be consulted between the two
(``LockedExport.cache_key``). ``install_local_projects()`` builds the service's own packages
(the project, the workspace members it needs) into pure wheels and installs them.
"""

from __future__ import annotations

from crossdock.resolve.bytecode import (
    BytecodePython,
    bytecode_python,
    compile_bytecode,
    find_host_python,
    prepare_compiler,
)
from crossdock.resolve.cache import install_dependencies
from crossdock.resolve.localprojects import install_local_projects
from crossdock.resolve.resolution import InstalledDistribution, Resolution
from crossdock.resolve.shebangs import rewrite_shebangs
from crossdock.resolve.uv import LockedExport, Uv, check_lock, export_locked, install, resolve

__all__ = [
    "BytecodePython",
    "InstalledDistribution",
    "LockedExport",
    "Resolution",
    "Uv",
    "bytecode_python",
    "check_lock",
    "compile_bytecode",
    "export_locked",
    "find_host_python",
    "install",
    "install_dependencies",
    "install_local_projects",
    "prepare_compiler",
    "resolve",
    "rewrite_shebangs",
]
