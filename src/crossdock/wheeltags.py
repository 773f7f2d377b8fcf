"""The one wheel-tag table: from an OCI platform, a glibc and a CPython version to wheel tags.

Inside crossdock a CPU is an OCI :class:`~crossdock.platform.Platform` (``linux/arm64/v8``). Wheels
and uv spell it differently (``aarch64``, ``manylinux_2_28_aarch64``, ``aarch64-manylinux_2_28``);
those spellings live here and nowhere else. Both sides of a build use this module: ``resolve``
asks which wheels uv may install for an image, ``verify`` asks whether the wheels found in an
image fit it. One :class:`WheelTarget` answers both:

* ``supported_tags`` / ``accepts``: what an install for the target takes. A wheel tagged
  ``manylinux_2_X`` runs on any glibc >= 2.X, so the best level is the highest the base's glibc
  allows; uv accepts only some levels for ``--python-platform``, so the level is the highest
  accepted one that does not exceed the base's glibc (uv never picks a wheel the base cannot load).
* ``runnable_tags``: what the image can load, not clamped to uv's list and with the plain
  ``linux_ARCH`` tag of locally built wheels, for verification.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags

from crossdock.errors import BaseImageError, ConfigError
from crossdock.platform import AMD64, ARM64, Platform

__all__ = [
    "UV_MANYLINUX_MINORS",
    "PlatformTag",
    "WheelTarget",
    "lowest_manylinux",
    "manylinux_platform_tags",
    "manylinux_tags",
    "parse_platform_tag",
    "parse_version",
    "supported_tags",
    "uv_python_platform",
    "wheel_arch",
    "wheel_target",
]

# OCI platform -> the machine name used by wheel tags, uv and `platform.machine()`.
_WHEEL_ARCH = {AMD64: "x86_64", ARM64: "aarch64"}

# The manylinux levels (glibc 2.<minor>) that the pinned uv (0.13.9) accepts in
# `--python-platform <arch>-manylinux_2_<minor>`, read from `uv pip install --help`; a unit test
# compares this with the installed uv so that a uv upgrade cannot silently change it.
UV_MANYLINUX_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)

# The oldest glibc each architecture has manylinux wheels for (PEP 600: manylinux1 = 2.5 for the
# x86 CPUs; aarch64 wheels start at manylinux2014 = 2.17).
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "i686": 5, "aarch64": 17}
# PEP 513/571/599: the legacy names are aliases of these levels; wheels on PyPI still carry them.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
# manylinux1 and manylinux2010 were only defined for the x86 CPUs.
_LEGACY_ONLY_X86 = frozenset({12, 5})
_X86 = frozenset({"x86_64", "i686"})


def parse_version(text: str, *, what: str) -> tuple[int, int]:
    """Read ``"3.13"`` or ``"2.41"`` (extra components ignored) as ``(major, minor)``."""
    parts = text.strip().split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (ValueError, IndexError) as err:
        raise ConfigError(
            f"cannot read {what} version {text!r}", hint="write it as MAJOR.MINOR, e.g. 3.13"
        ) from err
    return major, minor


def wheel_arch(platform: Platform) -> str:
    """The wheel/uv machine name of an OCI platform (``linux/arm64/v8`` -> ``aarch64``)."""
    for known, arch in _WHEEL_ARCH.items():
        if platform == known or platform.matches(known.os, known.architecture, known.variant):
            return arch
    supported = ", ".join(str(p) for p in _WHEEL_ARCH)
    raise ConfigError(f"no wheel platform is known for {platform}", hint=f"choose from {supported}")


def manylinux_tags(arch: str, glibc: tuple[int, ...] | None) -> tuple[str, ...]:
    """The manylinux platform tags (legacy aliases included) a glibc of this version loads, best
    first; none without a glibc 2.x."""
    if glibc is None or len(glibc) < 2 or glibc[0] != 2:
        return ()
    tags: list[str] = []
    for level in range(glibc[1], _OLDEST_GLIBC_MINOR.get(arch, 17) - 1, -1):
        tags.append(f"manylinux_2_{level}_{arch}")
        legacy = _LEGACY_MANYLINUX.get(level)
        if legacy is not None and (level not in _LEGACY_ONLY_X86 or arch in _X86):
            tags.append(f"{legacy}_{arch}")
    return tuple(tags)


def _glibc_2(platform: Platform, glibc: tuple[int, ...]) -> int:
    major, minor = glibc[0], glibc[1]
    if major != 2:
        raise BaseImageError(f"unexpected glibc version {major}.{minor} in the base for {platform}")
    return minor


def manylinux_platform_tags(platform: Platform, glibc: tuple[int, ...]) -> tuple[str, ...]:
    """Wheel platform tags a base with this glibc can load, best first (``packaging.tags`` form).

    Unlike :func:`uv_python_platform` this is not clamped to uv's list: it describes what the
    base can run, for verification and reports.
    """
    _glibc_2(platform, glibc)
    return manylinux_tags(wheel_arch(platform), glibc)


def _uv_manylinux_minor(platform: Platform, glibc: tuple[int, ...]) -> int:
    """The highest manylinux level uv accepts that the base's glibc can load."""
    minor = _glibc_2(platform, glibc)
    accepted = [level for level in UV_MANYLINUX_MINORS if level <= minor]
    if not accepted:
        raise BaseImageError(
            f"the base image for {platform} has glibc 2.{minor}, older than 2.17, the oldest "
            "level uv can install manylinux wheels for",
            hint="use a base image with glibc 2.17 or newer (e.g. python:3.13-slim)",
        )
    return accepted[-1]


def uv_python_platform(platform: Platform, glibc: tuple[int, ...]) -> str:
    """uv's ``--python-platform`` value, e.g. ``aarch64-manylinux_2_40`` for glibc 2.41."""
    return f"{wheel_arch(platform)}-manylinux_2_{_uv_manylinux_minor(platform, glibc)}"


@functools.lru_cache(maxsize=32)
def supported_tags(python: tuple[int, int], platforms: tuple[str, ...]) -> frozenset[Tag]:
    """Every tag CPython ``python`` accepts on these platform tags: its own ABI, abi3, ``none``
    and pure wheels. The ABI is given, not read from the host: the host's Python is not the
    image's. Kept per argument set, since an image has many wheels to judge and building the set
    (a few thousand tags) costs more than judging all of them."""
    interpreter = f"cp{python[0]}{python[1]}"
    native = cpython_tags(python, abis=[interpreter], platforms=list(platforms))
    generic = compatible_tags(python, interpreter, list(platforms))
    return frozenset([*native, *generic])


@dataclass(frozen=True)
class WheelTarget:
    """What a wheel must match to run in one platform image: CPU, glibc, CPython version."""

    platform: Platform
    python_version: tuple[int, int]
    # What the image's libc.so.6 defines; None when the image has no glibc (no manylinux fits).
    glibc: tuple[int, ...] | None

    @property
    def arch(self) -> str:
        """The wheel machine name, e.g. ``aarch64``."""
        return wheel_arch(self.platform)

    @property
    def cp(self) -> str:
        """The CPython interpreter and ABI tag, e.g. ``cp313``."""
        return f"cp{self.python_version[0]}{self.python_version[1]}"

    @cached_property
    def manylinux_minor(self) -> int:
        """The level uv installs for (<= glibc, clamped to what uv accepts)."""
        if self.glibc is None:
            raise BaseImageError(
                f"the base image for {self.platform} has no glibc",
                hint="crossdock installs manylinux wheels, which need glibc",
            )
        return _uv_manylinux_minor(self.platform, self.glibc)

    @property
    def uv_python_platform(self) -> str:
        """``--python-platform`` for uv, e.g. ``x86_64-manylinux_2_40``."""
        return f"{self.arch}-manylinux_2_{self.manylinux_minor}"

    @property
    def uv_python_version(self) -> str:
        """``--python-version`` for uv, e.g. ``3.13``."""
        return f"{self.python_version[0]}.{self.python_version[1]}"

    @cached_property
    def platform_tags(self) -> tuple[str, ...]:
        """The manylinux tags uv may install for this target, best first."""
        return manylinux_tags(self.arch, (2, self.manylinux_minor))

    @cached_property
    def supported_tags(self) -> frozenset[Tag]:
        """Every wheel tag an install for this target accepts (CPython, its ABIs, pure wheels)."""
        return supported_tags(self.python_version, self.platform_tags)

    def accepts(self, tags: frozenset[Tag]) -> bool:
        """Whether a wheel with these tags can be installed for this target."""
        return not tags.isdisjoint(self.supported_tags)

    @cached_property
    def runnable_tags(self) -> frozenset[Tag]:
        """Every wheel tag the image can load: manylinux up to its real glibc (not clamped to
        uv's levels) and ``linux_ARCH`` (a wheel built on a machine like the image)."""
        platforms = (*manylinux_tags(self.arch, self.glibc), f"linux_{self.arch}")
        return supported_tags(self.python_version, platforms)


def wheel_target(
    platform: Platform, glibc: str | tuple[int, ...] | None, python: str | tuple[int, int]
) -> WheelTarget:
    """The wheel target of a platform image whose base has this glibc and Python version."""
    glibc_version = parse_version(glibc, what="glibc") if isinstance(glibc, str) else glibc
    python_version = parse_version(python, what="Python") if isinstance(python, str) else python
    target = WheelTarget(platform, python_version, glibc_version)
    # Refuse an unknown platform, and a glibc uv cannot install for, before anything else.
    if glibc_version is None:
        wheel_arch(platform)
    else:
        _uv_manylinux_minor(platform, glibc_version)
        wheel_arch(platform)
    return target


@dataclass(frozen=True)
class PlatformTag:
    """What a wheel's platform tag says: its libc family, its CPU, its manylinux level."""

    family: str  # "glibc" (manylinux), "musl", "linux" (plain linux_ARCH), "any", "other"
    arch: str
    manylinux: tuple[int, int] | None = None


_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(.+)")
_LEGACY_LEVELS = {name: (2, level) for level, name in _LEGACY_MANYLINUX.items()}


def parse_platform_tag(platform: str) -> PlatformTag:
    """Read a wheel platform tag (``manylinux2014_aarch64``, ``musllinux_1_2_x86_64``, ``any``)."""
    if platform == "any":
        return PlatformTag("any", "any")
    if match := _MANYLINUX.fullmatch(platform):
        return PlatformTag("glibc", match.group(3), (int(match.group(1)), int(match.group(2))))
    for legacy, level in _LEGACY_LEVELS.items():
        if platform.startswith(legacy + "_"):
            return PlatformTag("glibc", platform[len(legacy) + 1 :], level)
    if platform.startswith("musllinux_"):
        return PlatformTag("musl", platform.split("_", 3)[-1])
    if platform.startswith("linux_"):
        return PlatformTag("linux", platform[len("linux_") :])
    return PlatformTag("other", platform)  # macosx_..., win_amd64


def lowest_manylinux(tags: Iterable[Tag]) -> tuple[int, int] | None:
    """The lowest manylinux level among these tags (the glibc a wheel needs at least)."""
    levels = [
        level for tag in tags if (level := parse_platform_tag(tag.platform).manylinux) is not None
    ]
    return min(levels) if levels else None
