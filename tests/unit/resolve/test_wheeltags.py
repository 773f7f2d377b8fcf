from __future__ import annotations

import re
import subprocess

import pytest
from packaging.utils import parse_wheel_filename
from uv import find_uv_bin

from crossdock.errors import BaseImageError, ConfigError
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.resolve.wheeltags import (
    UV_MANYLINUX_MINORS,
    manylinux_platform_tags,
    uv_python_platform,
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
