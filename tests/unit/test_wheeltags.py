from __future__ import annotations

import re
import subprocess

import pytest
from packaging.utils import parse_wheel_filename
from uv import find_uv_bin

from crossdock.errors import BaseImageError, ConfigError
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.wheeltags import (
    UV_MANYLINUX_MINORS,
    PlatformTag,
    WheelTarget,
    manylinux_platform_tags,
    manylinux_tags,
    parse_platform_tag,
    uv_python_platform,
    wheel_arch,
    wheel_target,
)


@pytest.mark.parametrize(
    ("glibc", "amd64", "arm64"),
    [
        ((2, 41), "x86_64-manylinux_2_40", "aarch64-manylinux_2_40"),  # newer than uv knows
        ((2, 40), "x86_64-manylinux_2_40", "aarch64-manylinux_2_40"),
        ((2, 34), "x86_64-manylinux_2_34", "aarch64-manylinux_2_34"),  # Amazon Linux 2023
        ((2, 30), "x86_64-manylinux_2_28", "aarch64-manylinux_2_28"),  # uv has no 2_29/2_30
        ((2, 28), "x86_64-manylinux_2_28", "aarch64-manylinux_2_28"),
        ((2, 27), "x86_64-manylinux_2_17", "aarch64-manylinux_2_17"),
        ((2, 17), "x86_64-manylinux_2_17", "aarch64-manylinux_2_17"),
    ],
)
def test_uv_platform_is_the_highest_level_the_glibc_allows(glibc, amd64, arm64):
    assert uv_python_platform(AMD64, glibc) == amd64
    assert uv_python_platform(ARM64, glibc) == arm64


def test_glibc_older_than_2_17_is_refused():
    with pytest.raises(BaseImageError, match=r"glibc 2\.16.*older than 2\.17"):
        uv_python_platform(ARM64, (2, 16))


def test_unknown_platform_is_refused():
    with pytest.raises(ConfigError, match="no wheel platform"):
        uv_python_platform(Platform("linux", "riscv64"), (2, 41))


def test_table_matches_the_pinned_uv():
    """A uv upgrade that changes the accepted levels must show up here, not in a build."""
    help_text = subprocess.run(
        [find_uv_bin(), "pip", "install", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for arch in ("x86_64", "aarch64"):
        levels = sorted(
            {
                int(m)
                for m in re.findall(rf"{arch}-manylinux_2_(\d+)", re.sub(r"\s+", "", help_text))
            }
        )
        assert tuple(levels) == UV_MANYLINUX_MINORS, arch


def test_wheel_target_reads_versions_from_text():
    target = wheel_target(ARM64, "2.41", "3.13")
    assert target.glibc == (2, 41)
    assert target.python_version == (3, 13)
    assert target.uv_python_platform == "aarch64-manylinux_2_40"
    assert target.uv_python_version == "3.13"
    with pytest.raises(ConfigError, match="Python version"):
        wheel_target(ARM64, "2.41", "three")


def test_platform_tags_include_legacy_aliases_per_architecture():
    amd64 = manylinux_platform_tags(AMD64, (2, 28))
    assert amd64[0] == "manylinux_2_28_x86_64"
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(amd64)
    arm64 = manylinux_platform_tags(ARM64, (2, 28))
    assert arm64[0] == "manylinux_2_28_aarch64"
    assert arm64[-2:] == ("manylinux_2_17_aarch64", "manylinux2014_aarch64")
    assert not any("x86_64" in tag for tag in arm64)


@pytest.mark.parametrize(
    ("filename", "arm64_glibc_2_41", "arm64_glibc_2_17"),
    [
        ("numpy-2.5.5-cp313-cp313-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", True, False),
        ("numpy-2.5.5-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", False, False),
        (
            "cryptography-50.0.2-cp311-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.whl",
            True,
            True,
        ),
        ("docopt-0.6.2-py2.py3-none-any.whl", True, True),
        ("orjson-3.13.0-cp312-cp312-manylinux_2_17_aarch64.whl", False, False),  # other CPython
        ("orjson-3.13.0-cp313-cp313-musllinux_1_2_aarch64.whl", False, False),  # musl, not glibc
        ("orjson-3.13.0-cp313-cp313-linux_aarch64.whl", False, False),  # not portable
        ("x-1.0-cp313-cp313-manylinux_2_41_aarch64.whl", False, False),  # uv clamps to 2_40
    ],
)
def test_accepts(filename, arm64_glibc_2_41, arm64_glibc_2_17):
    tags = parse_wheel_filename(filename)[3]
    assert wheel_target(ARM64, "2.41", "3.13").accepts(tags) is arm64_glibc_2_41
    assert wheel_target(ARM64, "2.17", "3.13").accepts(tags) is arm64_glibc_2_17


def test_manylinux_tags_follow_glibc():
    arm = manylinux_tags("aarch64", (2, 28))
    assert arm[0] == "manylinux_2_28_aarch64"
    assert "manylinux2014_aarch64" in arm and "manylinux_2_16_aarch64" not in arm
    assert "manylinux1_x86_64" in manylinux_tags("x86_64", (2, 17))
    assert "manylinux2010_i686" in manylinux_tags("i686", (2, 17))
    assert manylinux_tags("aarch64", None) == ()  # no glibc: no manylinux wheel loads
    assert manylinux_tags("aarch64", (3, 1)) == ()


def test_bookworm_glibc_2_36_level():
    """Debian bookworm's glibc 2.36: uv installs for 2_36, exactly what the image loads."""
    target = wheel_target(AMD64, "2.36", "3.11")
    assert target.uv_python_platform == "x86_64-manylinux_2_36"
    assert target.cp == "cp311"
    numpy = parse_wheel_filename(
        "numpy-2.3.5-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
    )[3]
    assert target.accepts(numpy)
    assert not wheel_target(AMD64, "2.41", "3.13").accepts(numpy)  # another CPython
    too_new = parse_wheel_filename("x-1.0-cp311-cp311-manylinux_2_39_x86_64.whl")[3]
    assert not target.accepts(too_new)


def test_runnable_tags_use_the_real_glibc_and_plain_linux_tags():
    """Verification judges what the image can load: manylinux_2_41 on glibc 2.41 (uv itself
    installs at most 2_40) and linux_ARCH wheels built on a machine like the image."""
    target = WheelTarget(ARM64, (3, 13), (2, 41))
    newest = parse_wheel_filename("x-1.0-cp313-cp313-manylinux_2_41_aarch64.whl")[3]
    local = parse_wheel_filename("x-1.0-cp313-cp313-linux_aarch64.whl")[3]
    assert not target.accepts(newest) and not newest.isdisjoint(target.runnable_tags)
    assert not target.accepts(local) and not local.isdisjoint(target.runnable_tags)
    no_glibc = WheelTarget(ARM64, (3, 13), None)
    manylinux = parse_wheel_filename("x-1.0-cp313-cp313-manylinux_2_17_aarch64.whl")[3]
    assert manylinux.isdisjoint(no_glibc.runnable_tags)


def test_wheel_arch_accepts_arm64_with_or_without_variant():
    assert wheel_arch(Platform.parse("linux/arm64/v8")) == "aarch64"
    assert wheel_arch(Platform("linux", "arm64")) == "aarch64"
    assert wheel_arch(AMD64) == "x86_64"


@pytest.mark.parametrize(
    ("tag", "family", "arch", "level"),
    [
        ("manylinux_2_28_aarch64", "glibc", "aarch64", (2, 28)),
        ("manylinux2014_x86_64", "glibc", "x86_64", (2, 17)),
        ("manylinux2010_x86_64", "glibc", "x86_64", (2, 12)),
        ("manylinux1_i686", "glibc", "i686", (2, 5)),
        ("musllinux_1_2_aarch64", "musl", "aarch64", None),
        ("linux_x86_64", "linux", "x86_64", None),
        ("any", "any", "any", None),
        ("macosx_11_0_arm64", "other", "macosx_11_0_arm64", None),
    ],
)
def test_parse_platform_tag(tag, family, arch, level):
    assert parse_platform_tag(tag) == PlatformTag(family, arch, level)
