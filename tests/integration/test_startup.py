"""Images proven to start, on the stage: a build whose command names a module the image does
not have is refused before anything is pushed (issue 11), and `crossdock build --smoke` starts
each platform's image with docker (arm64 under QEMU) and imports its entry modules, through the
CLI as users run it.

Needs `stage/stage.sh up` and, for the tests marked docker, `stage/stage.sh docker`.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.support.stage import (
    BOTH,
    PROJECTS,
    REGISTRY,
    assert_nothing_pushed,
    build_arm64_and_push,
    build_service,
    make_service,
    skopeo_raw,
)

pytestmark = pytest.mark.integration


def test_command_naming_a_missing_module_is_refused_before_push(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    """`python3.13 -m uvicorn app.main:app` where /app holds only src/plainsvc/."""
    project = tmp_path / "project"
    make_service(project, PROJECTS / "src-layout-as-files", lock_env=stage_env)
    repository = f"tests-{uuid.uuid4().hex[:10]}/missing-module"
    run = build_arm64_and_push(stage_env, project, repository)
    assert run.returncode == 6, run.output
    assert "failed verification; nothing was written or pushed" in run.stderr
    (row,) = [line for line in run.output.splitlines() if "startup" in line and "app.main" in line]
    assert "no module app.main in /app" in row
    assert "/app/src holds plainsvc" in run.output
    assert "(crossdock: [tool.crossdock] app, command" in run.output  # markup escaped
    assert_nothing_pushed(repository)


# -- crossdock build --smoke: the images started with docker, their entry modules imported ----


@pytest.mark.docker
def test_smoke_imports_the_example_s_entry_modules_on_both_platforms(
    example: Path, stage_env: dict[str, str]
) -> None:
    repository = f"tests-{uuid.uuid4().hex[:10]}/smoke"
    run = build_service(
        stage_env,
        example,
        BOTH,
        "--smoke",
        "--push",
        f"{REGISTRY}/{repository}:latest",
        timeout=1800,
    )
    assert run.returncode == 0, run.output
    for machine in ("aarch64", "x86_64"):
        assert f"smoke: uvicorn, app.main imported ({machine})" in run.stderr, run.stderr
    # The smoke test ran before the push: both lines come before the first pushed blob.
    assert run.stderr.index("imported (aarch64)") < run.stderr.index("pushed")
    assert skopeo_raw(f"{REGISTRY}/{repository}:latest")["manifests"]


@pytest.mark.docker
def test_smoke_refuses_an_entry_module_that_fails_to_import(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    """The module file is there (the startup check passes), but importing it fails."""
    project = tmp_path / "project"
    service = make_service(project, PROJECTS / "numpy-any-python", lock_env=stage_env)
    (service / "app" / "main.py").write_text("import a_module_no_image_has\napp = None\n")
    repository = f"tests-{uuid.uuid4().hex[:10]}/smoke-fails"
    run = build_service(
        stage_env,
        project,
        "linux/amd64",
        "--smoke",
        "--push",
        f"{REGISTRY}/{repository}:latest",
    )
    assert run.returncode == 6, run.output
    # The files alone looked fine: the verify step passed (one line per step off a terminal).
    assert re.search(r"^amd64 verify \([0-9.]+s\)  \d+ files checked, passed$", run.stderr, re.M)
    assert "did not import uvicorn, app.main when started" in run.stderr
    assert "No module named 'a_module_no_image_has'" in run.stderr
    assert_nothing_pushed(repository)
