"""The seed's workflow on the real stage: the example project's Makefile, push script, Dockerfiles
(through the buildx backend: dockerd 20.10's BuildKit, arm64 under QEMU) and `crossdock doctor`.

Architecture is checked on the binaries (crossdock's verifier reading a `docker save` of what
landed in docker, or the pushed image), tags with skopeo.

Cost: buildx arm64 builds run under QEMU and take minutes, so only Dockerfile.eks is built for
both architectures here (and pushed as one index, which the docker driver cannot do by itself);
Dockerfile.lambda and Dockerfile.apprunner are built for amd64. The binfmt test switches the
host's QEMU registration off for a few seconds and always switches it back on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from crossdock.platform import AMD64, ARM64, Platform
from crossdock.sources.docker_archive import read_docker_archive
from crossdock.verify import verify_image
from tests.support.prerequisites import missing, needs_tools

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example"
STAGE = REPO / "stage" / "stage.sh"
CROSSDOCK = Path(sys.executable).parent / "crossdock"
MIRRORS = "docker.io=127.0.0.1:5555,public.ecr.aws=127.0.0.1:5555"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.docker,
    needs_tools("skopeo"),
]


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def registry() -> str:
    value = os.environ.get("CROSSDOCK_STAGE_REGISTRY")
    if not value or not _docker_answers():
        missing('needs the stage: stage/stage.sh up && stage/stage.sh docker && eval "$(...)"')
    assert value.startswith("127."), value
    return value


@pytest.fixture(scope="module")
def env(registry: str, host_python: str) -> dict[str, str]:
    return {
        **os.environ,
        "UV_PYTHON": host_python,
        "CROSSDOCK_REGISTRY_MIRRORS": MIRRORS,
        "CROSSDOCK": str(CROSSDOCK),
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, registry: str) -> Path:
    """A copy of the example project (its crossdock.toml pushes to the stage registry)."""
    dest = tmp_path_factory.mktemp("seed") / "example"
    shutil.copytree(
        EXAMPLE, dest, ignore=shutil.ignore_patterns(".venv", "out", "__pycache__", ".pytest_cache")
    )
    toml = dest / "crossdock.toml"
    # A repository of its own, so that the tags checked are this run's.
    toml.write_text(toml.read_text().replace("127.0.0.1:5555/myapp", f"{registry}/seedtest"))
    # The push tags carry the commit's SHA: the copy is a repository of its own.
    git = ["git", "-c", "user.name=crossdock-test", "-c", "user.email=test@invalid"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "example"], cwd=dest, check=True)
    return dest


def make(project: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["make", f"CROSSDOCK={CROSSDOCK}", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, f"make {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def verify_local(tag: str, platform: Platform, tmp_path: Path) -> dict[str, int]:
    """Verify what docker holds under ``tag`` by its binaries; return the scan counts."""
    archive = tmp_path / f"{uuid.uuid4().hex}.tar"
    subprocess.run(["docker", "save", "-o", str(archive), tag], check=True)
    (image,) = read_docker_archive(archive, tmp_path / f"layers-{uuid.uuid4().hex}").images
    report = verify_image(
        image.config,
        [blob.path for blob in image.layers],
        layer_digests=[blob.descriptor.digest for blob in image.layers],
        declared_platform=platform,
        image_name=tag,
    )
    assert report.passed, report.to_json()
    assert report.counts.get("elf", 0) > 0, report.counts  # numpy & co. were really read
    return report.counts


def inspect(tag: str) -> dict[str, object]:
    out = subprocess.run(["docker", "inspect", tag], capture_output=True, text=True, check=True)
    data: dict[str, object] = json.loads(out.stdout)[0]
    return data


def config_of(tag: str) -> dict[str, object]:
    config = inspect(tag)["Config"]
    assert isinstance(config, dict)
    return config


# -- native backend (the Makefile's default) ------------------------------------------------


def test_make_docker_build_is_arm64_lambda(project, env, tmp_path) -> None:
    out = make(project, env, "docker-build")
    assert "built myapp:arm64-latest (lambda, linux/arm64, native backend)" in out
    assert inspect("myapp:arm64-latest")["Architecture"] == "arm64"
    assert config_of("myapp:arm64-latest")["Cmd"] == ["app.lambda_handler.handler"]
    verify_local("myapp:arm64-latest", ARM64, tmp_path)


def test_make_docker_build_amd64(project, env, tmp_path) -> None:
    out = make(project, env, "docker-build-amd64")
    assert "built myapp:amd64-latest (lambda, linux/amd64, native backend)" in out
    assert inspect("myapp:amd64-latest")["Architecture"] == "amd64"
    verify_local("myapp:amd64-latest", AMD64, tmp_path)


def test_make_docker_build_eks_amd64(project, env, tmp_path) -> None:
    out = make(project, env, "docker-build", "ARCH=amd64", "DOCKERFILE=Dockerfile.eks")
    assert "(eks, linux/amd64, native backend)" in out
    config = config_of("myapp:amd64-latest")
    command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]  # type: ignore[misc]
    assert "uvicorn" in command and "0.0.0.0" in command and "8080" in command  # noqa: S104
    verify_local("myapp:amd64-latest", AMD64, tmp_path)


def test_make_docker_push_dev_writes_the_six_tags(project, env, registry) -> None:
    make(project, env, "docker-push-dev")
    tags = json.loads(
        subprocess.run(
            ["skopeo", "list-tags", "--tls-verify=false", f"docker://{registry}/seedtest"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["Tags"]
    sha = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert {"dev-latest", "dev-arm64-latest", f"{sha}", f"{sha}-arm64"} <= set(tags)
    stamped = [t for t in tags if t.startswith("dev-2") and t.endswith("-arm64")]
    assert stamped and stamped[0].removesuffix("-arm64") in tags
    raw = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{registry}/seedtest:dev-latest",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "manifests" not in json.loads(raw)  # Lambda: a single-architecture manifest
    for tag in ("dev-latest", f"{sha}-arm64", stamped[0]):
        config = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--config",
                "--tls-verify=false",
                f"docker://{registry}/seedtest:{tag}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert json.loads(config)["architecture"] == "arm64"
    # ...and by its binaries.
    verified = subprocess.run(
        [str(CROSSDOCK), "verify", f"{registry}/seedtest:dev-latest"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


# -- buildx backend (the Dockerfiles, dockerd 20.10's BuildKit) -----------------------------


@pytest.mark.parametrize("dockerfile", ["Dockerfile.lambda", "Dockerfile.apprunner"])
def test_buildx_amd64(project, env, tmp_path, dockerfile) -> None:
    started = time.monotonic()
    out = make(
        project, env, "docker-build", "BACKEND=buildx", "ARCH=amd64", f"DOCKERFILE={dockerfile}"
    )
    print(f"buildx {dockerfile} amd64: {time.monotonic() - started:.1f}s")
    assert "verification passed" in out
    assert inspect("myapp:amd64-latest")["Architecture"] == "amd64"
    verify_local("myapp:amd64-latest", AMD64, tmp_path)


def test_buildx_eks_both_platforms_pushed_as_one_index(project, env, registry) -> None:
    ref = f"{registry}/seedtest-buildx:{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    done = subprocess.run(
        [
            str(CROSSDOCK),
            "build",
            "--project",
            str(project),
            "--backend",
            "buildx",
            "--dockerfile",
            "backend/Dockerfile.eks",
            "--service",
            "api",
            "--platform",
            "linux/arm64,linux/amd64",
            "--push",
            ref,
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    print(f"buildx Dockerfile.eks arm64+amd64: {time.monotonic() - started:.1f}s")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert [i["verification"]["passed"] for i in result["images"]] == [True, True]
    seconds = {i["platform"]: i["seconds"] for i in result["images"]}
    print(f"per platform: {seconds}")
    # The docker driver cannot export both at once: one build each, then crossdock's index.
    # (rich wraps progress lines at the console width)
    assert "cannot export a multi-platform result" in " ".join(done.stderr.split())
    raw = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    platforms = {(m["platform"]["os"], m["platform"]["architecture"]) for m in raw["manifests"]}
    assert platforms == {("linux", "arm64"), ("linux", "amd64")}
    for arch in ("arm64", "amd64"):
        config = json.loads(
            subprocess.run(
                ["skopeo", "inspect", "--config", "--tls-verify=false", f"docker://{ref}-{arch}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert config["architecture"] == arch


# -- doctor ---------------------------------------------------------------------------------


def doctor(project: Path, env: dict[str, str], *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(CROSSDOCK), "doctor", "--project", str(project), "--json", *extra],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def by_check(report: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["check"] == check]


def test_doctor_without_docker_on_path(project, env, tmp_path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    report = doctor(project, {**env, "PATH": str(empty)})
    (docker,) = by_check(report, "docker")
    assert docker["status"] == "warn" and docker["native_avoids"] is True
    assert by_check(report, "buildx") == []
    # The bases are still read (through the mirrors) and the registry still answers.
    assert {f["status"] for f in by_check(report, "base")} == {"ok"}
    assert report["ok"] is True


def test_doctor_with_binfmt_on_and_off(project, env) -> None:
    on = doctor(project, env)
    (binfmt,) = by_check(on, "binfmt")
    assert binfmt["status"] == "ok", binfmt
    assert by_check(on, "docker")[0]["status"] == "ok"
    try:
        subprocess.run(["bash", str(STAGE), "binfmt", "off"], check=True, capture_output=True)
        off = doctor(project, env, "--offline")
    finally:
        subprocess.run(["bash", str(STAGE), "binfmt", "on"], check=True, capture_output=True)
    (binfmt_off,) = by_check(off, "binfmt")
    assert binfmt_off["status"] == "warn"
    assert "exec format error" in str(binfmt_off["summary"])
    assert "qemu-user-static" in str(binfmt_off["fix"])
    assert binfmt_off["native_avoids"] is True
    assert Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").read_text().startswith("enabled")
