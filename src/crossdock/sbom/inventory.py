"""What an image holds, as plain values: Python distributions and OS packages.

Python distributions are read from the installed tree (each ``*.dist-info``): name and version
from METADATA, the license from METADATA (PEP 639 ``License-Expression``, else a one-line
``License``, else the license classifiers), the wheel's tags from WHEEL. The hash is the one the
lock promises for the very file that was installed: the lock's wheel whose tags are the installed
WHEEL's tags, or the sdist's for a distribution crossdock built from an sdist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from packaging.tags import Tag, parse_tag
from packaging.utils import NormalizedName, canonicalize_name

from crossdock.image.document import checked, optional, require
from crossdock.resolve.lockfile import LockedPackage, wheel_tags
from crossdock.resolve.resolution import InstalledDistribution

__all__ = ["OsInventory", "OsPackage", "PythonPackage", "python_packages"]

# A License header longer than this is the license's full text, not its name.
_MAX_LICENSE_NAME = 100
_CLASSIFIER_PREFIX = "License :: "


@dataclass(frozen=True)
class PythonPackage:
    name: NormalizedName
    version: str
    sha256: tuple[str, ...]  # the lock's hash of the installed file (empty: not matched)
    license: str | None
    built_from_sdist: bool
    wheel_tags: tuple[str, ...]
    hash_source: str  # which file the hash is of ("wheel FILE", "sdist FILE", or why none)


@dataclass(frozen=True)
class OsPackage:
    name: str
    version: str
    architecture: str | None = None
    source: str | None = None  # Debian's Source (the source package), rpm's SOURCERPM
    license: str | None = None


@dataclass(frozen=True)
class OsInventory:
    """The base's OS packages, and where they were read from (or why they were not)."""

    kind: str  # "dpkg", "rpm", or "none"
    packages: tuple[OsPackage, ...]
    source: str | None  # the file read, e.g. /var/lib/dpkg/status
    distro: str | None  # os-release ID-VERSION_ID, e.g. debian-13 (for purls)
    note: str | None = None  # set when a package database exists but was not read

    @property
    def read(self) -> bool:
        return self.note is None

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "source": self.source,
            "distro": self.distro,
            "note": self.note,
            "packages": [
                [p.name, p.version, p.architecture, p.source, p.license] for p in self.packages
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OsInventory:
        """What ``to_json`` wrote, each field of its type (a base-os-packages record); any
        other shape raises, and the record is read as absent."""
        what = "an OS package inventory"
        text_or_null = (str, type(None))
        packages = []
        for row in require(data, "packages", list, what):
            name, version, *optional_fields = checked(row, list, what)
            if len(optional_fields) != 3:
                raise ValueError(f"{what}: a package of {len(optional_fields) + 2} fields")
            packages.append(
                OsPackage(
                    checked(name, str, what),
                    checked(version, str, what),
                    *(checked(value, text_or_null, what) for value in optional_fields),
                )
            )
        return cls(
            kind=require(data, "kind", str, what),
            packages=tuple(packages),
            source=optional(data, "source", str, what),
            distro=optional(data, "distro", str, what),
            note=optional(data, "note", str, what),
        )


def _headers(path: Path) -> Mapping[str, list[str]]:
    message = HeaderParser().parsestr(path.read_text(encoding="utf-8", errors="replace"))
    headers: dict[str, list[str]] = {}
    for key, value in message.items():
        headers.setdefault(key.lower(), []).append(str(value).strip())
    return headers


def license_of(metadata: Mapping[str, list[str]]) -> str | None:
    """The license METADATA declares: an SPDX expression, a short name, or classifiers."""
    expression = metadata.get("license-expression")
    if expression and expression[0]:
        return expression[0]
    declared = (metadata.get("license") or [""])[0]
    if declared and "\n" not in declared and len(declared) <= _MAX_LICENSE_NAME:
        return declared
    classifiers = [
        c.split(" :: ")[-1]
        for c in metadata.get("classifier", [])
        if c.startswith(_CLASSIFIER_PREFIX) and c.count(" :: ") >= 2
    ]
    return " AND ".join(classifiers) if classifiers else None


def _installed_tags(tags: Sequence[str]) -> frozenset[Tag]:
    out: set[Tag] = set()
    for tag in tags:
        out |= parse_tag(tag)
    return frozenset(out)


def _lock_hash(
    dist: InstalledDistribution, locked: LockedPackage | None
) -> tuple[tuple[str, ...], str]:
    if locked is None:
        return (), "not in the lock"
    if dist.built_from_sdist:
        if locked.sdist is not None and locked.sdist.sha256:
            return (locked.sdist.sha256,), f"sdist {locked.sdist.filename}"
        return (), "built from an sdist the lock gives no hash for"
    installed = _installed_tags(dist.tags)
    matches = [w for w in locked.wheels if wheel_tags(w) == installed and w in locked.wheel_sha256]
    if len(matches) == 1:
        return (locked.wheel_sha256[matches[0]],), f"wheel {matches[0]}"
    return (), f"{len(matches)} locked wheels have the installed tags"


def python_packages(
    tree: Path,
    distributions: Sequence[InstalledDistribution],
    lock: Mapping[tuple[NormalizedName, str], LockedPackage],
) -> tuple[PythonPackage, ...]:
    """Every distribution installed in ``tree``, with its license and the lock's hash."""
    out: list[PythonPackage] = []
    metadata_by_name: dict[NormalizedName, Mapping[str, list[str]]] = {}
    for dist_info in sorted(tree.glob("*.dist-info")):
        metadata = _headers(dist_info / "METADATA")
        metadata_by_name[canonicalize_name(metadata["name"][0])] = metadata
    for dist in distributions:
        sha256, hash_source = _lock_hash(dist, lock.get((dist.name, dist.version)))
        out.append(
            PythonPackage(
                name=dist.name,
                version=dist.version,
                sha256=sha256,
                license=license_of(metadata_by_name.get(dist.name, {})),
                built_from_sdist=dist.built_from_sdist,
                wheel_tags=tuple(dist.tags),
                hash_source=hash_source,
            )
        )
    return tuple(out)
