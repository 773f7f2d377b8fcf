"""`crossdock rebase` on the stage: the example built on a copy of the python:3.13-slim stand-in,
whose tag then moves to the stand-in's second version (stage/base_updates.py: /etc/issue changed,
same Python). `rebase --check` sees the move; `rebase` puts the image on the new base, verified,
with its SBOM carried over, and the result runs on both architectures (arm64 under QEMU). A base
with another Python minor is refused; a Lambda image stays a single manifest and passes the
Lambda preflight after its rebase.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REGISTRY = os.environ.get("CROSSDOCK_STAGE_REGISTRY", "127.0.0.1:5555")
CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
RUN_ID = uuid.uuid4().hex[:8]
BASE_V1 = f"{REGISTRY}/library/python:3.13-slim"
BASE_V2 = f"{REGISTRY}/library/python:3.13-slim-v2"
LAMBDA_V1 = f"{REGISTRY}/lambda/python:3.13"
LAMBDA_V2 = f"{REGISTRY}/lambda/python:3.13-v2"
OTHER_PYTHON = f"{REGISTRY}/library/python:3.11-slim-bookworm"
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}


@pytest.fixture(scope="module")
def env(example_env):
    return example_env


@pytest.fixture(scope="module")
def project(locked_example):
    return locked_example


def _run(env, *args, expect=0):
    completed = subprocess.run(
        [CROSSDOCK, *args], capture_output=True, text=True, env=env, timeout=1700, check=False
    )
    assert completed.returncode == expect, completed.stderr + completed.stdout
    return completed


def _copy_tag(source, dest):
    subprocess.run(
        [
            *("skopeo", "copy", "--quiet", "--all", "--preserve-digests"),
            *("--src-tls-verify=false", "--dest-tls-verify=false"),
            *(f"docker://{source}", f"docker://{dest}"),
        ],
        check=True,
    )


def _skopeo_raw(ref, *, config=False):
    args = ["skopeo", "inspect", "--tls-verify=false", "--raw"]
    if config:
        args.insert(2, "--config")
    out = subprocess.run([*args, f"docker://{ref}"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _registry_has(ref):
    return (
        subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


@pytest.fixture(scope="module")
def fleet(project, env):
    """An image built on this run's own base tag (a copy of v1), then that tag moved to v2."""
    base = f"{REGISTRY}/crossdock-it/rebase-base-{RUN_ID}:3.13-slim"
    _copy_tag(BASE_V1, base)
    image = f"{REGISTRY}/crossdock-it/rebase-{RUN_ID}/api"
    built = json.loads(
        _run(
            env,
            *("build", "-C", str(project), "--service", "api", "--target", "eks"),
            *("--platform", "linux/arm64,linux/amd64", "--base", base, "--json"),
            *("--push", f"{image}:t"),
        ).stdout
    )
    before = json.loads(_run(env, "rebase", "--check", f"{image}:t", "--json").stdout)
    _copy_tag(BASE_V2, base)  # the base is republished: its tag now names the second version
    return {"base": base, "image": image, "built": built, "before": before}


def test_rebase_check_reports_the_moved_base(fleet, env):
    assert {c["moved"] for c in fleet["before"]} == {False}
    after = json.loads(_run(env, "rebase", "--check", f"{fleet['image']}:t", "--json").stdout)
    assert sorted(c["platform"] for c in after) == ["linux/amd64", "linux/arm64/v8"]
    for check in after:
        assert check["moved"] is True
        assert check["base"] == fleet["base"]
        v2 = _skopeo_raw(BASE_V2)
        assert check["current"] in {m["digest"] for m in v2["manifests"]}
    text = _run(env, "rebase", "--check", f"{fleet['image']}:t").stdout
    assert text.count("MOVED") == 2


@pytest.fixture(scope="module")
def rebased(fleet, env):
    target = f"{fleet['image']}-rebased"
    out = _run(
        env,
        *("rebase", f"{fleet['image']}:t", "--base", fleet["base"], "--json"),
        *("--push", f"{target}:t"),
    )
    return target, json.loads(out.stdout)


def test_rebase_puts_the_image_on_the_new_base_and_keeps_its_own_layers(fleet, rebased):
    target, result = rebased
    v2 = _skopeo_raw(BASE_V2)
    v2_children = {m["platform"]["architecture"]: m["digest"] for m in v2["manifests"]}
    built = {p["platform"]: p for p in fleet["built"]["platforms"]}
    index = _skopeo_raw(f"{target}:t")
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    for entry in index["manifests"]:
        arch = entry["platform"]["architecture"]
        ref = f"{target}@{entry['digest']}"
        manifest = _skopeo_raw(ref)
        new_base = _skopeo_raw(f"{BASE_V2.rsplit(':', 1)[0]}@{v2_children[arch]}")
        count = len(new_base["layers"])
        assert manifest["layers"][:count] == new_base["layers"]
        old = _skopeo_raw(f"{fleet['image']}@{built_digest(built, arch)}")
        # The image's own layers are the same blobs as before the rebase.
        assert [d["digest"] for d in manifest["layers"][count:]] == [
            d["digest"] for d in old["layers"][-2:]
        ]
        annotations = manifest["annotations"]
        assert annotations["org.opencontainers.image.base.digest"] == v2_children[arch]
        assert annotations["org.opencontainers.image.base.name"] == fleet["base"]
        config = _skopeo_raw(ref, config=True)
        base_config = _skopeo_raw(f"{BASE_V2.rsplit(':', 1)[0]}@{v2_children[arch]}", config=True)
        diff_ids = config["rootfs"]["diff_ids"]
        assert diff_ids[:count] == base_config["rootfs"]["diff_ids"]
        assert len(diff_ids) == count + 2
        assert "base update 2" in json.dumps(config["history"])
        assert len(config["history"]) == len(base_config["history"]) + 2
    for platform in result["platforms"]:
        assert platform["python_version"] == "3.13"
        assert platform["verification"]["passed"] is True
        assert platform["sbom_carried"] is True


def built_digest(built, arch):
    (digest,) = [p["image_digest"] for name, p in built.items() if arch in name]
    return digest


def test_the_rebased_image_passes_verify_and_carries_an_sbom_of_the_new_base(rebased, env):
    target, _ = rebased
    report = json.loads(_run(env, "verify", f"{target}:t", "--json").stdout)
    assert report["passed"] is True
    assert len(report["platforms"]) == 2
    for arch in ("arm64", "amd64"):
        sbom = json.loads(_run(env, "sbom", f"{target}:t", "--platform", f"linux/{arch}").stdout)
        base = next(c for c in sbom["components"] if c["bom-ref"] == "base-image")
        digest = {p["name"]: p["value"] for p in base["properties"]}["crossdock:base-digest"]
        assert base["version"] == digest
        names = {c["name"] for c in sbom["components"]}
        assert {"numpy", "fastapi", "libc6", "python3.13"} <= names


@pytest.mark.docker
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_the_rebased_image_runs(rebased, arch):
    target, _ = rebased
    ref = f"{target}:t"
    subprocess.run(
        ["docker", "pull", "-q", "--platform", f"linux/{arch}", ref], check=True, timeout=600
    )
    program = (
        "import platform, app.main; "
        "print(platform.machine(), open('/etc/crossdock-stage-base-version').read().strip())"
    )
    completed = subprocess.run(
        [
            *("docker", "run", "--rm", "--platform", f"linux/{arch}", ref),
            *("/usr/bin/python3.13", "-c", program),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == [MACHINE[arch], "2"]


def test_a_base_with_another_python_minor_is_refused(fleet, env):
    if not _registry_has(OTHER_PYTHON):
        pytest.skip(f"{OTHER_PYTHON} is not on the stage yet (stage/bases.toml)")
    refused = _run(
        env,
        *("rebase", f"{fleet['image']}:t", "--base", OTHER_PYTHON),
        *("--push", f"{fleet['image']}-py311:t"),
        expect=5,
    )
    assert "Python 3.11" in refused.stderr
    assert "built for Python 3.13" in refused.stderr
    assert not _registry_has(f"{fleet['image']}-py311:t")


def test_a_lambda_image_rebased_stays_a_single_manifest_and_passes_the_preflight(project, env):
    base = f"{REGISTRY}/crossdock-it/rebase-lambda-base-{RUN_ID}:3.13"
    _copy_tag(LAMBDA_V1, base)
    image = f"{REGISTRY}/crossdock-it/rebase-lambda-{RUN_ID}/fn"
    _run(
        env,
        *("build", "-C", str(project), "--service", "api", "--target", "lambda"),
        *("--platform", "linux/arm64", "--base", base, "--push", f"{image}:t"),
    )
    _copy_tag(LAMBDA_V2, base)
    result = json.loads(
        _run(
            env,
            *("rebase", f"{image}:t-arm64", "--base", base, "--json"),
            *("--push", f"{image}-rebased:t"),
        ).stdout
    )
    assert result["target"] == "lambda"
    assert result["index"] is None
    manifest = _skopeo_raw(f"{image}-rebased:t-arm64")
    assert "manifests" not in manifest
    report = json.loads(
        _run(env, "verify", "--target", "lambda", "--json", f"{image}-rebased:t-arm64").stdout
    )
    assert report["passed"] is True
    assert "lambda-parent-directory" in report["platforms"][0]["checks"]
