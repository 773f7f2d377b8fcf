"""Read uv.lock (TOML) to decide, per locked package and before installing, how it gets in.

uv.lock lists, for every package, its source, its sdist and the file names of its wheels. With the
target's wheel tags (:class:`~crossdock.wheeltags.WheelTarget`) that is enough to tell
"has a wheel for this platform" from "sdist only" without asking uv to fail first.
"""

from __future__ import annotations

import functools
import hashlib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)

from crossdock.cache import Records
from crossdock.errors import LockError, ResolveError
from crossdock.image.document import checked
from crossdock.wheeltags import WheelTarget

__all__ = [
    "LOCK_FILE",
    "Availability",
    "LockedPackage",
    "LockedSdist",
    "classify",
    "lookup",
    "options_hint",
    "parse_lock",
    "read_lock",
    "wheel_tags",
]

LOCK_FILE = "uv.lock"

# uv.lock's top-level `version`; a new major version may change the layout we read.
_SUPPORTED_LOCK_VERSIONS = (1,)
# Sources that are files on this machine (the project, workspace members, path dependencies).
_LOCAL_SOURCES = ("virtual", "editable", "directory", "path")


@dataclass(frozen=True)
class LockedSdist:
    """A locked source distribution: where it is and the hash the lock promises."""

    url: str | None
    path: str | None
    sha256: str | None
    size: int | None

    @property
    def filename(self) -> str:
        """The archive's file name (``docopt-0.6.2.tar.gz``)."""
        location = self.url or self.path or ""
        return location.rsplit("/", 1)[-1].split("#", 1)[0]


@dataclass(frozen=True)
class LockedPackage:
    """One ``[[package]]`` entry of uv.lock."""

    name: NormalizedName
    version: str
    source_kind: str  # "registry", "virtual", "editable", "directory", "path", "url", "git"
    sdist: LockedSdist | None
    wheels: tuple[str, ...]  # wheel file names
    # wheel file name -> the sha256 (hex) the lock promises for it (what uv checks on install)
    wheel_sha256: Mapping[str, str] = field(default_factory=dict)
    # A local source's folder or file, relative to the lock ("virtual", "editable", "directory",
    # "path"); None for the others.
    source_path: str | None = None


class Availability(Enum):
    """How a locked package can be installed for one target."""

    WHEEL = "wheel"  # a prebuilt wheel matches the target: uv installs it, binary-only
    SDIST_ONLY = "sdist-only"  # no matching wheel, an sdist exists: build it if it is pure Python


def _hash_of(entry: Mapping[str, Any]) -> str | None:
    text = entry.get("hash")
    if isinstance(text, str) and text.startswith("sha256:"):
        return text.removeprefix("sha256:")
    return None


def _filename_of(entry: Mapping[str, Any]) -> str:
    location = entry.get("filename") or entry.get("url") or entry.get("path") or ""
    return str(location).rsplit("/", 1)[-1].split("#", 1)[0]


def _text(value: object) -> str:
    """``value`` when it is a string; a TypeError (a damaged entry) otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{value!r:.40} is not a string")
    return value


def _text_or_none(value: object) -> str | None:
    return None if value is None else _text(value)


def _package(entry: Mapping[str, Any], lock_path: Path) -> LockedPackage:
    try:
        name, version = _text(entry["name"]), str(entry.get("version", ""))
        source = entry.get("source", {})
        kinds = [kind for kind in source if kind != "subdirectory"]
        local = [str(source[kind]) for kind in _LOCAL_SOURCES if kind in source]
        sdist_entry = entry.get("sdist")
        sdist = None
        if isinstance(sdist_entry, Mapping):
            size = sdist_entry.get("size")
            sdist = LockedSdist(
                url=_text_or_none(sdist_entry.get("url")),
                path=_text_or_none(sdist_entry.get("path")),
                sha256=_hash_of(sdist_entry),
                size=int(size) if size is not None else None,
            )
        wheel_entries = list(entry.get("wheels", ()))
        wheels = tuple(_filename_of(wheel) for wheel in wheel_entries)
        wheel_sha256 = {
            _filename_of(wheel): digest
            for wheel in wheel_entries
            if (digest := _hash_of(wheel)) is not None
        }
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise LockError(
            f"{lock_path}: cannot read the package entry {entry!r:.120}",
            hint="recreate the lock with `uv lock`",
        ) from err
    return LockedPackage(
        name=canonicalize_name(name),
        version=version,
        source_kind=kinds[0] if kinds else "unknown",
        sdist=sdist,
        wheels=wheels,
        wheel_sha256=wheel_sha256,
        source_path=local[0] if local else None,
    )


def parse_lock(text: str, lock_path: Path) -> dict[tuple[NormalizedName, str], LockedPackage]:
    """Parse uv.lock text into packages keyed by (normalized name, version)."""
    return dict(_parse_lock(text, lock_path))


# A build reads its lock once per platform to export it and once more for each SBOM: the same
# text is parsed once (keyed by the text itself, so an edited lock is parsed again).
@functools.lru_cache(maxsize=4)
def _parse_lock(text: str, lock_path: Path) -> dict[tuple[NormalizedName, str], LockedPackage]:
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as err:
        reason = str(err) or "nested too deep"
        raise LockError(f"{lock_path} is not valid TOML: {reason}", hint="run `uv lock`") from err
    version = data.get("version")
    if version not in _SUPPORTED_LOCK_VERSIONS:
        raise LockError(
            f"{lock_path} has lock format version {version!r}; crossdock reads version 1",
            hint="lock with a uv release that writes version 1 (uv 0.13 does)",
        )
    entries = data.get("package", [])
    if not isinstance(entries, list):
        raise LockError(
            f"{lock_path}: `package` is a {type(entries).__name__}, not an array of tables",
            hint="recreate the lock with `uv lock`",
        )
    packages: dict[tuple[NormalizedName, str], LockedPackage] = {}
    for entry in entries:
        package = _package(entry, lock_path)
        packages[package.name, package.version] = package
    return packages


def read_lock(
    project_dir: Path, records: Records | None = None
) -> dict[tuple[NormalizedName, str], LockedPackage]:
    """Read ``project_dir/uv.lock``; a missing lock is a :class:`LockError` that says what to do.
    ``records``: where a lock's packages are kept by the hash of its text, so that an unchanged
    lock is not parsed again (TOML in pure Python: ~20 ms for the example's 120 KB lock, JSON
    a tenth of it); a damaged record is parsed again."""
    lock_path = project_dir / LOCK_FILE
    try:
        text = lock_path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise LockError(
            f"{lock_path} does not exist: crossdock installs exactly what the lock says",
            hint=f"run `uv lock` in {project_dir}",
        ) from err
    except UnicodeDecodeError as err:
        raise LockError(
            f"{lock_path} is not UTF-8 text (byte {err.start}): a damaged lock",
            hint=f"run `uv lock` in {project_dir}",
        ) from err
    if records is None:
        return parse_lock(text, lock_path)
    key = hashlib.sha256(text.encode()).hexdigest()
    recorded = records.load(key, _packages_from_record)
    if recorded is not None:
        return recorded
    packages = parse_lock(text, lock_path)
    records.store(key, [_package_record(package) for package in packages.values()])
    return packages


def _package_record(package: LockedPackage) -> list[Any]:
    sdist = package.sdist
    return [
        package.name,
        package.version,
        package.source_kind,
        None if sdist is None else [sdist.url, sdist.path, sdist.sha256, sdist.size],
        list(package.wheels),
        [[wheel, digest] for wheel, digest in package.wheel_sha256.items()],  # in their order
        package.source_path,
    ]


def _size_or_none(value: object) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise TypeError(f"{value!r:.40} is not a size")


_RECORD = "a parsed-locks record"


def _list(value: object) -> list[Any]:
    """A list of the record (a string or an object would iterate as characters or keys)."""
    return checked(value, list, _RECORD)


def _packages_from_record(rows: object) -> dict[tuple[NormalizedName, str], LockedPackage]:
    """The packages of a ``parsed-locks`` record (``_package_record``'s rows). Every field is
    checked for the type ``_package_record`` writes: a record that is not exactly that (damaged,
    hand-edited, of another shape) raises, and ``Records.load`` reads it as absent."""
    packages: dict[tuple[NormalizedName, str], LockedPackage] = {}
    for row in _list(rows):
        name, version, source_kind, sdist, wheels, wheel_sha256, source_path = _list(row)
        if canonicalize_name(_text(name)) != name:
            raise ValueError(f"{name!r:.40} is not a normalized package name")
        sdist_fields = None if sdist is None else _list(sdist)
        if sdist_fields is not None and len(sdist_fields) != 4:
            raise ValueError(f"an sdist of {len(sdist_fields)} fields")
        package = LockedPackage(
            name=canonicalize_name(name),
            version=_text(version),
            source_kind=_text(source_kind),
            sdist=None
            if sdist_fields is None
            else LockedSdist(
                url=_text_or_none(sdist_fields[0]),
                path=_text_or_none(sdist_fields[1]),
                sha256=_text_or_none(sdist_fields[2]),
                size=_size_or_none(sdist_fields[3]),
            ),
            wheels=tuple(_text(wheel) for wheel in _list(wheels)),
            wheel_sha256=dict(_wheel_digest(pair) for pair in _list(wheel_sha256)),
            source_path=_text_or_none(source_path),
        )
        packages[package.name, package.version] = package
    return packages


def _wheel_digest(pair: object) -> tuple[str, str]:
    wheel, digest = _list(pair)
    return _text(wheel), _text(digest)


def wheel_tags(filename: str) -> frozenset[Tag]:
    """The tags of a wheel file name; an unreadable name has none (it matches nothing)."""
    try:
        return parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return frozenset()


def _options(package: LockedPackage, target: WheelTarget) -> str:
    return (
        f"pin a version of {package.name} that publishes a wheel for "
        f"{target.uv_python_platform} / CPython {target.uv_python_version}, pick another base "
        "image (another Python or glibc), or build this service with the buildx backend"
    )


def classify(package: LockedPackage, target: WheelTarget) -> Availability:
    """Decide how ``package`` is installed for ``target``; refuse what cannot be.

    A package with neither a matching wheel nor an sdist raises :class:`ResolveError` naming the
    package, its version, the platform and the options.
    """
    if any(target.accepts(wheel_tags(wheel)) for wheel in package.wheels):
        return Availability.WHEEL
    if package.sdist is not None and (package.sdist.url or package.sdist.path):
        return Availability.SDIST_ONLY
    if package.source_kind in ("git", "directory", "editable"):
        raise ResolveError(
            f"{package.name} {package.version} comes from a {package.source_kind} source; "
            "crossdock installs only registry wheels and pure-Python sdists so far",
            hint="publish it as a wheel to an index, or use the buildx backend",
        )
    raise ResolveError(
        f"{package.name} {package.version} has no wheel for {target.platform} "
        f"({target.uv_python_platform}, CPython {target.uv_python_version}) and no sdist",
        hint=_options(package, target),
    )


def options_hint(package: LockedPackage, target: WheelTarget) -> str:
    """The choices a user has when ``package`` cannot be installed for ``target``."""
    return _options(package, target)


def lookup(
    packages: Mapping[tuple[NormalizedName, str], LockedPackage],
    names_versions: Iterable[tuple[NormalizedName, str]],
    lock_path: Path,
) -> list[LockedPackage]:
    """The lock entries of exported requirements; one missing means export and lock disagree."""
    found: list[LockedPackage] = []
    for key in names_versions:
        package = packages.get(key)
        if package is None:
            raise LockError(
                f"{lock_path} has no entry for {key[0]}=={key[1]}, which `uv export` listed",
                hint="run `uv lock` again",
            )
        found.append(package)
    return found
