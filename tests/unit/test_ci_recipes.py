"""The CI recipes of docs/ci.md: valid against GitHub's and GitLab's published schemas (as
vendored by check-jsonschema, so offline), shown whole in the page, and a pull request never
pushes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "docs" / "ci"
GITHUB = CI / "github-actions.yml"
GITLAB = CI / "gitlab-ci.yml"
SCHEMAS = {GITHUB: "vendor.github-workflows", GITLAB: "vendor.gitlab-ci"}
PUSH = "--env dev"


def _check_jsonschema() -> str:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("check-jsonschema is not installed: source scripts/dev-env.sh")
    return exe


def _schema_errors(path: Path, schema: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_check_jsonschema(), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def _load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=lambda p: p.name)
def test_recipe_matches_its_schema(path):
    checked = _schema_errors(path, SCHEMAS[path])
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("path", "good", "bad"),
    [
        (GITHUB, "runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"),
        (GITLAB, "  script:", "  scripts:"),
    ],
    ids=["github", "gitlab"],
)
def test_the_schema_check_catches_a_broken_recipe(tmp_path, path, good, bad):
    broken = tmp_path / path.name
    broken.write_text(path.read_text().replace(good, bad, 1))
    assert _schema_errors(broken, SCHEMAS[path]).returncode != 0


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=lambda p: p.name)
def test_the_page_shows_each_recipe_whole(path):
    assert path.read_text().strip() in (ROOT / "docs" / "ci.md").read_text()


def test_github_pull_requests_build_and_verify_and_only_main_pushes():
    workflow = _load(GITHUB)
    job = workflow["jobs"]["image"]
    assert job["strategy"]["matrix"]["service"]
    steps = job["steps"]
    main_only = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    for step in steps:
        if PUSH in step.get("run", "") or "configure-aws-credentials" in step.get("uses", ""):
            assert step.get("if") == main_only, step
    pr_steps = [s for s in steps if s.get("if") == "github.event_name == 'pull_request'"]
    assert any("crossdock build" in s["run"] and "crossdock verify" in s["run"] for s in pr_steps)
    assert workflow["permissions"]["id-token"] == "write"  # OIDC
    cached = " ".join(str(s.get("with", {}).get("path", "")) for s in steps)
    assert ".cache/crossdock" in cached
    assert any(s.get("with", {}).get("enable-cache") for s in steps)  # uv's cache


def test_gitlab_merge_requests_build_and_verify_and_only_main_pushes():
    pipeline = _load(GITLAB)
    template = pipeline[".image"]
    assert template["parallel"]["matrix"][0]["SERVICE_FOLDER"]
    cached = [path for entry in template["cache"] for path in entry["paths"]]
    assert cached == [".cache/uv", ".cache/crossdock"]
    review = pipeline["build-and-verify"]
    assert review["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert not any(PUSH in line for line in review["script"])
    publish = pipeline["publish"]
    assert any(PUSH in line for line in publish["script"])
    assert "main" in publish["rules"][0]["if"]
    assert publish["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"
