from __future__ import annotations

import io
import json
from dataclasses import replace

from rich.console import Console

from crossdock.platform import AMD64, ARM64
from crossdock.rootfs.baseprofile import read_base_profile
from crossdock.verify import Check, reports_to_json, verify_image
from crossdock.verify.pyabi import pyc_version
from tests.support.layertar import fixture_bytes, other_python_pyc
from tests.support.miniimage import config_for, image

SITE = "usr/local/lib/python3.13/dist-packages"
WHEEL_OK = b"Wheel-Version: 1.0\nTag: cp313-cp313-manylinux_2_17_aarch64\n"


def _failures(report):
    return {(str(f.check), f.file.path) for f in report.failures}


def test_a_correct_arm64_image_passes(tmp_path):
    layers = image(
        tmp_path,
        ARM64,
        [
            (
                f"{SITE}/pkg/_ok.cpython-313-aarch64-linux-gnu.so",
                "file",
                fixture_bytes("aarch64-puts.so"),
            ),
            (f"{SITE}/pkg/_abi3.abi3.so", "file", fixture_bytes("aarch64-pthread.so")),
            (f"{SITE}/pkg-1.0.dist-info/WHEEL", "file", WHEEL_OK),
            (f"{SITE}/pkg/__init__.py", "file", b""),
        ],
    )
    report = verify_image(config_for(ARM64, layers=layers), layers)
    assert report.passed, report.failures
    assert report.python_version == "3.13"
    assert report.glibc.available == "2.36"
    # The highest need is the base's own (libstdc++ needs its libc's newest); ours need 2.34.
    assert report.glibc.required == "2.36"
    assert report.glibc.required_by.startswith("/usr/lib/aarch64-linux-gnu/")  # type: ignore[union-attr]
    assert report.counts["elf"] == 5  # libc, libstdc++, python, two extensions
    assert report.counts["wheel"] == 1
    assert {"elf-platform", "glibc", "pyc-magic", "wheel-python"} <= set(report.checks)


def test_every_kind_of_wrong_is_named(tmp_path):
    host_pyc = other_python_pyc(tmp_path)
    host_version = pyc_version(host_pyc)[0]  # type: ignore[index]
    layers = image(
        tmp_path,
        ARM64,
        [
            # An amd64 extension module under an arm64 name (copied from the wrong build).
            (
                f"{SITE}/pkg/_bad.cpython-313-aarch64-linux-gnu.so",
                "file",
                fixture_bytes("x86_64-puts.so"),
            ),
            # A cp312 extension for x86-64 in a 3.13 arm64 image.
            (
                f"{SITE}/pc/_core.cpython-312-x86_64-linux-gnu.so",
                "file",
                fixture_bytes("x86_64-puts.so"),
            ),
            (f"{SITE}/pc-2.0.dist-info/WHEEL", "file", b"Tag: cp312-cp312-manylinux_2_17_x86_64\n"),
            # A macOS .so copied from a laptop; and a Windows .pyd.
            (
                f"{SITE}/mac/_speedups.cpython-313-darwin.so",
                "file",
                fixture_bytes("macos-arm64-head.bin"),
            ),
            ("app/win.pyd", "file", fixture_bytes("win-amd64-pyd-head.bin")),
            # Bytecode written by the host Python.
            ("app/__pycache__/m.cpython-311.pyc", "file", host_pyc),
        ],
    )
    report = verify_image(config_for(ARM64, layers=layers), layers)
    failures = _failures(report)
    assert ("elf-platform", f"/{SITE}/pkg/_bad.cpython-313-aarch64-linux-gnu.so") in failures
    assert ("elf-platform", f"/{SITE}/pc/_core.cpython-312-x86_64-linux-gnu.so") in failures
    suffix = [f for f in report.failures if f.check is Check.EXTENSION_SUFFIX]
    assert {(f.expected.split()[0], f.found) for f in suffix} >= {
        ("cpython-313", "cpython-312"),
        ("aarch64-linux-gnu", "x86_64-linux-gnu"),
    }
    assert ("wheel-python", f"/{SITE}/pc-2.0.dist-info/WHEEL") in failures
    assert ("wheel-platform", f"/{SITE}/pc-2.0.dist-info/WHEEL") in failures
    assert ("foreign-binary", f"/{SITE}/mac/_speedups.cpython-313-darwin.so") in failures
    assert ("foreign-binary", "/app/win.pyd") in failures
    pyc = next(f for f in report.failures if f.check is Check.PYC_MAGIC)
    assert pyc.file.path == "/app/__pycache__/m.cpython-311.pyc"
    assert f"Python {host_version[0]}.{host_version[1]}" in pyc.found  # type: ignore[index]
    assert pyc.file.layer_index == 1
    assert not report.passed


def test_entrypoint_of_the_wrong_architecture(tmp_path):
    layers = image(tmp_path, ARM64, [("app/server", "file", fixture_bytes("x86_64-hello"))])
    report = verify_image(
        config_for(ARM64, entrypoint=["./server", "--port", "8080"], layers=layers), layers
    )
    entry = [f for f in report.failures if f.check is Check.ENTRYPOINT]
    assert len(entry) == 1
    assert entry[0].file.path == "/app/server"
    assert "EM_X86_64" in entry[0].found


def test_script_entrypoint_checks_its_interpreter(tmp_path):
    layers = image(tmp_path, ARM64, [("app/run.py", "file", b"#!/usr/bin/python3\nprint(1)\n")])
    report = verify_image(config_for(ARM64, entrypoint=["/app/run.py"], layers=layers), layers)
    assert report.passed, report.failures


def test_glibc_needed_beyond_the_base(tmp_path):
    layers = image(
        tmp_path,
        AMD64,
        [
            (
                f"{SITE}/t/_t.cpython-313-x86_64-linux-gnu.so",
                "file",
                fixture_bytes("x86_64-pthread.so"),
            )
        ],
    )
    profile = read_base_profile(config_for(AMD64), layers[:1])
    old = replace(profile, glibc_version="2.28")  # as if the base were an older distribution
    report = verify_image(config_for(AMD64, layers=layers), layers, profile=old, first_layer=1)
    glibc = [f for f in report.failures if f.check is Check.GLIBC]
    assert [f.file.path for f in glibc] == [f"/{SITE}/t/_t.cpython-313-x86_64-linux-gnu.so"]
    assert glibc[0].found == "needs GLIBC_2.34"
    assert report.glibc.required == "2.34"
    assert report.glibc.required_by == glibc[0].file.path
    # Base layers were not scanned (first_layer=1): only the one file was.
    assert report.counts["elf"] == 1


def test_allow_rules_demote_and_are_reported(tmp_path):
    layers = image(tmp_path, ARM64, [("opt/tools/x86", "file", fixture_bytes("x86_64-hello"))])
    report = verify_image(
        config_for(ARM64, layers=layers), layers, allow=["elf-platform:/opt/tools/*"]
    )
    assert report.passed
    assert [(str(f.check), f.allowed_by) for f in report.allowed] == [
        ("elf-platform", "elf-platform:/opt/tools/*")
    ]
    assert any("allowed" in n for n in report.notes)
    # A rule for another check does not hide this one.
    strict = verify_image(config_for(ARM64, layers=layers), layers, allow=["glibc:/opt/tools/*"])
    assert not strict.passed


def test_report_renders_for_people_and_ci(tmp_path):
    layers = image(tmp_path, ARM64, [("app/bad.so", "file", fixture_bytes("x86_64-puts.so"))])
    report = verify_image(config_for(ARM64, layers=layers), layers)
    data = json.loads(json.dumps(reports_to_json([report])))
    assert data["passed"] is False
    assert data["platforms"][0]["failures"][0]["path"] == "/app/bad.so"
    assert data["platforms"][0]["failures"][0]["layer_index"] == 1
    out = io.StringIO()
    report.render(Console(file=out, width=200))
    text = out.getvalue()
    assert "FAIL" in text and "/app/bad.so" in text and "elf-platform" in text


def test_a_layer_entry_escaping_the_root_fails(tmp_path):
    layers = image(tmp_path, AMD64, [("../../etc/cron.d/x", "file", b"* * * * * root sh\n")])
    report = verify_image(config_for(AMD64, layers=layers), layers)
    assert _failures(report) == {("unsafe-path", "../../etc/cron.d/x")}
