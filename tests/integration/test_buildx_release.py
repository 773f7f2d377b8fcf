"""`crossdock build --backend buildx --env dev` on the real stage: dockerd's BuildKit builds the
example's Dockerfile.lambda for linux/amd64 (no QEMU), crossdock verifies the pushed image and
then writes the seed's tags with the same release code as a native build.

arm64 is not built (QEMU takes minutes), so the production architecture is missing: plan_tags
then writes only the amd64-suffixed tags, never the unsuffixed ones (which would claim arm64).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from crossdock import (
    AMD64,
    BuildxBackend,
    DockerStore,
    load_config,
    make_plan,
    prepare_release,
    release,
)
from crossdock.build import build
from crossdock.image.mediatypes import MediaType
from crossdock.progress import NO_PROGRESS
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Mirrors, Reference
from tests.integration.test_seed_workflow import CROSSDOCK, EXAMPLE, MIRRORS, registry
from tests.support.prerequisites import needs_tools
from tests.support.registry import InProcessRegistry

__all__ = ["registry"]  # the stage fixture (skips without the stage or dockerd)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.docker,
    needs_tools("skopeo"),
]


def example_copy(tmp_path: Path, repository: str) -> Path:
    """The example project, its environments pointing at ``repository``, committed (SHA tags)."""
    dest = tmp_path / "example"
    shutil.copytree(
        EXAMPLE, dest, ignore=shutil.ignore_patterns(".venv", "out", "__pycache__", ".pytest_cache")
    )
    toml = dest / "crossdock.toml"
    toml.write_text(toml.read_text().replace("127.0.0.1:5555/myapp", repository))
    git = ["git", "-c", "user.name=crossdock-test", "-c", "user.email=test@invalid"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "example"], cwd=dest, check=True)
    if not (dest / "backend" / "api" / "uv.lock").is_file():  # git-ignored: maybe not locked yet
        subprocess.run(["uv", "lock", "--project", str(dest / "backend" / "api")], check=True)
    return dest


def skopeo(*args: str) -> str:
    return subprocess.run(
        ["skopeo", *args, "--tls-verify=false"], capture_output=True, text=True, check=True
    ).stdout


def buildx_build(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`crossdock build` of the example's api service with the buildx backend and ``args``."""
    return subprocess.run(
        [str(CROSSDOCK), "build", "-C", str(project), "-s", "api", "--backend", "buildx", *args],
        env={**os.environ, "CROSSDOCK_REGISTRY_MIRRORS": MIRRORS},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


def test_buildx_env_dev_amd64_tags_the_verified_manifest(registry: str, tmp_path: Path) -> None:
    repository = f"{registry}/buildx-release-{uuid.uuid4().hex[:8]}"
    project = example_copy(tmp_path, repository)
    done = buildx_build(
        project,
        *("--dockerfile", "backend/Dockerfile.lambda", "--platform", "linux/amd64"),
        *("--env", "dev", "--json"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    (image,) = result["images"]
    assert image["verification"]["passed"] is True
    verified_digest = image["reference"].rpartition("@")[2]
    sha = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    tags = set(json.loads(skopeo("list-tags", f"docker://{repository}"))["Tags"])
    staging = {t for t in tags if t.startswith("crossdock-staging-")}
    assert len(staging) == 1, tags  # buildx's push, before verification: not a release tag
    # The stage's registry (distribution 2.8) deletes manifests by digest only: asked to delete
    # the staging tag alone, it refuses, and the tag stays (the release's tags name its manifest).
    assert result["staging_tags"]["removed"] == []
    assert result["staging_tags"]["left"] == sorted(staging)
    assert "400 DIGEST_INVALID" in result["staging_tags"]["note"]
    released = tags - staging
    stamped = [t for t in released if t.startswith("dev-2")]
    assert len(stamped) == 1 and stamped[0].endswith("-amd64"), released
    assert released == {stamped[0], "dev-amd64-latest", f"{sha}-amd64"}
    # No unsuffixed tag: they belong to the production architecture (arm64), not built here.
    assert not released & {"dev-latest", sha, stamped[0].removesuffix("-amd64")}

    for tag in sorted(released):
        raw = skopeo("inspect", "--raw", f"docker://{repository}:{tag}").encode()
        assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == verified_digest, tag
        assert "manifests" not in json.loads(raw)  # Lambda: a single-architecture manifest
        config = json.loads(skopeo("inspect", "--config", f"docker://{repository}:{tag}"))
        assert config["architecture"] == "amd64"
    assert {t["tag"] for t in result["push"]["tags"]} == released
    assert result["push"]["pushed"]["blobs_uploaded"] == 0  # buildx pushed them; only tags moved


def test_buildx_plain_push_says_once_that_its_staging_tag_stays(
    registry: str, tmp_path: Path
) -> None:
    """`--push REPO:TAG` with buildx: TAG and TAG-amd64 name the verified manifest; the staging
    tag the stage's registry will not delete alone is left, and the output says so once."""
    repository = f"{registry}/buildx-push-{uuid.uuid4().hex[:8]}"
    project = example_copy(tmp_path, f"{registry}/unused")
    done = buildx_build(
        project,
        *("--dockerfile", "backend/Dockerfile.eks", "--platform", "linux/amd64"),
        *("--push", f"{repository}:v1"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tags = set(json.loads(skopeo("list-tags", f"docker://{repository}"))["Tags"])
    (staging,) = {t for t in tags if t.startswith("crossdock-staging-")}
    assert tags == {"v1", "v1-amd64", staging}
    notes = [line for line in done.stderr.splitlines() if "staging tag" in line]
    refused = (
        f"cannot delete tag {staging} on {repository}: 400 DIGEST_INVALID: provided digest did "
        "not match uploaded content"
    )
    said = f"note: left the staging tag(s) {staging} in {repository}: {refused} "
    assert notes == [said + "(remove them with the registry's own tools)"], done.stderr


def test_buildx_backend_from_python_released_like_a_native_build(
    registry: str, tmp_path: Path
) -> None:
    """The buildx backend is a ``Backend``: built into docker, read back as the one image model
    (its config the very one docker holds, its layers gzipped as ``docker push`` sends them),
    then released by ``publish.pipeline.release`` as a native build is, from Python."""
    project = example_copy(tmp_path, f"{registry}/unused")
    config = load_config(
        project_dir=project,
        service="api",
        overrides={"platforms": "linux/amd64", "target": "eks"},
        environ={"CROSSDOCK_REGISTRY_MIRRORS": MIRRORS},
    )
    local_tag = f"t{uuid.uuid4().hex[:8]}"
    backend = BuildxBackend(
        project / "backend" / "Dockerfile.eks",
        mirrors=Mirrors(config.registry_mirrors),
        output=DockerStore(local_tag),
    )
    with InProcessRegistry() as target:
        config, publishing = prepare_release(config, to=f"{target.host}/team/api:1.0")
        assert publishing is not None
        try:
            outcome = build(make_plan(config), backend, NO_PROGRESS)
            (report,) = outcome.reports
            assert report.location == f"crossdock/api:{local_tag}-amd64"
            assert report.verification is not None and report.verification.passed
            image = outcome.image_set.image_for(AMD64)
            docker_id = subprocess.run(
                ["docker", "image", "inspect", "--format", "{{.Id}}", report.location],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert docker_id == str(image.config.digest)
        finally:
            subprocess.run(["docker", "rmi", f"crossdock/api:{local_tag}-amd64"], check=False)
        assert outcome.image_set.index is None  # one platform: the tags name its manifest
        assert {blob.descriptor.media_type for blob in image.layers} == {
            MediaType.DOCKER_LAYER_GZIP
        }

        result = release(publishing, outcome.image_set, checked=True)

        assert {t.tag: t.digest for t in result.plan.tags} == {
            "1.0": image.digest,
            "1.0-amd64": image.digest,
        }
        with RegistryClient(target.host) as client:
            served = client.get_manifest(Reference.parse(f"{target.host}/team/api:1.0"))
            assert served.raw == image.manifest.raw
        for blob in outcome.image_set.blobs():
            assert str(blob.descriptor.digest) in target.blobs
