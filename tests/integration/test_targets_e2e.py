"""Deployment targets end to end on the local stage: the example backend built for each target
and both platforms with the native backend, pushed to the stage registry, checked with skopeo,
turned into Kubernetes manifests, and run with docker (arm64 under QEMU): `crossdock invoke`
for Lambda, `crossdock run` for App Runner and EKS.

Needs `stage/stage.sh up` (registry on 127.0.0.1:5555 with the base stand-ins) and, for the
docker tests, `stage/stage.sh docker` (dockerd, binfmt for arm64).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import kubernetes_validate
import pytest
from uv import find_uv_bin

from crossdock.backends.native import NativeBackend
from crossdock.build import build, make_plan
from crossdock.config import load_config
from crossdock.errors import TargetError
from crossdock.image.mediatypes import INDEX_TYPES, MANIFEST_TYPES, MediaType
from crossdock.progress import NO_PROGRESS
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Reference
from crossdock.sinks.oci_layout import write_oci_layout
from crossdock.sinks.registry import push_image_set
from crossdock.sources.registry import Registries
from crossdock.targets import target_spec
from crossdock.targets.k8s import architectures_in_registry

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "example"
REGISTRY = os.environ.get("CROSSDOCK_STAGE_REGISTRY", "127.0.0.1:5555")
MIRRORS = f"docker.io={REGISTRY},public.ecr.aws={REGISTRY}"
CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
BOTH = "linux/arm64,linux/amd64"
RUN_ID = uuid.uuid4().hex[:8]
# The example handler's answer for {"n": 7}: sum of squares 0..6.
EVENT = {"n": 7}
SUM_OF_SQUARES_0_TO_6 = 91
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
ARCHES = ["amd64", "arm64"]
# Seconds an image may take to answer: arm64 runs under QEMU, where importing the example's
# dependencies takes minutes on a busy 2-core machine (measured: ~10 min at load 6).
START_TIMEOUT_S = {"amd64": "180", "arm64": "1500"}


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stage_env(host_python):
    """The environment crossdock and the CLI run with: stage mirrors, host Python for uv."""
    env = {**os.environ, "UV_PYTHON": host_python, "CROSSDOCK_REGISTRY_MIRRORS": MIRRORS}
    with RegistryClient(REGISTRY) as client:
        # Fails clearly when the stage is down, rather than deep inside a build.
        client.get_manifest(Reference.parse(f"{REGISTRY}/library/python:3.13-slim"))
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory, stage_env):
    """A copy of the example project, locked with uv (uv.lock is not committed)."""
    root = tmp_path_factory.mktemp("example")
    shutil.copytree(
        EXAMPLE,
        root / "example",
        ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__"),
    )
    service = root / "example" / "backend" / "api"
    subprocess.run([find_uv_bin(), "lock", "--quiet"], cwd=service, check=True, env=stage_env)
    return root / "example"


class Built:
    def __init__(self, target, outcome, repository, tags):
        self.target = target
        self.outcome = outcome
        self.repository = repository  # Reference without tag
        self.tags = tags  # tag -> digest

    def ref(self, tag: str) -> str:
        return f"{self.repository.registry}/{self.repository.repository}:{tag}"


def _build_and_push(project, stage_env, monkeypatch_env, target, platforms, **overrides):
    for key, value in stage_env.items():
        monkeypatch_env.setenv(key, value)
    config = load_config(
        project_dir=project,
        service="api",
        overrides={"target": target, "platforms": platforms, **overrides},
    )
    plan = make_plan(config)
    clients: dict[str, RegistryClient] = {}

    def client_for(host: str) -> RegistryClient:
        if host not in clients:
            clients[host] = RegistryClient(host)
        return clients[host]

    outcome = build(plan, NativeBackend(client_for), NO_PROGRESS)
    # The backend closes the clients it pulled with when its build ends: push with a new one.
    client = RegistryClient(REGISTRY)
    repository = Reference.parse(f"{REGISTRY}/crossdock-it/{target}-{RUN_ID}")
    if outcome.image_set.index is None:
        tags = {
            f"t-{image.platform.architecture}": image.digest for image in outcome.image_set.images
        }
    else:
        tags = {"t": outcome.image_set.index.digest}
    if len(outcome.image_set.images) == 1 and outcome.image_set.index is not None:
        tags = {"single": outcome.image_set.index.digest}
    push_image_set(client, outcome.image_set, repository, tags)
    client.close()
    for each in clients.values():
        each.close()
    return Built(target, outcome, repository, tags)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def built(project, stage_env, monkeypatch_module):
    cache: dict[str, Built] = {}

    def get(target: str) -> Built:
        if target not in cache:
            cache[target] = _build_and_push(project, stage_env, monkeypatch_module, target, BOTH)
        return cache[target]

    return get


def _skopeo_raw(ref, *, config=False):
    args = ["skopeo", "inspect", "--tls-verify=false", "--raw"]
    if config:
        args.insert(2, "--config")
    completed = subprocess.run(
        [*args, f"docker://{ref}"], capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout)


def _crossdock(env, *args, timeout=1700):
    completed = subprocess.run(
        [CROSSDOCK, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed.stdout


# -- Lambda ---------------------------------------------------------------------------------


def test_lambda_output_is_one_single_arch_manifest_per_platform(built):
    lam = built("lambda")
    assert lam.outcome.image_set.index is None
    assert sorted(lam.tags) == ["t-amd64", "t-arm64"]
    for arch in ARCHES:
        ref = lam.ref(f"t-{arch}")
        manifest = _skopeo_raw(ref)
        # A single-architecture image manifest, never an index (Lambda refuses those).
        assert manifest["mediaType"] in MANIFEST_TYPES
        assert "manifests" not in manifest
        assert all(
            layer["mediaType"] in (MediaType.OCI_LAYER_GZIP, MediaType.DOCKER_LAYER_GZIP)
            for layer in manifest["layers"]
        )
        config = _skopeo_raw(ref, config=True)
        assert config["architecture"] == arch
        real_history = [h for h in config["history"] if not h.get("empty_layer")]
        assert len(real_history) == len(manifest["layers"]) == len(config["rootfs"]["diff_ids"])
        assert config["config"]["Cmd"] == ["app.lambda_handler.handler"]
        # The Lambda base's entrypoint (it runs awslambdaric) stays.
        assert config["config"]["Entrypoint"] == ["/lambda-entrypoint.sh"]
        assert config["config"]["WorkingDir"] == "/var/task"


def test_lambda_target_refuses_an_index(built, project, stage_env, tmp_path):
    """The EKS build (an index over both platforms) released for Lambda by `crossdock push`,
    from the project and with --target alone: refused (exit 10) before anything is pushed."""
    eks = built("eks")
    problems = target_spec("lambda").output_problems(eks.outcome.image_set)
    assert any("accepts only single-architecture manifests" in p for p in problems)
    layout = write_oci_layout(eks.outcome.image_set, tmp_path / "eks-layout")
    repository = f"{REGISTRY}/crossdock-it/lambda-refused-{RUN_ID}"
    for where in (("-C", str(project), "--service", "api"), ()):
        run = _crossdock_rc(
            stage_env,
            *("push", str(layout), *where, "--target", "lambda", "--to", f"{repository}:x"),
        )
        assert run.returncode == TargetError.exit_code, run.stderr + run.stdout
        assert "target lambda cannot run this build; nothing was pushed" in run.stderr
        assert "accepts only single-architecture manifests" in run.stderr
        inspect = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{repository}:x"],
            capture_output=True,
            check=False,
        )
        assert inspect.returncode != 0  # no tag, and no repository either


def _crossdock_rc(env, *args, timeout=1700):
    return subprocess.run(
        [CROSSDOCK, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def test_the_examples_lambda_image_passes_the_lambda_preflight(project, stage_env, built):
    """`crossdock build --target lambda` runs the preflight before pushing; `crossdock verify
    --target lambda` runs it again on what the registry serves, for each platform's tag."""
    repository = f"{REGISTRY}/crossdock-it/lambda-cli-{RUN_ID}"
    _crossdock(
        stage_env,
        *("build", "-C", str(project), "--service", "api", "--target", "lambda"),
        *("--platform", BOTH, "--push", f"{repository}:pf"),
    )
    for arch in ARCHES:
        out = _crossdock(
            stage_env, "verify", "--target", "lambda", "--json", f"{repository}:pf-{arch}"
        )
        (report,) = json.loads(out)["platforms"]
        assert report["passed"], report["failures"]
        assert "lambda-parent-directory" in report["checks"]
        assert "lambda-handler" in report["checks"]
    # The EKS build's tag is an index: the preflight names the error Lambda would answer.
    eks = built("eks")
    refused = _crossdock_rc(stage_env, "verify", "--target", "lambda", "--json", eks.ref("t"))
    assert refused.returncode == 6, refused.stderr
    for report in json.loads(refused.stdout)["platforms"]:
        checks = {f["check"] for f in report["failures"]}
        # (its CMD runs uvicorn: not a Lambda handler, so that check notes and skips it)
        assert checks == {"lambda-single-manifest"}
        assert any("is not supported" in f["found"] for f in report["failures"])


# -- App Runner and EKS ---------------------------------------------------------------------


@pytest.mark.parametrize("target", ["apprunner", "eks"])
def test_web_targets_are_indexes_of_both_platforms_serving_uvicorn(built, target):
    web = built(target)
    index = _skopeo_raw(web.ref("t"))
    assert index["mediaType"] in INDEX_TYPES
    arches = sorted(m["platform"]["architecture"] for m in index["manifests"])
    assert arches == ARCHES
    for entry in index["manifests"]:
        child = f"{web.repository.registry}/{web.repository.repository}@{entry['digest']}"
        config = _skopeo_raw(child, config=True)
        runtime = config["config"]
        assert runtime["User"] == "65534:65534"
        assert runtime["Cmd"][1:] == [
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "0.0.0.0",  # noqa: S104
            "--port",
            "8080",
        ]
        assert "8080/tcp" in runtime["ExposedPorts"]


# -- Kubernetes -----------------------------------------------------------------------------


def _validated_affinity(path: Path) -> tuple[list[str], str]:
    documents = [json.loads(d) for d in path.read_text().split("---\n") if d.strip()]
    assert [d["kind"] for d in documents] == ["Deployment", "Service"]
    for document in documents:
        for version in ("1.27.0", "1.33.0"):
            kubernetes_validate.validate(document, version, strict=True)
    pod = documents[0]["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (expression,) = terms["nodeSelectorTerms"][0]["matchExpressions"]
    assert expression["key"] == "kubernetes.io/arch"
    return expression["values"], pod["containers"][0]["image"]


def test_k8s_manifests_name_exactly_the_built_architectures(built, stage_env, tmp_path):
    eks = built("eks")
    out = tmp_path / "api.yaml"
    _crossdock(stage_env, "k8s", eks.ref("t"), "--name", "api", "-o", str(out))
    values, image = _validated_affinity(out)
    assert values == ARCHES
    index_digest = eks.outcome.image_set.index.digest
    assert image == f"{eks.repository.registry}/{eks.repository.repository}@{index_digest}"


def test_k8s_for_a_single_arch_image_allows_only_that_arch(
    project, stage_env, monkeypatch_module, tmp_path
):
    single = _build_and_push(project, stage_env, monkeypatch_module, "eks", "linux/arm64")
    with Registries() as registries:
        _, arches = architectures_in_registry(registries, Reference.parse(single.ref("single")))
    assert arches == ("arm64",)
    out = tmp_path / "api.yaml"
    _crossdock(stage_env, "k8s", single.ref("single"), "-o", str(out))
    values, _ = _validated_affinity(out)
    assert values == ["arm64"]
    # A by-digest child manifest (no index at all) is read from its config.
    child = single.outcome.image_set.images[0].digest
    child_ref = f"{single.repository.registry}/{single.repository.repository}@{child}"
    _crossdock(stage_env, "k8s", child_ref, "-o", str(out))
    assert _validated_affinity(out)[0] == ["arm64"]


# -- running the images with docker ---------------------------------------------------------


@pytest.mark.docker
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("arch", ARCHES)
def test_invoke_returns_the_lambda_handlers_real_response(built, stage_env, tmp_path, arch):
    lam = built("lambda")
    event = tmp_path / "event.json"
    event.write_text(json.dumps(EVENT))
    out = _crossdock(
        stage_env,
        "invoke",
        lam.ref(f"t-{arch}"),
        "--event",
        str(event),
        "--platform",
        f"linux/{arch}",
        "--timeout",
        START_TIMEOUT_S[arch],
        "--json",
    )
    (result,) = json.loads(out)
    response = result["response"]
    assert response["machine"] == MACHINE[arch]
    assert response["sum_of_squares"] == SUM_OF_SQUARES_0_TO_6
    assert response["orjson"] == '{"n":7}'
    assert response["png_bytes"] > 0


@pytest.mark.docker
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("target", ["apprunner", "eks"])
@pytest.mark.parametrize("arch", ARCHES)
def test_web_images_answer_their_health_path_under_crossdock_run(built, stage_env, target, arch):
    web = built(target)
    out = _crossdock(
        stage_env,
        "run",
        web.ref("t"),
        "--platform",
        f"linux/{arch}",
        "--timeout",
        START_TIMEOUT_S[arch],
        "--json",
    )
    (result,) = json.loads(out)
    assert result["status"] == 200
    assert json.loads(result["body"]) == {"status": "ok"}
    assert result["url"] == "http://127.0.0.1:8080/health"


@pytest.mark.docker
def test_invoke_reports_the_handlers_error_with_type_and_trace(built, stage_env, tmp_path):
    lam = built("lambda")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"n": "not a number"}))
    completed = subprocess.run(
        [
            *(CROSSDOCK, "invoke", lam.ref("t-amd64"), "--event", str(event)),
            *("--platform", "linux/amd64", "--timeout", START_TIMEOUT_S["amd64"], "--json"),
        ],
        capture_output=True,
        text=True,
        env=stage_env,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    (result,) = json.loads(completed.stdout)
    error = result["error"]
    # The example handler validates the event with pydantic: its real exception comes back.
    assert error["type"] == "ValidationError"
    assert "n" in error["message"]
    assert any("lambda_handler.py" in line for line in error["stack_trace"])
