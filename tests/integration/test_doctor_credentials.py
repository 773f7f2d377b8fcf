"""`crossdock doctor` tries credentials for real (issue 13, point 6): on the stage's HTTPS
registry (token server on another host), a wrong password is a failure, the right one is
accepted, each naming where the credentials came from and never their value."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
EXAMPLE = Path(__file__).resolve().parents[2] / "example"


def _stage(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `bash stage/stage.sh up` and eval its env")
    return value


def _doctor(project: Path, password: str, tmp_path: Path) -> tuple[dict[str, object], str]:
    env = {
        **os.environ,
        "SSL_CERT_FILE": _stage("CROSSDOCK_STAGE_CA_BUNDLE"),
        "DOCKER_CONFIG": str(tmp_path / "docker"),
        "CROSSDOCK_REGISTRY_USERNAME": _stage("CROSSDOCK_STAGE_HTTPS_USER"),
        "CROSSDOCK_REGISTRY_PASSWORD": password,
        "CROSSDOCK_REGISTRY_HOST": _stage("CROSSDOCK_STAGE_HTTPS_REGISTRY"),
    }
    run = subprocess.run(
        [CROSSDOCK, "doctor", "-C", str(project), "--service", "api", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in run.stderr, run.stderr
    [finding] = [
        f
        for f in json.loads(run.stdout)["findings"]
        if f["check"] == "registry" and "environment sectest" in f["summary"]
    ]
    return finding, run.stdout + run.stderr


def test_doctor_tries_the_credentials(tmp_path):
    registry = _stage("CROSSDOCK_STAGE_HTTPS_REGISTRY")
    good = Path(_stage("CROSSDOCK_STAGE_HTTPS_PASSWORD_FILE")).read_text().strip()
    project = tmp_path / "example"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".venv", "__pycache__"))
    toml = project / "crossdock.toml"
    toml.write_text(
        toml.read_text() + f'\n[environments.sectest]\nrepository = "{registry}/tests/doctor"\n'
    )
    refused, output = _doctor(project, "not-the-password", tmp_path)
    assert refused["status"] == "fail", refused
    assert f"{registry} refused the credentials from environment" in str(refused["summary"])
    assert "not-the-password" not in output
    accepted, output = _doctor(project, good, tmp_path)
    assert accepted["status"] == "ok", accepted
    assert f"{registry} accepted the credentials from environment" in str(accepted["summary"])
    assert good not in output
