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
    Built,
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
