"""The local stage (stage/stage.sh up): what it publishes is real and usable.

A registry on loopback serves two multi-arch stand-ins (python:3.13-slim, lambda/python:3.13);
each must be an OCI index of exactly linux/amd64 and linux/arm64/v8 whose images say so in
their configs, carry what stage/bases.toml describes, and run on both platforms (arm64 through
binfmt/QEMU). The stage is brought up before the tests; they only read it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
import tomllib
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.prerequisites import missing, needs_tools

REPO = Path(__file__).resolve().parents[2]
BASES_TOML = REPO / "stage" / "bases.toml"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"
# platform -> what platform.machine() says there
MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}

pytestmark = [
    pytest.mark.integration,
    needs_tools("skopeo"),
]

# The registry is on loopback: never through a proxy from the environment.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def load_bases() -> list[dict[str, Any]]:
    with BASES_TOML.open("rb") as f:
        return list(tomllib.load(f)["bases"])


BASES = load_bases()
REFS = [f"{b['repository']}:{t}" for b in BASES for t in b["tags"]]


@pytest.fixture(scope="module")
def registry() -> str:
    value = os.environ.get("CROSSDOCK_STAGE_REGISTRY")
    if not value:
        missing(
            "CROSSDOCK_STAGE_REGISTRY is not set: run `stage/stage.sh up` and "
            '`eval "$(stage/stage.sh env)"` first'
        )
    host = value.rsplit(":", 1)[0]
    assert host.startswith("127."), f"the stage registry must be on loopback, not {value}"
    return value


@pytest.fixture(scope="module")
def docker() -> str:
    exe = shutil.which("docker")
    if exe is None:
        missing("docker is not installed: run `stage/stage.sh docker`")
    if subprocess.run([exe, "info"], capture_output=True, check=False).returncode != 0:
        missing("dockerd does not answer: run `stage/stage.sh docker`")
    return exe


def skopeo_raw(ref: str, *, config: bool = False) -> bytes:
    argv = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if config:
        argv.append("--config")
    return subprocess.run([*argv, f"docker://{ref}"], capture_output=True, check=True).stdout


def index_of(registry: str, ref: str) -> dict[str, Any]:
    index = json.loads(skopeo_raw(f"{registry}/{ref}"))
    assert index["mediaType"] == OCI_INDEX, f"{ref} is not an OCI image index"
    return dict(index)


def platform_key(platform: dict[str, str]) -> str:
    return "/".join(platform[k] for k in ("os", "architecture", "variant") if k in platform)


def base_for(ref: str) -> dict[str, Any]:
    return next(b for b in BASES if ref.partition(":")[0] == b["repository"])


def run_image(docker: str, image: str, platform: str, *args: str, entrypoint: str = "python3"):
    # --pull always: the daemon keeps one platform per tag; pull the one asked for.
    argv = [docker, "run", "--rm", "--pull", "always", "--network", "host"]
    argv += ["--platform", platform, "--entrypoint", entrypoint, image, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


# -- the registry ---------------------------------------------------------------------------


def test_registry_answers_v2(registry):
    with NO_PROXY.open(f"http://{registry}/v2/", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_stage_env_maps_public_registries_to_the_stage(registry):
    out = subprocess.run(
        ["bash", str(REPO / "stage/stage.sh"), "env"], capture_output=True, text=True, check=True
    ).stdout
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in out.splitlines() if line.strip()
    )
    assert exports["CROSSDOCK_STAGE_REGISTRY"] == registry
    pairs = exports["CROSSDOCK_REGISTRY_MIRRORS"].strip("'").split(",")
    mirrors = dict(pair.split("=") for pair in pairs)
    assert mirrors == {"docker.io": registry, "public.ecr.aws": registry}


# -- what is published ----------------------------------------------------------------------


@pytest.mark.parametrize("ref", REFS)
def test_stand_in_is_an_index_of_amd64_and_arm64(registry, ref):
    index = index_of(registry, ref)
    platforms = sorted(platform_key(m["platform"]) for m in index["manifests"])
    assert platforms == ["linux/amd64", "linux/arm64/v8"]
    assert {m["mediaType"] for m in index["manifests"]} == {OCI_MANIFEST}


@pytest.mark.parametrize("ref", REFS)
def test_each_child_config_says_its_platform(registry, ref):
    repository = ref.split(":")[0]
    for child in index_of(registry, ref)["manifests"]:
        manifest = json.loads(skopeo_raw(f"{registry}/{repository}@{child['digest']}"))
        assert manifest["mediaType"] == OCI_MANIFEST
        raw = skopeo_raw(f"{registry}/{repository}@{child['digest']}", config=True)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == manifest["config"]["digest"]
        config = json.loads(raw)
        assert config["os"] == child["platform"]["os"] == "linux"
        assert config["architecture"] == child["platform"]["architecture"]
        assert config.get("variant") == child["platform"].get("variant")
        if config["architecture"] == "arm64":
            assert config["variant"] == "v8"
        assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
        layer_history = [h for h in config["history"] if not h.get("empty_layer")]
        assert len(layer_history) == len(manifest["layers"])


@pytest.mark.parametrize("ref", REFS)
def test_configs_carry_what_bases_toml_says(registry, ref):
    """Paths, env and entrypoints are data (bases.toml), and the images must match it."""
    expected = base_for(ref)["config"]
    repository = ref.split(":")[0]
    for child in index_of(registry, ref)["manifests"]:
        raw = skopeo_raw(f"{registry}/{repository}@{child['digest']}", config=True)
        config = json.loads(raw)["config"]
        for key, value in expected.items():
            assert config.get(key) == value, f"{ref} {platform_key(child['platform'])}: {key}"
        env = dict(e.split("=", 1) for e in config["Env"])
        assert "PATH" in env
        assert env["LANG"] == "C.UTF-8"


def test_lambda_platform_tags_are_single_platform_images(registry):
    lam = next(b for b in BASES if b["name"] == "lambda-python")
    index = index_of(registry, f"{lam['repository']}:{lam['tags'][0]}")
    by_arch = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    for arch, tag in lam["platform_tags"].items():
        manifest = skopeo_raw(f"{registry}/{lam['repository']}:{tag}")
        assert json.loads(manifest)["mediaType"] == OCI_MANIFEST
        assert "sha256:" + hashlib.sha256(manifest).hexdigest() == by_arch[arch]


# -- running them ---------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.parametrize("platform", sorted(MACHINES))
@pytest.mark.parametrize("ref", REFS)
def test_stand_in_runs_on_its_platform(registry, docker, ref, platform):
    result = run_image(
        docker, f"{registry}/{ref}", platform, "-c", "import platform; print(platform.machine())"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == MACHINES[platform]


PROBE = """
import ctypes, importlib.util, json, os, platform, sqlite3, ssl, subprocess
print(json.dumps({
    "machine": platform.machine(),
    "libc": platform.libc_ver()[0],
    "ca_certs": len(ssl.create_default_context().get_ca_certs()),
    "sqlite": sqlite3.sqlite_version,
    "externally_managed": os.path.exists(os.path.join(
        os.path.dirname(os.__file__), "EXTERNALLY-MANAGED")),
    "pip": importlib.util.find_spec("pip") is not None,  # running it takes a minute on QEMU
    "user": __import__("pwd").getpwuid(0).pw_name,
    "sh": subprocess.run(["/bin/sh", "-c", "echo ok"], capture_output=True, text=True).stdout,
}))
"""


@pytest.mark.docker
@pytest.mark.parametrize("platform", sorted(MACHINES))
def test_python_slim_stand_in_is_a_usable_python(registry, docker, platform):
    """What the extract hook stands in for: CA bundle, passwd, /bin/sh, pip, no PEP 668."""
    result = run_image(docker, f"{registry}/library/python:3.13-slim", platform, "-c", PROBE)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["machine"] == MACHINES[platform]
    assert facts["libc"] == "glibc"
    assert facts["ca_certs"] > 100
    assert facts["externally_managed"] is False
    assert facts["pip"] is True
    assert facts["user"] == "root"
    assert facts["sh"] == "ok\n"


@pytest.mark.docker
def test_lambda_entrypoint_without_runtime_api_says_so(registry, docker):
    argv = [docker, "run", "--rm", "--pull", "always", "--network", "host"]
    argv += ["--platform", "linux/amd64", f"{registry}/lambda/python:3.13", "app.handler"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1
    assert "AWS_LAMBDA_RUNTIME_API is not set" in result.stderr


@dataclasses.dataclass
class Invocation:
    """One Lambda invocation as the fake Runtime API sees it."""

    request_id: str
    event: bytes
    served: threading.Event = dataclasses.field(default_factory=threading.Event)
    answered: threading.Event = dataclasses.field(default_factory=threading.Event)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    results: dict[str, bytes] = dataclasses.field(default_factory=dict)


def runtime_api(inv: Invocation) -> type[http.server.BaseHTTPRequestHandler]:
    """Just enough of the Lambda Runtime API (2018-06-01) for one invocation."""

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/2018-06-01/runtime/invocation/next" or inv.served.is_set():
                # The runtime asks again after answering: keep it waiting until it is stopped.
                inv.done.wait(60)
                self.send_error(503)
                return
            inv.served.set()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", inv.request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", "4102444800000")
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Length", str(len(inv.event)))
            self.end_headers()
            self.wfile.write(inv.event)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            inv.results[self.path.rsplit("/", 1)[-1]] = body  # .../response or .../error
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            inv.answered.set()

        def log_message(self, *args: Any) -> None:
            pass

    return Api


@pytest.mark.docker
@pytest.mark.parametrize("platform", sorted(MACHINES))
def test_lambda_stand_in_runs_a_handler_through_awslambdaric(registry, docker, platform, tmp_path):
    """The entrypoint, awslambdaric (a C extension per arch) and /var/task work together."""
    (tmp_path / "app.py").write_text(
        "import platform\n"
        "def handler(event, context):\n"
        "    return {'machine': platform.machine(), 'echo': event['x'],\n"
        "            'request_id': context.aws_request_id}\n"
    )
    tmp_path.chmod(0o755)
    inv = Invocation(request_id=str(uuid.uuid4()), event=b'{"x": 42}')
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), runtime_api(inv))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"crossdock-stage-lambda-{uuid.uuid4().hex[:8]}"
    argv = [docker, "run", "-d", "--name", name, "--pull", "always", "--network", "host"]
    argv += ["--platform", platform, "-v", f"{tmp_path}:/var/task:ro"]
    argv += ["-e", f"AWS_LAMBDA_RUNTIME_API=127.0.0.1:{server.server_address[1]}"]
    for key, value in {
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/f",
        "AWS_LAMBDA_LOG_STREAM_NAME": "stream",
    }.items():
        argv += ["-e", f"{key}={value}"]
    argv += [f"{registry}/lambda/python:3.13", "app.handler"]
    try:
        subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300)
        if not inv.answered.wait(180):
            logs = subprocess.run([docker, "logs", name], capture_output=True, check=False)
            pytest.fail(f"no answer from the handler in 180 s:\n{logs.stdout!r}{logs.stderr!r}")
        assert "error" not in inv.results, inv.results["error"]
        assert json.loads(inv.results["response"]) == {
            "machine": MACHINES[platform],
            "echo": 42,
            "request_id": inv.request_id,
        }
    finally:
        inv.done.set()
        subprocess.run([docker, "rm", "-f", name], capture_output=True, check=False)
        server.shutdown()
        server.server_close()
