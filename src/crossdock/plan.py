"""The build plan: everything a backend needs, decided before any work starts.

A backend receives a complete, printable plan and never reads configuration, the environment or
the command line (Jib's build-plan / executor split). ``crossdock plan`` prints it.

Entrypoint and command may hold ``{python}``: the base image's interpreter path is only known
once the base is read, and the backend fills it in.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossdock.errors import TargetError
from crossdock.image.document import checked, digest_value, require
from crossdock.platform import Platform
from crossdock.project import ServiceProject
from crossdock.registry.reference import Reference

__all__ = [
    "PYTHON_PLACEHOLDER",
    "BaseDependentRuntime",
    "BuildPlan",
    "RuntimeSettings",
    "pairs",
    "reference_from_record",
    "reference_record",
]

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

    def to_record(self) -> dict[str, Any]:
        return {
            "entrypoint": _list_or_none(self.entrypoint),
            "cmd": _list_or_none(self.cmd),
            "env": pairs(self.env),
            "working_dir": self.working_dir,
            "user": self.user,
            "exposed_ports": list(self.exposed_ports),
            "path_prepend": list(self.path_prepend),
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> RuntimeSettings:
        return cls(
            entrypoint=_tuple_or_none(data["entrypoint"]),
            cmd=_tuple_or_none(data["cmd"]),
            env=dict(data["env"]),  # [key, value] pairs: in their order
            working_dir=data["working_dir"],
            user=data["user"],
            exposed_ports=tuple(int(p) for p in data["exposed_ports"]),
            path_prepend=tuple(str(p) for p in data["path_prepend"]),
        )


@dataclass(frozen=True)
class BaseDependentRuntime:
    """Runtime settings that depend on the base image, chosen once the base's config is read.

    Made by a target (``TargetSpec.base_dependent_runtime``), applied by a backend: a base whose
    config env has ``marker_env`` gets ``when_marked``; any other base gets ``otherwise``, which
    needs ``otherwise_requires`` among the service's locked dependencies (Lambda: the Lambda base
    runs the handler itself; a plain Python base needs awslambdaric as its entrypoint).
    """

    marker_env: str
    when_marked: RuntimeSettings
    otherwise: RuntimeSettings
    otherwise_requires: tuple[str, ...]
    otherwise_hint: str

    def select(self, base_env: Mapping[str, str], locked: Collection[str]) -> RuntimeSettings:
        """The settings for a base with ``base_env``; ``locked``: the service's locked
        (non-dev) distribution names. Raises TargetError, before anything is built, when the
        base needs a dependency the lock lacks."""
        if self.marker_env in base_env:
            return self.when_marked
        normalized = {_normalize(name) for name in locked}
        missing = [name for name in self.otherwise_requires if _normalize(name) not in normalized]
        if missing:
            raise TargetError(
                f"the base image has no {self.marker_env} in its environment, so the image must "
                f"run {', '.join(missing)} itself, and the service's locked dependencies do not "
                "include it",
                hint=self.otherwise_hint,
            )
        return self.otherwise

    def to_record(self) -> dict[str, Any]:
        return {
            "marker_env": self.marker_env,
            "when_marked": self.when_marked.to_record(),
            "otherwise": self.otherwise.to_record(),
            "otherwise_requires": list(self.otherwise_requires),
            "otherwise_hint": self.otherwise_hint,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> BaseDependentRuntime:
        return cls(
            marker_env=str(data["marker_env"]),
            when_marked=RuntimeSettings.from_record(data["when_marked"]),
            otherwise=RuntimeSettings.from_record(data["otherwise"]),
            otherwise_requires=tuple(str(n) for n in data["otherwise_requires"]),
            otherwise_hint=str(data["otherwise_hint"]),
        )


def pairs(mapping: Mapping[str, Any]) -> list[list[Any]]:
    """A mapping as [key, value] pairs: a record keeps them in their order (an image config's
    env, say, is written in it), where a JSON object's keys may come back sorted."""
    return [[key, value] for key, value in mapping.items()]


def _list_or_none(args: tuple[str, ...] | None) -> list[str] | None:
    return None if args is None else list(args)


def _tuple_or_none(args: list[str] | None) -> tuple[str, ...] | None:
    return None if args is None else tuple(str(a) for a in args)


def reference_record(reference: Reference) -> dict[str, Any]:
    """A reference as JSON, every field as it is (no parsing or defaults on the way back)."""
    return {
        "registry": reference.registry,
        "repository": reference.repository,
        "tag": reference.tag,
        "digest": None if reference.digest is None else str(reference.digest),
    }


def reference_from_record(data: Mapping[str, Any]) -> Reference:
    """What ``reference_record`` wrote, each field of its type; anything else raises."""
    what = "a reference record"
    tag, digest = data["tag"], data["digest"]
    return Reference(
        registry=require(data, "registry", str, what),
        repository=require(data, "repository", str, what),
        tag=None if tag is None else checked(tag, str, what),
        digest=None if digest is None else digest_value(digest, what),
    )


def _normalize(name: str) -> str:
    # PEP 503 normalization, so "AwsLambdaRIC" and "awslambdaric" are one distribution.
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class BuildPlan:
    service: str
    # The service as found on disk: its layout, its folders, whether it is built as a package.
    project: ServiceProject
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
    # Compile bytecode for the image's Python with a host interpreter of the same version.
    bytecode: bool = True
    # The interpreter config names for it (bytecode-python); None: found on the host.
    bytecode_python: str | None = None
    # What the target accepts but does not document (App Runner on arm64): said, not refused.
    warnings: tuple[str, ...] = ()
    # Targets whose runtime depends on the base (Lambda on a plain Python base): see
    # ``runtime_for_base``; None means ``runtime`` holds for any base.
    base_dependent_runtime: BaseDependentRuntime | None = None

    @property
    def service_dir(self) -> Path:
        return self.project.service_dir

    def runtime_for_base(
        self, base_env: Mapping[str, str], locked: Collection[str]
    ) -> RuntimeSettings:
        """The runtime for a base whose config env is ``base_env``; ``locked``: the names of
        the service's locked (non-dev) dependencies as installed for the target."""
        if self.base_dependent_runtime is None:
            return self.runtime
        return self.base_dependent_runtime.select(base_env, locked)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "service_dir": str(self.service_dir),
            "project": self.project.to_json(),
            "base": str(self.base),
            "base_pull": str(self.base_pull),
            "platforms": [str(p) for p in self.platforms],
            "target": self.target,
            "app_dir": self.app_dir,
            "deps_dir": self.deps_dir,
            "entrypoint": None
            if self.runtime.entrypoint is None
            else list(self.runtime.entrypoint),
            "cmd": None if self.runtime.cmd is None else list(self.runtime.cmd),
            "env": dict(self.runtime.env),
            "working_dir": self.runtime.working_dir,
            "user": self.runtime.user,
            "exposed_ports": list(self.runtime.exposed_ports),
            "single_manifests": self.single_manifests,
            "exclude": list(self.exclude),
            "annotations": pairs(self.annotations),
            "cache_dir": str(self.cache_dir),
            "mtime": self.mtime,
            "bytecode": self.bytecode,
            "warnings": list(self.warnings),
        }

    def to_record(self) -> dict[str, Any]:
        """Every field as JSON, for ``from_record`` to make the same plan again without the
        configuration (``crossdock.cli.build_shortcut``: a rebuild with the settings unchanged).
        ``to_json`` is what people read; this is what a record needs."""
        return {
            "service": self.service,
            "project": self.project.to_record(),
            "base": reference_record(self.base),
            "base_pull": reference_record(self.base_pull),
            "platforms": [[p.os, p.architecture, p.variant] for p in self.platforms],
            "target": self.target,
            "app_dir": self.app_dir,
            "deps_dir": self.deps_dir,
            "runtime": self.runtime.to_record(),
            "single_manifests": self.single_manifests,
            "exclude": list(self.exclude),
            "annotations": pairs(self.annotations),
            "cache_dir": str(self.cache_dir),
            "mtime": self.mtime,
            "bytecode": self.bytecode,
            "bytecode_python": self.bytecode_python,
            "warnings": list(self.warnings),
            "base_dependent_runtime": None
            if self.base_dependent_runtime is None
            else self.base_dependent_runtime.to_record(),
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> BuildPlan:
        """The plan ``to_record`` wrote. A value JSON does not keep as it was (a TOML date in
        the project's settings) comes back otherwise: compare ``repr`` with the original's
        before trusting it as the same plan."""
        dependent = data["base_dependent_runtime"]
        return cls(
            service=str(data["service"]),
            project=ServiceProject.from_record(data["project"]),
            base=reference_from_record(data["base"]),
            base_pull=reference_from_record(data["base_pull"]),
            platforms=tuple(Platform(os, arch, variant) for os, arch, variant in data["platforms"]),
            target=str(data["target"]),
            app_dir=str(data["app_dir"]),
            deps_dir=str(data["deps_dir"]),
            runtime=RuntimeSettings.from_record(data["runtime"]),
            single_manifests=bool(data["single_manifests"]),
            exclude=tuple(str(p) for p in data["exclude"]),
            annotations=dict(data["annotations"]),
            cache_dir=Path(data["cache_dir"]),
            mtime=int(data["mtime"]),
            bytecode=bool(data["bytecode"]),
            bytecode_python=data["bytecode_python"],
            warnings=tuple(str(w) for w in data["warnings"]),
            base_dependent_runtime=None
            if dependent is None
            else BaseDependentRuntime.from_record(dependent),
        )
