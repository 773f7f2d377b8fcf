"""Caches make builds fast and never change what is built (issue 14): the record of the last
build answers an unchanged build with the same digests, a changed input (a code edit) is built
again, and a damaged record is detected and the build runs in full, to the same digest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.integration.test_native_build import (
    EXAMPLE,
    MIRRORS,
    REPO_ROOT,
    Built,
    Run,
    build_json,
    crossdock,
    layout_index_digest,
    uv_lock,
)

pytestmark = pytest.mark.integration

FROM_RECORD = "nothing changed since the last build"


def test_the_last_build_record_never_changes_a_digest(host_python: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "UV_PYTHON": host_python,
        "UV_PYTHON_DOWNLOADS": "never",
        "CROSSDOCK_REGISTRY_MIRRORS": MIRRORS,
        "CROSSDOCK_CACHE_DIR": str(tmp_path / "cache"),
    }
    env.pop("SOURCE_DATE_EPOCH", None)
    project = tmp_path / "example"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__")
    )
    uv_lock(project / "backend" / "api", env)
    main = project / "backend" / "api" / "app" / "main.py"
    original = main.read_text()

    def build(name: str) -> Built:
        layout = tmp_path / name
        run = crossdock(
            env,
            "build",
            "-C",
            str(project),
            "--service",
            "api",
            "--platform",
            "linux/arm64",
            "--oci-layout",
            str(layout),
            "--json",
        )
        built = Built(run, build_json(run), None, layout)
        # What the layout holds is what the build reported.
        assert layout_index_digest(layout) == built.index_digest
        return built

    first = build("first")
    assert FROM_RECORD not in first.run.stderr
    again = build("again")
    assert FROM_RECORD in again.run.stderr
    assert again.index_digest == first.index_digest
    assert sorted(p.name for p in (again.layout / "blobs" / "sha256").iterdir()) == sorted(
        p.name for p in (first.layout / "blobs" / "sha256").iterdir()
    )

    # A code edit is a change: built again (dependencies from their cache), another digest.
    main.write_text(original + "\n# edited\n")
    edited = build("edited")
    assert FROM_RECORD not in edited.run.stderr
    assert edited.index_digest != first.index_digest
    [report] = edited.report["platforms"]
    assert {la["role"]: la["cached"] for la in report["layers"]}["dependencies"] is True

    # The edit undone: the first build's record answers, with the first build's digest.
    main.write_text(original)
    undone = build("undone")
    assert FROM_RECORD in undone.run.stderr
    assert undone.index_digest == first.index_digest

    # A damaged record is detected: the build runs in full and gives the same digest.
    records = list((tmp_path / "cache" / "records" / "last-build").glob("*.rec"))
    assert len(records) == 2  # the first build's inputs and the edited ones
    for record in records:
        record.write_bytes(record.read_bytes().replace(b'"passed":true', b'"passed":false'))
    rebuilt = build("rebuilt")
    assert FROM_RECORD not in rebuilt.run.stderr
    assert rebuilt.index_digest == first.index_digest


def test_warm_caches_skip_no_check_and_change_no_digest(host_python: str, tmp_path: Path) -> None:
    """A code-only change takes the dependency layer's verification verdicts, the lock's recorded
    export and cached bytecode from the caches: a wrong-architecture library in the new code is
    still refused, and with the last-build records removed (every other cache warm) both
    platforms build to the cold build's index digest."""
    env = {
        **os.environ,
        "UV_PYTHON": host_python,
        "UV_PYTHON_DOWNLOADS": "never",
        "CROSSDOCK_REGISTRY_MIRRORS": MIRRORS,
        "CROSSDOCK_CACHE_DIR": str(tmp_path / "cache"),
        "SOURCE_DATE_EPOCH": "1700000000",
    }
    project = tmp_path / "example"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__")
    )
    uv_lock(project / "backend" / "api", env)
    app = project / "backend" / "api" / "app"

    def build(name: str, platforms: str = "linux/arm64,linux/amd64") -> Run:
        return crossdock(
            env,
            "build",
            "-C",
            str(project),
            "--service",
            "api",
            "--platform",
            platforms,
            "--oci-layout",
            str(tmp_path / name),
            "--json",
        )

    cold = build_json(build("cold"))["index"]
    verdicts = tmp_path / "cache" / "records" / "layer-verdicts"
    assert list(verdicts.glob("*.rec"))  # the dependency layers' verdicts were recorded

    # A code change that brings an x86_64 library into the arm64 image's app folder.
    native = app / "_speedups.cpython-313-aarch64-linux-gnu.so"
    native.write_bytes((REPO_ROOT / "tests" / "data" / "verify" / "x86_64-puts.so").read_bytes())
    refused = build("refused", "linux/arm64")
    assert refused.returncode == 6, refused.output  # VerificationError
    assert "_speedups.cpython-313-aarch64-linux-gnu.so" in refused.output
    assert "elf-platform" in refused.output
    assert not (tmp_path / "refused" / "index.json").exists()

    # Undone, and with no record of a last build: built in full from every other cache.
    native.unlink()
    shutil.rmtree(tmp_path / "cache" / "records" / "last-build")
    warm = build("warm")
    assert FROM_RECORD not in warm.stderr
    assert build_json(warm)["index"] == cold
