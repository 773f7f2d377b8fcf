"""Images proven to start, on the stage: a build whose command names a module the image does
not have is refused before anything is pushed (issue 11), through the CLI as users run it.

Needs `stage/stage.sh up`.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.test_native_build import (
    PROJECTS,
    assert_nothing_pushed,
    build_arm64_and_push,
    make_service,
    stage_env,
)

pytestmark = pytest.mark.integration

__all__ = ["stage_env"]  # the fixture, shared with test_native_build


def test_command_naming_a_missing_module_is_refused_before_push(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    """`python3.13 -m uvicorn app.main:app` where /app holds only src/plainsvc/."""
    project = tmp_path / "project"
    make_service(project, PROJECTS / "src-layout-as-files", lock_env=stage_env)
    repository = f"tests-{uuid.uuid4().hex[:10]}/missing-module"
    run = build_arm64_and_push(stage_env, project, repository)
    assert run.returncode == 6, run.output
    assert "failed verification; nothing was pushed" in run.stderr
    (row,) = [line for line in run.output.splitlines() if "startup" in line and "app.main" in line]
    assert "no module app.main in /app" in row
    assert "/app/src holds plainsvc" in run.output
    assert "(crossdock: [tool.crossdock] app, command" in run.output  # markup escaped
    assert_nothing_pushed(repository)
