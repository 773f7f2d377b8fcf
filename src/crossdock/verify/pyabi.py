"""Python ABI facts read from file names and bytes: .pyc magic numbers, CPython extension
suffixes, and the tags in an installed wheel's ``.dist-info/WHEEL`` (judged against the one
wheel-tag table, :mod:`crossdock.wheeltags`).

``importlib.util.MAGIC_NUMBER`` only knows the running interpreter's magic, and the image's
Python is another one, so the table of released CPython magics lives here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.tags import Tag, parse_tag

from crossdock.wheeltags import WheelTarget, lowest_manylinux, parse_platform_tag

__all__ = [
    "ExtensionSuffix",
    "WheelVerdict",
    "judge_wheel_tags",
    "parse_extension_suffix",
    "parse_wheel_tags",
    "pyc_magic_for",
    "pyc_version",
]

# (magic of the final release, first magic of the development series) per CPython version, from
# Lib/importlib/_bootstrap_external.py: each series reserves a block of numbers for its alphas and
# betas, so a number inside a block tells the series even for a pre-release.
_PYC_MAGICS: dict[tuple[int, int], tuple[int, int]] = {
    (3, 8): (3413, 3400),
    (3, 9): (3425, 3420),
    (3, 10): (3439, 3430),
    (3, 11): (3495, 3450),
    (3, 12): (3531, 3500),
    (3, 13): (3571, 3550),
    (3, 14): (3627, 3600),
    (3, 15): (3650, 3650),  # development series only: its final number is not yet known
}
# Every .pyc starts with the 2-byte little-endian magic followed by b"\r\n".
_PYC_SUFFIX = b"\r\n"


def pyc_magic_for(version: tuple[int, int]) -> int | None:
    """The magic number a released CPython writes into .pyc files."""
    known = _PYC_MAGICS.get(version)
    return known[0] if known else None


def pyc_version(head: bytes) -> tuple[tuple[int, int] | None, int] | None:
    """(CPython series or None when unknown, magic number), or None when not a .pyc header."""
    if len(head) < 4 or head[2:4] != _PYC_SUFFIX:
        return None
    magic = int.from_bytes(head[:2], "little")
    series = sorted(_PYC_MAGICS.items(), key=lambda item: item[1][1])
    for position, (version, (_final, first)) in enumerate(series):
        # A series' block ends where the next one starts (the newest: 50 numbers, as usual).
        end = series[position + 1][1][1] if position + 1 < len(series) else first + 50
        if first <= magic < end:
            return version, magic
    return None, magic


@dataclass(frozen=True)
class ExtensionSuffix:
    """What an extension module's file name promises: ``foo.cpython-313-aarch64-linux-gnu.so``."""

    python: tuple[int, int] | None  # None for the stable ABI (abi3) or an untagged .so
    free_threaded: bool
    platform: str | None  # "aarch64-linux-gnu", "darwin", "x86_64-linux-musl"; None if untagged
    stable_abi: bool


_CPYTHON_SO = re.compile(r"\.cpython-(\d)(\d+)(t?)(?:-([A-Za-z0-9_\-]+))?\.so$")
_WINDOWS_PYD = re.compile(r"\.cp(\d)(\d+)(t?)-(win[A-Za-z0-9_]*)\.pyd$")


def parse_extension_suffix(name: str) -> ExtensionSuffix | None:
    """The ABI promise in a file name, or None when the name is not an extension module."""
    if match := _CPYTHON_SO.search(name):
        major, minor, free, platform = match.groups()
        return ExtensionSuffix((int(major), int(minor)), bool(free), platform, stable_abi=False)
    if match := _WINDOWS_PYD.search(name):
        major, minor, free, platform = match.groups()
        return ExtensionSuffix((int(major), int(minor)), bool(free), platform, stable_abi=False)
    if name.endswith(".abi3.so"):
        return ExtensionSuffix(None, free_threaded=False, platform=None, stable_abi=True)
    return None


def parse_wheel_tags(text: str) -> list[Tag]:
    """The tags of a ``.dist-info/WHEEL`` file (``Tag:`` lines; compressed tags expanded)."""
    tags: list[Tag] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "tag" and value.strip():
            try:
                tags.extend(parse_tag(value.strip()))
            except ValueError:
                continue
    return tags


@dataclass(frozen=True)
class WheelVerdict:
    """Which parts of a wheel's tags the image cannot satisfy (empty when one tag fits)."""

    python_ok: bool
    platform_ok: bool
    glibc_ok: bool
    fits: bool
    needed_glibc: tuple[int, int] | None  # the lowest manylinux level among the wheel's tags


def judge_wheel_tags(tags: Iterable[Tag], target: WheelTarget) -> WheelVerdict:
    """Whether a wheel installed in an image fits it, and if not, which part does not."""
    tags = list(tags)
    supported = target.runnable_tags
    if any(tag in supported for tag in tags):
        return WheelVerdict(
            python_ok=True, platform_ok=True, glibc_ok=True, fits=True, needed_glibc=None
        )
    python_pairs = {(tag.interpreter, tag.abi) for tag in supported}
    python_ok = any((tag.interpreter, tag.abi) in python_pairs for tag in tags)
    platform_ok = False
    for tag in tags:
        parsed = parse_platform_tag(tag.platform)
        if parsed.family == "any" or (
            parsed.family in ("glibc", "linux") and parsed.arch == target.arch
        ):
            platform_ok = True
    needed = lowest_manylinux(tags)
    glibc_ok = needed is None or (target.glibc is not None and needed <= target.glibc[:2])
    return WheelVerdict(
        python_ok=python_ok,
        platform_ok=platform_ok,
        glibc_ok=glibc_ok,
        fits=False,
        needed_glibc=needed,
    )
