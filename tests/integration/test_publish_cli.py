"""Publishing through the CLI on the local stage: `crossdock build --env dev` of the example
(a temp copy in its own git repository, whose crossdock.toml points dev and prod at a fresh
repository of the stage registry), checked tag by tag with skopeo; a re-run uploads nothing;
`--env prod --dry-run` pushes nothing; Lambda tags name single-architecture manifests; and
`build --oci-layout` then `crossdock push` works in two steps. The ECR path (repository check,
immutable tags) runs against moto's server for the ECR API and the stage registry for blobs.

Needs `stage/stage.sh up` (registry on 127.0.0.1:5555 with the base stand-ins) and skopeo.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from uv import find_uv_bin

from crossdock.errors import NotFoundError
from crossdock.publish.release import ReleaseRequest, plan_release, run_release
from crossdock.registry.client import RegistryClient
from crossdock.registry.ecr import EcrRegistry
from crossdock.registry.reference import Reference
from crossdock.registry.responses import ImmutableTagError
from crossdock.sources.oci_layout import read_oci_build
from tests.support.prerequisites import needs_tools, require_module

pytestmark = [
    pytest.mark.integration,
    needs_tools("skopeo", "git"),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "example"
REGISTRY = os.environ.get("CROSSDOCK_STAGE_REGISTRY", "127.0.0.1:5555")
MIRRORS = f"docker.io={REGISTRY},public.ecr.aws={REGISTRY}"
CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
RUN_ID = uuid.uuid4().hex[:8]
SEED_SUFFIXES = ("-{ts}", "-{ts}-arm64", "-arm64-latest", "-latest")


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stage_env(host_python):
    # uv needs a host Python >= 3.13 for the example's lock.
    env = {**os.environ, "CROSSDOCK_REGISTRY_MIRRORS": MIRRORS, "UV_PYTHON": host_python}
    with RegistryClient(REGISTRY) as client:
        # Fails clearly when the stage is down, rather than deep inside a build.
        client.get_manifest(Reference.parse(f"{REGISTRY}/library/python:3.13-slim"))
    return env


def git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def project(tmp_path_factory, stage_env):
    """A copy of the example, locked, committed in its own git repository, publishing to a
    fresh repository of the stage registry (dev and prod alike, so prod tags would show)."""
    root = tmp_path_factory.mktemp("publish") / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__"))
    subprocess.run(
        [find_uv_bin(), "lock", "--quiet"], cwd=root / "backend" / "api", check=True, env=stage_env
    )
    repository = f"{REGISTRY}/publish-{RUN_ID}/api"
    (root / "crossdock.toml").write_text(
        'services-dir = "backend"\nproduction-arch = "arm64"\n'
        'platforms = ["linux/arm64", "linux/amd64"]\n'
        f'[environments.dev]\nrepository = "{repository}"\n'
        f'[environments.prod]\nrepository = "{repository}"\n'
    )
    (root / ".gitignore").write_text("uv.lock\n.venv/\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "example")
    return root


def crossdock(env: dict[str, str], *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [CROSSDOCK, *args, "--json"], capture_output=True, text=True, env=env, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    data: dict[str, Any] = json.loads(completed.stdout)
    return data


def skopeo_raw(ref: str) -> bytes:
    return subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        check=True,
    ).stdout


def skopeo_tags(repository: str, *, referrers: bool = False) -> set[str]:
    """The release tags of ``repository`` (or, with ``referrers``, only the referrers tag schema's
    ``sha256-<hex>`` tags, which hold each image's SBOM on a registry without the referrers API)."""
    completed = subprocess.run(
        ["skopeo", "list-tags", "--tls-verify=false", f"docker://{repository}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:  # no such repository yet: no tags
        return set()
    tags = set(json.loads(completed.stdout)["Tags"])
    return {t for t in tags if t.startswith("sha256-") == referrers}


def sha256(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def config_architecture(ref: str) -> str:
    out = subprocess.run(
        ["skopeo", "inspect", "--config", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        check=True,
    ).stdout
    return str(json.loads(out)["architecture"])


def timestamp_of(tags: list[dict[str, Any]]) -> str:
    first = str(tags[0]["tag"])  # ENV-TS, the first template
    return first.split("-", 1)[1]


# -- tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_release(project, stage_env, tmp_path_factory):
    layout = tmp_path_factory.mktemp("layout") / "oci"
    result = crossdock(
        stage_env,
        "build", "-C", str(project), "-s", "api", "--env", "dev", "--oci-layout", str(layout),
    )  # fmt: skip
    return result, layout


def test_build_env_dev_pushes_the_seed_tags_checked_with_skopeo(project, dev_release):
    result, _ = dev_release
    push = result["push"]
    repository = push["repository"]
    assert repository == f"{REGISTRY}/publish-{RUN_ID}/api"
    assert push["dry_run"] is False
    sha = git(project, "rev-parse", "--short=7", "HEAD")
    assert push["git"] == {"sha": sha, "dirty": False}
    ts = timestamp_of(push["tags"])
    arm64_tags = {f"dev{s.format(ts=ts)}" for s in SEED_SUFFIXES} | {f"{sha}-arm64", sha}
    amd64_tags = {f"dev-{ts}-amd64", "dev-amd64-latest", f"{sha}-amd64"}
    assert skopeo_tags(repository) == arm64_tags | amd64_tags
    # One referrers tag (the SBOM) per pushed platform manifest, none for the index.
    manifests = {str(p["image_digest"]) for p in result["platforms"]}
    assert skopeo_tags(repository, referrers=True) == {
        "sha256-" + d.removeprefix("sha256:") for d in manifests
    }

    by_platform = {p["platform"]: p["image_digest"] for p in result["platforms"]}
    arm, amd = by_platform["linux/arm64/v8"], by_platform["linux/amd64"]
    index = result["index"]
    expected = {
        f"dev-{ts}-arm64": arm,
        "dev-arm64-latest": arm,
        f"{sha}-arm64": arm,
        f"dev-{ts}-amd64": amd,
        "dev-amd64-latest": amd,
        f"{sha}-amd64": amd,
        # App Runner (the example's target) with two platforms: the unsuffixed tags name the
        # index, which resolves to the arm64 image on arm64.
        f"dev-{ts}": index,
        "dev-latest": index,
        sha: index,
    }
    for tag, digest in expected.items():
        assert sha256(skopeo_raw(f"{repository}:{tag}")) == digest, tag
    assert config_architecture(f"{repository}:dev-arm64-latest") == "arm64"
    assert config_architecture(f"{repository}:dev-amd64-latest") == "amd64"
    listed = json.loads(skopeo_raw(f"{repository}:dev-latest"))["manifests"]
    assert {m["digest"] for m in listed} == {arm, amd}
    assert push["pushed"]["blobs_uploaded"] + push["pushed"]["blobs_mounted"] > 0


def test_rerun_uploads_no_blob(project, stage_env, dev_release):
    again = crossdock(stage_env, "build", "-C", str(project), "-s", "api", "--env", "dev")
    pushed = again["push"]["pushed"]
    assert pushed["blobs_uploaded"] == 0
    assert pushed["bytes_uploaded"] == 0
    assert pushed["blobs_mounted"] == 0
    # Same image, so the per-architecture -latest and SHA tags stay where they were.
    statuses = {t["tag"]: t["status"] for t in again["push"]["tags"]}
    assert statuses["dev-arm64-latest"] == "unchanged"
    assert statuses["dev-latest"] == "unchanged"


def test_prod_dry_run_pushes_nothing(project, stage_env, dev_release):
    before = skopeo_tags(f"{REGISTRY}/publish-{RUN_ID}/api")
    result = crossdock(
        stage_env, "build", "-C", str(project), "-s", "api", "--env", "prod", "--dry-run"
    )
    push = result["push"]
    assert push["dry_run"] is True
    assert "pushed" not in push
    # prod is arm64 only: the build itself was narrowed to the production architecture.
    assert [p["platform"] for p in result["platforms"]] == ["linux/arm64/v8"]
    assert {t["points_to"] for t in push["tags"]} == {"linux/arm64/v8"}
    assert len(push["tags"]) == 6
    after = skopeo_tags(f"{REGISTRY}/publish-{RUN_ID}/api")
    assert after == before
    assert not any(tag.startswith("prod") for tag in after)


def test_prod_refuses_an_amd64_only_build(project, stage_env):
    completed = subprocess.run(
        [CROSSDOCK, "build", "-C", str(project), "-s", "api", "--env", "prod",
         "--platform", "linux/amd64", "--dry-run"],
        capture_output=True, text=True, env=stage_env, check=False,
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr
    assert "prod always runs linux/arm64" in completed.stderr


def test_built_then_pushed_in_two_steps(dev_release, stage_env):
    result, layout = dev_release
    target = f"{REGISTRY}/publish-{RUN_ID}/two-step"
    pushed = crossdock(stage_env, "push", str(layout), "--to", f"{target}:v1")
    assert {t["tag"] for t in pushed["tags"]} == {"v1", "v1-arm64", "v1-amd64"}
    assert sha256(skopeo_raw(f"{target}:v1")) == result["index"]
    by_platform = {p["platform"]: p["image_digest"] for p in result["platforms"]}
    assert sha256(skopeo_raw(f"{target}:v1-arm64")) == by_platform["linux/arm64/v8"]
    assert sha256(skopeo_raw(f"{target}:v1-amd64")) == by_platform["linux/amd64"]


def test_lambda_tags_name_single_architecture_manifests(project, stage_env):
    repository = f"{REGISTRY}/publish-{RUN_ID}/lambda"
    result = crossdock(
        stage_env,
        "build", "-C", str(project), "-s", "api", "--target", "lambda",
        "--push", repository, "--env", "dev", "--git-sha", "feedbee",
    )  # fmt: skip
    assert result["index"] is None
    assert result["push"]["git"] == {"sha": "feedbee", "dirty": None}
    arm = next(p["image_digest"] for p in result["platforms"] if "arm64" in p["platform"])
    tags = skopeo_tags(repository)
    assert len(tags) == 9
    for tag in tags:
        raw = skopeo_raw(f"{repository}:{tag}")
        assert "manifests" not in json.loads(raw), f"{tag} names an index"
    for unsuffixed in ("dev-latest", "feedbee"):
        assert sha256(skopeo_raw(f"{repository}:{unsuffixed}")) == arm


# -- ECR: moto's ECR API on loopback, the stage registry for the blobs ----------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ecr_repository_check_and_immutable_tags(dev_release, monkeypatch, tmp_path):
    server_module = require_module("moto.server")
    boto3 = require_module("boto3")
    account, region = "123456789012", "us-east-1"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
    }.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    moto = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    try:
        ecr = EcrRegistry(account, region, f"http://127.0.0.1:{port}")
        _, layout = dev_release
        images = read_oci_build(layout)
        name = f"ecr-{RUN_ID}/api"
        request = ReleaseRequest(Reference.parse(f"{REGISTRY}/{name}"), None, tag="v1")
        plan = plan_release(images, request)
        with RegistryClient(REGISTRY, ecr=ecr) as client:
            with pytest.raises(NotFoundError, match="--create-repository"):
                run_release(plan, client=client)
            assert skopeo_tags(f"{REGISTRY}/{name}") == set()

            first = run_release(plan, client=client, create_repository=True)
            assert first.immutable is False
            api = boto3.client("ecr", region_name=region, endpoint_url=ecr.endpoint_url)
            api.put_image_tag_mutability(
                registryId=account, repositoryName=name, imageTagMutability="IMMUTABLE"
            )
            again = run_release(plan, client=client)
            assert again.immutable is True
            assert again.report is not None
            assert sorted(again.report.tags_unchanged) == ["v1", "v1-amd64", "v1-arm64"]

            # v1 now names the arm64 image alone: an immutable repository cannot move it.
            arm64_only = plan_release(
                images, ReleaseRequest(request.repository, None, tag="v1", single_manifests=True)
            )
            with pytest.raises(ImmutableTagError, match="would move 1 of them; nothing was"):
                run_release(arm64_only, client=client)
        assert images.index is not None
        assert sha256(skopeo_raw(f"{REGISTRY}/{name}:v1")) == str(images.index.digest)
    finally:
        moto.stop()
