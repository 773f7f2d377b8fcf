"""Per-platform SBOMs on the stage: the example built for both platforms carries one CycloneDX
SBOM per platform manifest, attached as an OCI 1.1 referrer through the referrers tag schema (the
stage's distribution 2.8 has no referrers API), found by `crossdock sbom` and by skopeo, listing
exactly the wheel files installed for that platform and the base's Debian packages; the Lambda
build's tags still name single manifests; the OCI layout output holds the same SBOMs.
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
CYCLONEDX = "application/vnd.cyclonedx+json"
WHEEL_ARCH = {"arm64": "aarch64", "amd64": "x86_64"}


@pytest.fixture(scope="module")
def env(example_env):
    return example_env


@pytest.fixture(scope="module")
def project(locked_example):
    return locked_example


def _run(env, *args):
    completed = subprocess.run(
        [CROSSDOCK, *args], capture_output=True, text=True, env=env, timeout=1700, check=False
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed.stdout


def _skopeo_raw(ref):
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def built(project, env, tmp_path_factory):
    repository = f"{REGISTRY}/crossdock-it/sbom-{RUN_ID}"
    layout = tmp_path_factory.mktemp("layout") / "oci"
    out = _run(
        env,
        *("build", "-C", str(project), "--service", "api", "--target", "eks"),
        *("--platform", "linux/arm64,linux/amd64", "--json"),
        *("--push", f"{repository}:t", "--oci-layout", str(layout)),
    )
    return repository, json.loads(out), layout


def _props(component):
    return {p["name"]: p["value"] for p in component.get("properties", [])}


def _wheels(document):
    return {
        (c["name"], c["version"], _props(c).get("crossdock:wheel-tags"), c["hashes"][0]["content"])
        for c in document["components"]
        if c.get("purl", "").startswith("pkg:pypi/")
    }


@pytest.mark.parametrize("arch", ["arm64", "amd64"])
def test_each_platform_has_its_own_sbom_of_what_was_installed(built, env, project, arch):
    repository, report, _ = built
    (platform_report,) = [p for p in report["platforms"] if arch in p["platform"]]
    document = json.loads(_run(env, "sbom", f"{repository}:t", "--platform", f"linux/{arch}"))
    assert document["bomFormat"] == "CycloneDX"
    assert document["specVersion"] == "1.6"
    assert document["metadata"]["component"]["version"] == platform_report["image_digest"]

    # Exactly the wheels installed for this platform: names, versions and tags.
    installed = {(w["name"], w["version"], " ".join(w["tags"])) for w in platform_report["wheels"]}
    listed = _wheels(document)
    assert {(n, v, t) for n, v, t, _ in listed} == installed
    # Each hash is the lock's hash of a wheel for this platform (or a pure wheel).
    lock = (project / "backend" / "api" / "uv.lock").read_text()
    for name, _, tags, sha256 in listed:
        (line,) = [line for line in lock.splitlines() if f"sha256:{sha256}" in line]
        assert WHEEL_ARCH[arch] in line or "none-any" in line, (name, tags, line)
    for component in document["components"]:
        if component.get("purl", "").startswith("pkg:pypi/"):
            assert (
                component.get("purl", "") == f"pkg:pypi/{component['name']}@{component['version']}"
            )
            assert _props(component)["crossdock:built-from-sdist"] in ("true", "false")
    assert any(c.get("licenses") for c in document["components"] if "pypi" in c.get("purl", ""))

    # The base's Debian packages, for this architecture.
    debs = [c for c in document["components"] if c.get("purl", "").startswith("pkg:deb/debian/")]
    names = {c["name"] for c in debs}
    assert {"libc6", "python3.13", "libstdc++6", "zlib1g"} <= names
    assert all(f"arch={arch}" in c.get("purl", "") or "arch=all" in c.get("purl", "") for c in debs)


def test_the_two_platforms_sboms_list_different_wheel_files(built, env):
    repository, _, _ = built
    arm = json.loads(_run(env, "sbom", f"{repository}:t", "--platform", "linux/arm64"))
    amd = json.loads(_run(env, "sbom", f"{repository}:t", "--platform", "linux/amd64"))
    assert _wheels(arm) != _wheels(amd)
    native = {w for w in _wheels(arm) if "aarch64" in (w[2] or "")}
    assert native  # numpy, pillow, orjson, ... as aarch64 wheels
    assert not native & _wheels(amd)


def test_skopeo_finds_each_sbom_through_the_referrers_fallback_tag(built):
    repository, _, _ = built
    index = _skopeo_raw(f"{repository}:t")
    assert "artifactType" not in json.dumps(index)  # nothing inside the image index
    for child in index["manifests"]:
        digest = child["digest"]
        referrers = _skopeo_raw(f"{repository}:sha256-{digest.removeprefix('sha256:')}")
        (entry,) = referrers["manifests"]
        assert entry["artifactType"] == CYCLONEDX
        artifact = _skopeo_raw(f"{repository}@{entry['digest']}")
        assert artifact["subject"]["digest"] == digest
        assert artifact["layers"][0]["mediaType"] == CYCLONEDX


def test_the_oci_layout_output_holds_the_same_sboms(built, env):
    repository, _, layout = built
    for arch in ("arm64", "amd64"):
        from_layout = _run(env, "sbom", f"oci:{layout}", "--platform", f"linux/{arch}")
        from_registry = _run(env, "sbom", f"{repository}:t", "--platform", f"linux/{arch}")
        assert from_layout == from_registry


def test_a_lambda_builds_tags_stay_single_manifests_and_carry_an_sbom(project, env):
    repository = f"{REGISTRY}/crossdock-it/sbom-lambda-{RUN_ID}"
    _run(
        env,
        *("build", "-C", str(project), "--service", "api", "--target", "lambda"),
        *("--platform", "linux/arm64,linux/amd64", "--push", f"{repository}:t"),
    )
    for arch in ("arm64", "amd64"):
        manifest = _skopeo_raw(f"{repository}:t-{arch}")
        assert "manifests" not in manifest
        assert manifest["mediaType"].endswith("manifest.v2+json") or manifest["mediaType"].endswith(
            "image.manifest.v1+json"
        )
        assert "subject" not in manifest
        document = json.loads(_run(env, "sbom", f"{repository}:t-{arch}"))
        assert any(
            c["name"] == "awslambdaric" or c["name"] == "pydantic" for c in document["components"]
        )
