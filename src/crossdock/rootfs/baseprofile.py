"""What a base image offers a Python service: its Python, its glibc, its paths and environment.

Everything is read from the image itself (config + layers), never assumed: Debian's Python lives
in ``/usr/bin/python3.13`` with ``dist-packages``, the official image's in ``/usr/local/bin`` with
``site-packages``, Lambda's (Amazon Linux 2023) in ``/var/lang/bin``. The glibc version is the
highest ``GLIBC_x.y`` that ``libc.so.6`` *defines* (its version-definitions table), which is exactly
what the dynamic loader checks a binary's needs against.

A profile is a small frozen value with a JSON form, so callers can cache it by base digest.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossdock.cache import CacheLayout
from crossdock.errors import BaseImageError
from crossdock.image.artifact import PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.digest import Digest
from crossdock.image.document import checked, optional, require, string_map
from crossdock.platform import Platform
from crossdock.rootfs.elf import ElfFacts, ElfParseError, elf_identity_for, parse_elf
from crossdock.rootfs.fsview import EntryKind, FsEntry, LayerFS

__all__ = [
    "DEFAULT_PATH",
    "BaseProfile",
    "ElfFactsOf",
    "PythonFound",
    "cached_base_profile",
    "find_glibc",
    "find_python",
    "libc_path_in",
    "libstdcxx_path_in",
    "profile_from_fs",
    "python_at",
    "read_base_profile",
]

# Docker's default PATH, used when an image config sets none (moby: oci/defaults.go).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where Pythons live in images whose PATH does not list them (Lambda's /var/lang/bin is on its
# PATH, but an image can reset PATH).
_EXTRA_PYTHON_DIRS = ("/usr/local/bin", "/usr/bin", "/var/lang/bin", "/opt/python/bin")
_PYTHON_NAME = re.compile(r"python(3)\.(\d+)")
# libc.so.6 is 2-3 MB; libstdc++ about 2.5 MB. The bound only stops a hostile file.
_LIBRARY_READ_LIMIT = 64 * 1024 * 1024
_JSON_SCHEMA = 1

# The ELF facts of a file of the view already read from its bytes (e.g. while its layer was
# indexed), or None when they are not known (the file is then read).
ElfFactsOf = Callable[[FsEntry], ElfFacts | None]


@dataclass(frozen=True)
class BaseProfile:
    platform: Platform
    python_version: str  # "3.13"
    python_path: str  # "/usr/bin/python3.13", symlinks resolved within the image
    python_stdlib: str  # "/usr/lib/python3.13"
    site_packages: tuple[str, ...]  # third-party dirs on sys.path, the install target first
    glibc_version: str  # "2.41"
    libc_path: str  # where libc.so.6 was found, e.g. "/usr/lib/aarch64-linux-gnu/libc.so.6"
    glibcxx_version: str | None = None  # "3.4.34" when libstdc++.so.6 is present
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = "/"

    @property
    def python(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")[:2]
        return int(major), int(minor)

    @property
    def glibc(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.glibc_version.split("."))

    @property
    def glibcxx(self) -> tuple[int, ...] | None:
        if self.glibcxx_version is None:
            return None
        return tuple(int(part) for part in self.glibcxx_version.split("."))

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def install_dir(self) -> str:
        """Where third-party packages go: the first site directory on sys.path."""
        return self.site_packages[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": _JSON_SCHEMA,
            "platform": str(self.platform),
            "python_version": self.python_version,
            "python_path": self.python_path,
            "python_stdlib": self.python_stdlib,
            "site_packages": list(self.site_packages),
            "glibc_version": self.glibc_version,
            "libc_path": self.libc_path,
            "glibcxx_version": self.glibcxx_version,
            "env": dict(self.env),
            "working_dir": self.working_dir,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaseProfile:
        """What ``to_json`` wrote (a base-profile record), each field of its type and the
        versions numbers; any other shape raises, and the record is read as absent."""
        what = "a base profile"
        if require(data, "schema", int, what) != _JSON_SCHEMA:
            raise ValueError(f"unknown base profile schema {data.get('schema')!r}")
        site_packages = require(data, "site_packages", list, what)
        if not site_packages:
            raise ValueError(f"{what} without a site-packages folder")
        profile = cls(
            platform=Platform.parse(require(data, "platform", str, what)),
            python_version=require(data, "python_version", str, what),
            python_path=require(data, "python_path", str, what),
            python_stdlib=require(data, "python_stdlib", str, what),
            site_packages=tuple(checked(path, str, what) for path in site_packages),
            glibc_version=require(data, "glibc_version", str, what),
            libc_path=require(data, "libc_path", str, what),
            glibcxx_version=optional(data, "glibcxx_version", str, what),
            env=tuple(string_map(data, "env", what).items()),
            working_dir=require(data, "working_dir", str, what),
        )
        # The versions are read as numbers later (``python``, ``glibc``, ``glibcxx``): checked
        # here, so that a damaged record fails now, as absent, never in the middle of a build.
        # (int() raises a ValueError on a part that is not a number.)
        _numbers = (profile.python, profile.glibc, profile.glibcxx)
        return profile

    @classmethod
    def loads(cls, text: str) -> BaseProfile:
        return cls.from_json(json.loads(text))


@dataclass(frozen=True)
class PythonFound:
    version: str
    executable: str
    stdlib: str
    site_packages: tuple[str, ...]


@dataclass(frozen=True)
class GlibcFound:
    version: str
    libc_path: str
    glibcxx_version: str | None


def cached_base_profile(
    base: PlatformImage,
    cache_dir: Path,
    *,
    read: Callable[[], BaseProfile] | None = None,
) -> BaseProfile:
    """The profile of the base image ``base``, kept in crossdock's cache folder by its manifest
    digest (a base is immutable): what the native backend builds on and rebase moves onto. Its
    layers' member indexes are kept by digest too (the blobs were verified when pulled), so
    verifying the base afterwards takes them from there instead of a second pass. ``read``: how
    to read it when it is not cached (by default ``read_base_profile`` of its layers)."""

    def read_layers() -> BaseProfile:
        return read_base_profile(
            base.config,
            [blob.path for blob in base.layers],
            [blob.descriptor.digest for blob in base.layers],
            index_cache=cache_dir,
        )

    return (
        CacheLayout(cache_dir)
        .records("base-profile", version=1)
        .load_or_store(
            base.digest.dashed, BaseProfile.from_json, read or read_layers, BaseProfile.to_json
        )
    )


def read_base_profile(
    image_config: ImageConfig,
    layer_paths: Sequence[Path],
    layer_digests: Sequence[Digest | None] | None = None,
    *,
    index_cache: Path | None = None,
) -> BaseProfile:
    """Read the profile of a single-platform base image from its config and layers.
    ``index_cache``: crossdock's cache folder, which keeps each layer's member index by its
    digest (see ``LayerFS``: only with ``layer_digests`` checked against the blobs' bytes)."""
    return profile_from_fs(
        image_config, LayerFS(layer_paths, layer_digests, index_cache=index_cache)
    )


def profile_from_fs(
    image_config: ImageConfig, fs: LayerFS, *, elf_facts: ElfFactsOf | None = None
) -> BaseProfile:
    """The profile of the image ``fs`` views; ``elf_facts``: libc's and libstdc++'s facts when
    already read (see ``ElfFactsOf``)."""
    platform = image_config.platform
    env = image_config.env
    python = find_python(fs, env.get("PATH") or DEFAULT_PATH)
    if python is None:
        searched = ", ".join(_python_dirs(env.get("PATH") or DEFAULT_PATH))
        raise BaseImageError(
            f"no Python 3 interpreter found in the {platform} base image "
            f"(searched python3.N in {searched})",
            hint="choose a base image with CPython 3 (e.g. python:3.13-slim or a Lambda base)",
        )
    glibc = find_glibc(fs, platform, elf_facts=elf_facts)
    if glibc is None:
        raise BaseImageError(
            f"no glibc found in the {platform} base image "
            f"(searched libc.so.6 in {', '.join(_libc_candidates(platform))})",
            hint="crossdock installs manylinux wheels, which need glibc; musl bases "
            "(Alpine) are not supported",
        )
    return BaseProfile(
        platform=platform,
        python_version=python.version,
        python_path=python.executable,
        python_stdlib=python.stdlib,
        site_packages=python.site_packages,
        glibc_version=glibc.version,
        libc_path=glibc.libc_path,
        glibcxx_version=glibc.glibcxx_version,
        env=tuple(env.items()),
        working_dir=str(image_config.runtime.get("WorkingDir") or "/"),
    )


def _python_dirs(path_env: str) -> list[str]:
    dirs = [d for d in path_env.split(":") if d.startswith("/")]
    return dirs + [d for d in _EXTRA_PYTHON_DIRS if d not in dirs]


def find_python(fs: LayerFS, path_env: str = DEFAULT_PATH) -> PythonFound | None:
    """The Python a shell in the image runs as ``python3``; else the newest ``python3.N``."""
    executable: str | None = None
    found: list[str] = []
    for directory in _python_dirs(path_env):
        entry = fs.get(posixpath.join(directory, "python3"))
        if (
            executable is None
            and entry is not None
            and entry.kind is EntryKind.FILE
            and _PYTHON_NAME.fullmatch(posixpath.basename(entry.path))
        ):
            executable = entry.path
        for name in fs.listdir(directory):
            entry = fs.get(posixpath.join(directory, name))
            if _PYTHON_NAME.fullmatch(name) and entry is not None and entry.kind is EntryKind.FILE:
                found.append(entry.path)
    if executable is None:
        if not found:
            return None
        executable = max(found, key=_python_key)
    return python_at(fs, executable)


def python_at(fs: LayerFS, executable: str) -> PythonFound | None:
    """The CPython installed at ``executable`` (symlinks followed inside the image) and the
    folders its ``sys.path`` is built from; None when that is not a ``python3.N`` file.

    The prefix is found from the real file, as CPython's own getpath does (it follows the
    symlinks of its executable before looking for the standard library).
    """
    entry = fs.get(executable)
    if entry is None or entry.kind is not EntryKind.FILE:
        return None
    real = entry.path
    if not _PYTHON_NAME.fullmatch(posixpath.basename(real)):
        return None
    version = f"3.{_python_key(real)[1]}"
    prefix = posixpath.dirname(posixpath.dirname(real))
    stdlib = posixpath.join(prefix, "lib", f"python{version}")
    return PythonFound(version, real, stdlib, _site_packages(fs, prefix, stdlib, version))


def _python_key(path: str) -> tuple[int, int]:
    match = _PYTHON_NAME.fullmatch(posixpath.basename(path))
    return (3, int(match.group(2))) if match else (0, 0)


def _site_packages(fs: LayerFS, prefix: str, stdlib: str, version: str) -> tuple[str, ...]:
    own = posixpath.join(stdlib, "site-packages")
    if fs.exists(own) or not fs.exists(stdlib):
        return (own,)
    # Debian's patched site.py puts these on sys.path instead of site-packages (in this order);
    # pip installs into the /usr/local one.
    return (
        f"/usr/local/lib/python{version}/dist-packages",
        f"{prefix}/lib/python3/dist-packages",
        f"{prefix}/lib/python{version}/dist-packages",
    )


def _libc_candidates(platform: Platform) -> list[str]:
    identity = elf_identity_for(platform)
    multiarch = [identity.gnu_triplet] if identity else []
    dirs = [f"/lib/{t}" for t in multiarch] + [f"/usr/lib/{t}" for t in multiarch]
    dirs += ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]
    return [posixpath.join(d, "libc.so.6") for d in dirs]


def _libstdcxx_candidates(libc_path: str, platform: Platform) -> list[str]:
    first = posixpath.join(posixpath.dirname(libc_path), "libstdc++.so.6")
    others = [c.replace("libc.so.6", "libstdc++.so.6") for c in _libc_candidates(platform)]
    return [first] + [c for c in others if c != first]


def libc_path_in(fs: LayerFS, platform: Platform) -> str | None:
    """Where ``libc.so.6`` is (first of the usual places that holds a file), from the index."""
    return next((c for c in _libc_candidates(platform) if fs.is_file(c)), None)


def libstdcxx_path_in(fs: LayerFS, libc_path: str, platform: Platform) -> str | None:
    return next((c for c in _libstdcxx_candidates(libc_path, platform) if fs.is_file(c)), None)


def find_glibc(
    fs: LayerFS, platform: Platform, *, elf_facts: ElfFactsOf | None = None
) -> GlibcFound | None:
    """glibc's version (and libstdc++'s GLIBCXX) from their version definitions: from
    ``elf_facts`` where it knows them, else read from the files."""
    libc_path = libc_path_in(fs, platform)
    if libc_path is None:
        return None
    cxx_path = libstdcxx_path_in(fs, libc_path, platform)
    wanted = [libc_path] + ([cxx_path] if cxx_path else [])
    facts: dict[str, ElfFacts | None] = {}
    for path in wanted:
        entry = fs.get(path)
        known = elf_facts(entry) if elf_facts is not None and entry is not None else None
        if known is not None:
            facts[path] = known
    unknown = [path for path in wanted if path not in facts]
    if unknown:
        contents = fs.read_files(unknown, limit=_LIBRARY_READ_LIMIT)
        facts.update({path: _parsed(contents.get(path)) for path in unknown})
    glibc = _defined(facts.get(libc_path), "GLIBC")
    if glibc is None:
        return None
    glibcxx = _defined(facts.get(cxx_path), "GLIBCXX") if cxx_path else None
    resolved = fs.resolve(libc_path) or libc_path
    return GlibcFound(glibc, resolved, glibcxx)


def _parsed(data: bytes | None) -> ElfFacts | None:
    if not data:
        return None
    try:
        return parse_elf(io.BytesIO(data))
    except ElfParseError:
        return None


def _defined(facts: ElfFacts | None, prefix: str) -> str | None:
    version = facts.defined(prefix) if facts is not None else None
    return ".".join(str(part) for part in version) if version else None
