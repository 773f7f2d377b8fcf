"""The build plan: everything a backend needs, decided before any work starts.

A backend receives a complete, printable plan and never reads configuration, the environment or
the command line (Jib's build-plan / executor split). ``crossdock plan`` prints it.

Entrypoint and command may hold ``{python}``: the base image's interpreter path is only known
once the base is read, and the backend fills it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossdock.platform import Platform
from crossdock.registry.reference import Reference

__all__ = ["PYTHON_PLACEHOLDER", "BuildPlan", "RuntimeSettings"]

PYTHON_PLACEHOLDER = "{python}"


@dataclass(frozen=True)
class RuntimeSettings:
    """How the image runs: what goes into the image config's ``config`` member."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None
    exposed_ports: tuple[int, ...] = ()
    # Prepended to the base image's PATH (console scripts of the dependencies).
    path_prepend: tuple[str, ...] = ()

    def with_python(self, python: str) -> RuntimeSettings:
        """These settings with ``{python}`` replaced by the image's interpreter path."""

        def fill(args: tuple[str, ...] | None) -> tuple[str, ...] | None:
            return (
                None if args is None else tuple(a.replace(PYTHON_PLACEHOLDER, python) for a in args)
            )

        return RuntimeSettings(
            fill(self.entrypoint),
            fill(self.cmd),
            self.env,
            self.working_dir,
            self.user,
            self.exposed_ports,
            self.path_prepend,
        )


@dataclass(frozen=True)
class BuildPlan:
    service: str
    service_dir: Path
    base: Reference
    # The reference actually pulled: ``base`` after registry mirrors.
    base_pull: Reference
    platforms: tuple[Platform, ...]
    target: str
    app_dir: str
    deps_dir: str
    runtime: RuntimeSettings
    # Lambda refuses image indexes: such targets get one manifest per platform, no index.
    single_manifests: bool
    exclude: tuple[str, ...]
    annotations: Mapping[str, str]
    cache_dir: Path
    mtime: int

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "service_dir": str(self.service_dir),
            "base": str(self.base),
            "base_pull": str(self.base_pull),
            "platforms": [str(p) for p in self.platforms],
            "target": self.target,
            "app_dir": self.app_dir,
            "deps_dir": self.deps_dir,
            "entrypoint": None if self.runtime.entrypoint is None else list(self.runtime.entrypoint),
            "cmd": None if self.runtime.cmd is None else list(self.runtime.cmd),
            "env": dict(self.runtime.env),
            "working_dir": self.runtime.working_dir,
            "user": self.runtime.user,
            "exposed_ports": list(self.runtime.exposed_ports),
            "single_manifests": self.single_manifests,
            "exclude": list(self.exclude),
            "annotations": dict(self.annotations),
            "cache_dir": str(self.cache_dir),
            "mtime": self.mtime,
        }
