"""The one table from an OCI platform (+ the base image's glibc) to wheel platform names.

Inside crossdock a CPU is an OCI :class:`~crossdock.platform.Platform` (``linux/arm64/v8``). Wheels
and uv spell it differently (``aarch64``, ``manylinux_2_28_aarch64``, ``aarch64-manylinux_2_28``);
those spellings live here and nowhere else.

A wheel tagged ``manylinux_2_X`` runs on any glibc >= 2.X, so the best target is the highest level
the base image's glibc allows. uv accepts only some levels for ``--python-platform``; we take the
highest accepted level that does not exceed the base's glibc, so uv never picks a wheel the base
cannot load.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags

from crossdock.errors import BaseImageError, ConfigError
from crossdock.platform import AMD64, ARM64, Platform

__all__ = [
    "UV_MANYLINUX_MINORS",
    "WheelTarget",
    "manylinux_platform_tags",
    "parse_version",
    "uv_python_platform",
    "wheel_arch",
    "wheel_target",
]

# OCI architecture -> the machine name used by wheel tags, uv and `platform.machine()`.
_WHEEL_ARCH = {AMD64: "x86_64", ARM64: "aarch64"}

# The manylinux levels (glibc 2.<minor>) that the pinned uv (0.13.9) accepts in
# `--python-platform <arch>-manylinux_2_<minor>`, read from `uv pip install --help`; a unit test
# compares this with the installed uv so that a uv upgrade cannot silently change it.
UV_MANYLINUX_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)

# The oldest glibc each architecture has manylinux wheels for (PEP 600: manylinux1 = 2.5 for
# x86_64; aarch64 wheels start at manylinux2014 = 2.17).
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}

# PEP 600: the legacy names are aliases of these levels; wheels on PyPI still carry them.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


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
    try:
        return _WHEEL_ARCH[platform]
    except KeyError:
        supported = ", ".join(str(p) for p in _WHEEL_ARCH)
        raise ConfigError(
            f"no wheel platform is known for {platform}", hint=f"choose from {supported}"
        ) from None


def _manylinux_minor(platform: Platform, glibc: tuple[int, int]) -> int:
    """The highest manylinux level uv accepts that the base's glibc can load."""
    major, minor = glibc
    if major != 2:
        raise BaseImageError(f"unexpected glibc version {major}.{minor} in the base for {platform}")
    accepted = [level for level in UV_MANYLINUX_MINORS if level <= minor]
    if not accepted:
        raise BaseImageError(
            f"the base image for {platform} has glibc 2.{minor}, older than 2.17, the oldest "
            "level uv can install manylinux wheels for",
            hint="use a base image with glibc 2.17 or newer (e.g. python:3.13-slim)",
        )
    return accepted[-1]


def uv_python_platform(platform: Platform, glibc: tuple[int, int]) -> str:
    """uv's ``--python-platform`` value, e.g. ``aarch64-manylinux_2_40`` for glibc 2.41."""
    return f"{wheel_arch(platform)}-manylinux_2_{_manylinux_minor(platform, glibc)}"


def manylinux_platform_tags(platform: Platform, glibc: tuple[int, int]) -> tuple[str, ...]:
    """Wheel platform tags a base with this glibc can load, best first (``packaging.tags`` form).

    Unlike :func:`uv_python_platform` this is not clamped to uv's list: it describes what the
    base can run, for verification and reports.
    """
    arch = wheel_arch(platform)
    major, minor = glibc
    if major != 2:
        raise BaseImageError(f"unexpected glibc version {major}.{minor} in the base for {platform}")
    tags: list[str] = []
    for level in range(minor, _OLDEST_GLIBC_MINOR[arch] - 1, -1):
        tags.append(f"manylinux_2_{level}_{arch}")
        legacy = _LEGACY_MANYLINUX.get(level)
        # manylinux1 and manylinux2010 were only defined for x86 CPUs.
        if legacy is not None and (level == 17 or arch == "x86_64"):
            tags.append(f"{legacy}_{arch}")
    return tuple(tags)


@dataclass(frozen=True)
class WheelTarget:
    """What a wheel must match to run in one platform image: CPU, glibc level, CPython version."""

    platform: Platform
    glibc: tuple[int, int]
    python_version: tuple[int, int]
    # The level uv installs for (<= glibc, clamped to what uv accepts).
    manylinux_minor: int

    @property
    def uv_python_platform(self) -> str:
        """``--python-platform`` for uv, e.g. ``x86_64-manylinux_2_40``."""
        return f"{wheel_arch(self.platform)}-manylinux_2_{self.manylinux_minor}"

    @property
    def uv_python_version(self) -> str:
        """``--python-version`` for uv, e.g. ``3.13``."""
        return f"{self.python_version[0]}.{self.python_version[1]}"

    @cached_property
    def platform_tags(self) -> tuple[str, ...]:
        """The manylinux tags uv may install for this target, best first."""
        return manylinux_platform_tags(self.platform, (2, self.manylinux_minor))

    @cached_property
    def supported_tags(self) -> frozenset[Tag]:
        """Every wheel tag an install for this target accepts (CPython, its ABIs, pure wheels)."""
        platforms = [*self.platform_tags]
        # The ABI is given, not read from the host: the host's Python is not the image's.
        interpreter = f"cp{self.python_version[0]}{self.python_version[1]}"
        native = cpython_tags(self.python_version, abis=[interpreter], platforms=platforms)
        generic = compatible_tags(self.python_version, interpreter, platforms)
        return frozenset([*native, *generic])

    def accepts(self, tags: frozenset[Tag]) -> bool:
        """Whether a wheel with these tags can be installed for this target."""
        return not tags.isdisjoint(self.supported_tags)


def wheel_target(platform: Platform, glibc: str | tuple[int, int], python: str) -> WheelTarget:
    """The wheel target of a platform image whose base has this glibc and Python version."""
    glibc_version = parse_version(glibc, what="glibc") if isinstance(glibc, str) else glibc
    wheel_arch(platform)  # refuse an unknown platform before anything else
    return WheelTarget(
        platform=platform,
        glibc=glibc_version,
        python_version=parse_version(python, what="Python"),
        manylinux_minor=_manylinux_minor(platform, glibc_version),
    )
