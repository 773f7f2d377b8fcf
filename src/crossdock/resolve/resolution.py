"""What a resolution installed, read back from the target folder's ``*.dist-info`` (for reports).

The installed tree is the truth: names, versions and wheel tags come from each distribution's
METADATA and WHEEL files, not from what we asked uv for.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from crossdock.errors import ResolveError
from crossdock.wheeltags import WheelTarget

__all__ = ["InstalledDistribution", "Resolution", "read_installed"]


@dataclass(frozen=True)
class InstalledDistribution:
    """One distribution in the target folder."""

    name: NormalizedName
    version: str
    tags: tuple[str, ...]  # from WHEEL, e.g. ("cp313-cp313-manylinux_2_28_aarch64",)
    pure: bool  # WHEEL's Root-Is-Purelib
    built_from_sdist: bool  # built on the host by crossdock (always pure)


@dataclass(frozen=True)
class Resolution:
    """The locked dependencies of one project, installed for one target platform."""

    target: WheelTarget
    target_dir: Path
    distributions: tuple[InstalledDistribution, ...]  # sorted by name
    cache_key: str  # same inputs, same key: the builder may reuse an installed tree
    uv_version: str
    requirements: str  # the export that was installed (with hashes), for the build report
    # The local projects the export needs (built into wheels with the service's code, not here).
    local_projects: tuple[Path, ...] = ()

    @property
    def python_platform(self) -> str:
        """uv's ``--python-platform`` of the tree, e.g. ``aarch64-manylinux_2_40``."""
        return self.target.uv_python_platform


def _headers(path: Path) -> dict[str, list[str]]:
    message = HeaderParser().parsestr(path.read_text(encoding="utf-8", errors="replace"))
    headers: dict[str, list[str]] = {}
    for key, value in message.items():
        headers.setdefault(key.lower(), []).append(value.strip())
    return headers


def read_installed(
    target_dir: Path, built_from_sdist: frozenset[str]
) -> tuple[InstalledDistribution, ...]:
    """Read every ``*.dist-info`` in ``target_dir``, sorted by name."""
    distributions: list[InstalledDistribution] = []
    for dist_info in sorted(target_dir.glob("*.dist-info")):
        try:
            metadata = _headers(dist_info / "METADATA")
            wheel = _headers(dist_info / "WHEEL")
            name = canonicalize_name(metadata["name"][0])
            version = metadata["version"][0]
        except (OSError, KeyError, IndexError) as err:
            raise ResolveError(
                f"{dist_info} is incomplete (METADATA or WHEEL missing or unreadable)",
                hint="remove the target folder and build again",
            ) from err
        distributions.append(
            InstalledDistribution(
                name=name,
                version=version,
                tags=tuple(wheel.get("tag", ())),
                pure=wheel.get("root-is-purelib", ["false"])[0].lower() == "true",
                built_from_sdist=name in built_from_sdist,
            )
        )
    return tuple(sorted(distributions, key=lambda dist: dist.name))
