"""Read and filter the requirements text that ``uv export --format requirements-txt`` writes.

The export is the lock cut down to one project without dev groups, with each package's markers
and hashes. We read it into blocks (a requirement line and its ``--hash`` continuation lines), keep
the ones whose markers hold on the target, and write subsets back unchanged, so uv still checks
every hash it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from crossdock.errors import LockError, ResolveError
from crossdock.wheeltags import WheelTarget, wheel_arch

__all__ = [
    "ExportedRequirement",
    "LocalRequirement",
    "RequirementsExport",
    "marker_environment",
    "parse_export",
]


@dataclass(frozen=True)
class ExportedRequirement:
    """One requirement of the export: ``name==version ; marker`` plus its hash lines."""

    name: NormalizedName
    version: str
    marker: Marker | None
    text: str  # the block exactly as exported (requirement line and continuation lines)

    def applies_to(self, environment: dict[str, str]) -> bool:
        """Whether the marker holds for the target (no marker: always)."""
        return self.marker is None or self.marker.evaluate(environment)


@dataclass(frozen=True)
class LocalRequirement:
    """A project on disk the export needs (a workspace member, a path dependency, the project
    itself when it is a package): ``path`` as exported, relative to the lock's folder."""

    path: str
    marker: Marker | None

    def applies_to(self, environment: dict[str, str]) -> bool:
        return self.marker is None or self.marker.evaluate(environment)


@dataclass(frozen=True)
class RequirementsExport:
    """A parsed export: option lines (index settings), requirement blocks, local projects."""

    options: tuple[str, ...]  # e.g. `--index-url ...`: repeated in every subset written back
    requirements: tuple[ExportedRequirement, ...]
    local: tuple[LocalRequirement, ...] = ()

    def render(self, requirements: tuple[ExportedRequirement, ...] | None = None) -> str:
        """Requirements-file text for ``requirements`` (default: all), options first."""
        chosen = self.requirements if requirements is None else requirements
        lines = [*self.options, *(requirement.text for requirement in chosen)]
        return "".join(f"{line}\n" for line in lines)


def marker_environment(
    target: WheelTarget, python_full_version: str | None = None
) -> dict[str, str]:
    """PEP 508 marker values of a CPython on Linux for ``target`` (what uv assumes too)."""
    short = target.uv_python_version
    full = python_full_version or f"{short}.0"
    return {
        "implementation_name": "cpython",
        "implementation_version": full,
        "os_name": "posix",
        "platform_machine": wheel_arch(target.platform),
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": full,
        "python_version": short,
        "sys_platform": "linux",
    }


def _blocks(text: str) -> list[list[str]]:
    """Split into blocks: a line at column 0 starts one, indented lines continue it."""
    blocks: list[list[str]] = []
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0].isspace() and blocks:
            blocks[-1].append(raw)
        else:
            blocks.append([raw])
    return blocks


def _requirement(block: list[str]) -> ExportedRequirement:
    line = block[0].rstrip().removesuffix("\\").strip()
    try:
        requirement = Requirement(line)
    except InvalidRequirement as err:
        raise LockError(f"cannot read the exported requirement {line!r}: {err}") from err
    pins = [spec.version for spec in requirement.specifier if spec.operator == "=="]
    if requirement.url is None and len(pins) != 1:
        raise LockError(f"the exported requirement {line!r} is not pinned to one version")
    version = pins[0] if pins else ""
    return ExportedRequirement(
        name=canonicalize_name(requirement.name),
        version=version,
        marker=requirement.marker,
        text="\n".join(block),
    )


def parse_export(text: str) -> RequirementsExport:
    """Parse ``uv export --no-editable --format requirements-txt`` output.

    Local projects (``./libs/shared``, ``.``) are kept apart: they are built into wheels on the
    host, not downloaded. Editable entries are refused: an editable install points at the host's
    source folder, which no image has.
    """
    options: list[str] = []
    requirements: list[ExportedRequirement] = []
    local: list[LocalRequirement] = []
    for block in _blocks(text):
        first = block[0].strip()
        if first.startswith(("-e", "--editable")):
            raise ResolveError(
                f"the export has an editable dependency ({first}); an editable install points "
                "at a folder on this machine and never reaches an image",
                hint="report this: crossdock exports with --no-editable",
            )
        if first.startswith((".", "/", "file:")):
            local.append(_local(first))
            continue
        if first.startswith("-"):
            options.extend(block)
            continue
        requirements.append(_requirement(block))
    return RequirementsExport(
        options=tuple(options), requirements=tuple(requirements), local=tuple(local)
    )


def _local(line: str) -> LocalRequirement:
    path, _, marker = line.removesuffix("\\").partition(";")
    try:
        parsed = Marker(marker.strip()) if marker.strip() else None
    except ValueError as err:
        raise LockError(f"cannot read the marker of the exported line {line!r}: {err}") from err
    return LocalRequirement(path.strip().removeprefix("file://"), parsed)
