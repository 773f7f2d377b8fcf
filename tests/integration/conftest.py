"""What every integration test shares."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from crossdock.resolve.bytecode import find_host_python
from tests.support.stage import (
    EXAMPLE,
    STAGE_BASE,
    free_port,
    skopeo_raw,
    stage_environment,
    uv_lock,
)

# The example services require Python >= 3.13; the stage's bases run 3.13.
SERVICE_PYTHON = "3.13"


@pytest.fixture(scope="session")
def host_python() -> str:
    """A host interpreter of the services' Python version: `uv lock` and `uv export --locked`
    need one for the >=3.13 projects, and crossdock compiles the image's bytecode with it.
    Found the way crossdock finds it (scripts/dev-env.sh sets UV_PYTHON)."""
    python = find_host_python(SERVICE_PYTHON)
    if python is None:
        pytest.fail(
            f"no Python {SERVICE_PYTHON} on this host: source scripts/dev-env.sh (sets UV_PYTHON)"
        )
    return python


@pytest.fixture(scope="module")
def example_env(host_python: str) -> dict[str, str]:
    """The environment the crossdock CLI runs with on the stage: the host Python for uv, and
    the public base names mapped to the stage registry."""

    registry = os.environ.get("CROSSDOCK_STAGE_REGISTRY", "127.0.0.1:5555")
    return {
        **os.environ,
        "UV_PYTHON": host_python,
        "CROSSDOCK_REGISTRY_MIRRORS": f"docker.io={registry},public.ecr.aws={registry}",
    }


@pytest.fixture(scope="module")
def locked_example(tmp_path_factory: pytest.TempPathFactory, example_env: dict[str, str]) -> Path:
    """A copy of the example project, its `api` service locked with uv (uv.lock is not
    committed)."""
    import shutil
    import subprocess

    from uv import find_uv_bin

    root = tmp_path_factory.mktemp("example") / "example"
    shutil.copytree(
        Path(__file__).resolve().parents[2] / "example",
        root,
        ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__"),
    )
    subprocess.run(
        [find_uv_bin(), "lock", "--quiet"],
        cwd=root / "backend" / "api",
        check=True,
        env=example_env,
    )
    return root


# -- the stage: what the CLI runs with, the example project -----------------------------------


@pytest.fixture(scope="module")
def stage_env(host_python: str) -> dict[str, str]:
    """The environment the CLI runs with: stage mirrors and a host Python 3.13 for uv (locks of
    the >=3.13 services, and the bytecode compiler for the image's Python 3.13)."""
    env = stage_environment(host_python)
    # Fails clearly when the stage is down, rather than deep inside a build.
    skopeo_raw(STAGE_BASE)
    return env


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, stage_env: dict[str, str], port: int) -> Path:
    """A copy of the example project in a git repository of its own, its api service locked,
    listening on a free port (the image's CMD carries the configured port)."""
    root = tmp_path_factory.mktemp("example") / "example"
    shutil.copytree(
        EXAMPLE,
        root,
        ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__", "out"),
    )
    pyproject = root / "backend" / "api" / "pyproject.toml"
    text = pyproject.read_text()
    assert "port = 8080" in text
    pyproject.write_text(text.replace("port = 8080", f"port = {port}"))
    uv_lock(root / "backend" / "api", stage_env)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "--quiet"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "example"], cwd=root, check=True)
    return root
