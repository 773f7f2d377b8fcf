"""crossdock as users install it: the wheel `uv build` makes, installed into a clean virtual
environment (not this editable checkout), builds the example service and verifies the result.

Needs the stage (the example's base image comes from its registry) and PyPI (the wheel's
dependencies and the example's wheels).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from uv import find_uv_bin

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, host_python: str) -> Path:
    """The ``crossdock`` script of a fresh venv holding only the built wheel and its deps."""
    work = tmp_path_factory.mktemp("wheel")
    uv = find_uv_bin()
    subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(work / "dist"), str(REPO_ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = (work / "dist").glob("crossdock-*.whl")
    venv = work / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", host_python, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
        timeout=600,
    )
    return venv / "bin" / "crossdock"


def _clean_env(tmp: Path) -> dict[str, str]:
    """This environment without anything pointing at the checkout (PYTHONPATH, the dev venv)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    env["CROSSDOCK_CACHE_DIR"] = str(tmp / "cache")
    return env


def test_the_installed_wheel_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    python = installed.parent / "python"
    where = subprocess.run(
        [python, "-c", "import crossdock, pathlib; print(pathlib.Path(crossdock.__file__))"],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed.parent.parent), where
    version = subprocess.run(
        [installed, "--version"], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    assert version.startswith("crossdock ") and "\nuv " in version and "\nPython " in version
    # Package data made it into the wheel: the project templates `crossdock init` writes.
    init = subprocess.run(
        [installed, "init", str(tmp_path / "new"), "--service", "svc"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "new" / "backend" / "Dockerfile.apprunner").is_file()


def test_the_installed_wheel_builds_and_verifies_the_example(
    installed: Path, tmp_path: Path
) -> None:
    registry = os.environ.get("CROSSDOCK_STAGE_REGISTRY")
    if not registry:
        pytest.skip("CROSSDOCK_STAGE_REGISTRY is not set: run `stage/stage.sh up` and its env")
    env = _clean_env(tmp_path)
    env["CROSSDOCK_REGISTRY_MIRRORS"] = f"docker.io={registry},public.ecr.aws={registry}"
    project = tmp_path / "example"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".venv", "uv.lock", "*.pyc"))
    service = project / "backend" / "api"
    subprocess.run([find_uv_bin(), "lock", "--quiet"], cwd=service, env=env, check=True)
    layout = tmp_path / "out"
    built = subprocess.run(
        [installed, "build", "-C", str(project), "--service", "api", "--json",
         "--platform", "linux/arm64,linux/amd64", "--oci-layout", f"oci:{layout}:smoke"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    result = json.loads(built.stdout)
    assert sorted(p["platform"] for p in result["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    verified = subprocess.run(
        [installed, "verify", f"oci:{layout}:smoke", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr[-3000:]
    report = json.loads(verified.stdout)
    assert report["passed"]
    assert sorted(p["platform"] for p in report["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
