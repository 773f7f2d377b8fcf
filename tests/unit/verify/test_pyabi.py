from __future__ import annotations

import py_compile
import sys
from pathlib import Path

from packaging.tags import parse_tag

from crossdock.platform import ARM64
from crossdock.verify.pyabi import (
    judge_wheel_tags,
    parse_extension_suffix,
    parse_wheel_tags,
    pyc_magic_for,
    pyc_version,
)
from crossdock.wheeltags import WheelTarget

ARM64_313 = WheelTarget(ARM64, (3, 13), (2, 41))


def test_host_pyc_magic_is_known(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("x = 1\n")
    compiled = py_compile.compile(str(source), cfile=str(tmp_path / "m.pyc"))
    head = Path(compiled).read_bytes()[:16]  # type: ignore[arg-type]
    version, magic = pyc_version(head)  # type: ignore[misc]
    assert version == sys.version_info[:2]
    assert magic == pyc_magic_for(sys.version_info[:2])


def test_pyc_table():
    assert pyc_magic_for((3, 13)) == 3571
    assert pyc_magic_for((3, 14)) == 3627
    assert pyc_version((3495).to_bytes(2, "little") + b"\r\n") == ((3, 11), 3495)
    assert pyc_version((3625).to_bytes(2, "little") + b"\r\n") == ((3, 14), 3625)  # a beta
    assert pyc_version(b"not a pyc") is None


def test_extension_suffixes():
    ext = parse_extension_suffix("_core.cpython-313-aarch64-linux-gnu.so")
    assert ext is not None and ext.python == (3, 13) and ext.platform == "aarch64-linux-gnu"
    assert parse_extension_suffix("_core.cpython-313t-x86_64-linux-gnu.so").free_threaded  # type: ignore[union-attr]
    assert parse_extension_suffix("_speedups.cpython-313-darwin.so").platform == "darwin"  # type: ignore[union-attr]
    assert parse_extension_suffix("_rust.abi3.so").stable_abi  # type: ignore[union-attr]
    assert parse_extension_suffix("libfoo.so.1") is None


def test_wheel_tag_lines():
    text = (
        "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
        "Tag: cp313-cp313-manylinux_2_17_aarch64\nTag: cp313-cp313-manylinux2014_aarch64\n"
    )
    assert [str(t) for t in parse_wheel_tags(text)] == [
        "cp313-cp313-manylinux_2_17_aarch64",
        "cp313-cp313-manylinux2014_aarch64",
    ]
    assert len(parse_wheel_tags("Tag: py2.py3-none-any\n")) == 2


def _judge(tag, target=ARM64_313):
    return judge_wheel_tags(parse_tag(tag), target)


def test_wheel_verdicts():
    assert _judge("cp313-cp313-manylinux_2_28_aarch64").fits
    assert _judge("cp39-abi3-manylinux_2_17_aarch64").fits
    assert _judge("py3-none-any").fits
    wrong_twice = _judge("cp312-cp312-manylinux_2_17_x86_64")
    assert (wrong_twice.python_ok, wrong_twice.platform_ok, wrong_twice.glibc_ok) == (
        False,
        False,
        True,
    )
    too_new = _judge("cp313-cp313-manylinux_2_28_aarch64", WheelTarget(ARM64, (3, 13), (2, 17)))
    assert (too_new.python_ok, too_new.platform_ok, too_new.glibc_ok) == (True, True, False)
    assert too_new.needed_glibc == (2, 28)
    musl = _judge("cp313-cp313-musllinux_1_2_aarch64")
    assert not musl.fits and not musl.platform_ok
    free = _judge("cp313-cp313t-manylinux_2_17_aarch64")
    assert not free.python_ok
