"""What the integration tests share to drive crossdock on the local stage: where things are
(the repository, the example, the test projects, the stage registry), the CLI run as users run it
(``crossdock``, ``build_service``), independent readers of what it made (skopeo, OCI layout
folders, layer tarballs) and containers run under dockerd.

The fixtures built on these (``stage_env``, ``port``, ``example``) are in
tests/integration/conftest.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "example"
PROJECTS = REPO_ROOT / "tests" / "data" / "projects"
REGISTRY = os.environ.get("CROSSDOCK_STAGE_REGISTRY", "127.0.0.1:5555")
MIRRORS = f"docker.io={REGISTRY},public.ecr.aws={REGISTRY}"
# The crossdock of this environment (what `uv run crossdock` runs), without uv's start-up cost.
CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
BOTH = "linux/arm64,linux/amd64"
STAGE_BASE = f"{REGISTRY}/library/python:3.13-slim"
ARCHES = ("amd64", "arm64")
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
DEPS_DIR = "opt/crossdock/packages"  # the apprunner target's deps_dir, without the leading /
# Seconds a container may take to answer: arm64 runs under QEMU on a 2-core machine.
START_TIMEOUT_S = {"amd64": 90.0, "arm64": 300.0}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def crossdock(env: dict[str, str], *args: str, timeout: float = 900) -> Run:
    started = time.perf_counter()
    completed = subprocess.run(
        [CROSSDOCK, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    return Run(
        completed.returncode, completed.stdout, completed.stderr, time.perf_counter() - started
    )


# `crossdock ARGS...` through the CLI's entry point in a child that reports, on stderr at exit,
# the request lines the standard library's HTTP sent (the light client's: httpx does not use it),
# heard through the audit hook http.client raises for each send (nothing imported, nothing
# replaced), and the modules the process imported.
_PROBE = """
import atexit, json, re, sys
sent = []
def heard(event, args):
    if event == "http.client.send":
        line = bytes(args[1]).split(b"\\r\\n", 1)[0].decode("latin-1")
        if re.fullmatch(r"[A-Z]+ \\S+ HTTP/1\\.[01]", line):
            sent.append(line.rsplit(" ", 1)[0])
sys.addaudithook(heard)
atexit.register(lambda: sys.stderr.write("MODULES " + json.dumps(sorted(sys.modules)) + "\\n"))
atexit.register(lambda: sys.stderr.write("SENT " + json.dumps(sent) + "\\n"))
sys.argv = ["crossdock", *sys.argv[1:]]
from crossdock.cli import main
main()
"""


def crossdock_probed(
    env: dict[str, str], *args: str, timeout: float = 900
) -> tuple[Run, set[str], list[str]]:
    """`crossdock ARGS`, the modules the process imported and the "METHOD /path" of each
    request the standard library's HTTP sent (the run's stderr without the report)."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    # (atexit runs last what was registered first: SENT, then MODULES)
    rest, _, modules = completed.stderr.rpartition("MODULES ")
    stderr, _, sent = rest.rpartition("SENT ")
    run = Run(completed.returncode, completed.stdout, stderr, time.perf_counter() - started)
    return run, set(json.loads(modules)), json.loads(sent)


def build_json(run: Run) -> dict[str, Any]:
    assert run.returncode == 0, run.output
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def skopeo_raw(ref: str, *, config: bool = False) -> dict[str, Any]:
    args = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if config:
        args.append("--config")
    completed = subprocess.run(
        [*args, f"docker://{ref}"], capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def assert_nothing_pushed(repository: str) -> None:
    """No tag and no repository at all: not even blobs were uploaded."""
    completed = subprocess.run(
        ["skopeo", "list-tags", "--tls-verify=false", f"docker://{REGISTRY}/{repository}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode != 0, completed.stdout
    assert "404" in completed.stderr or "NAME_UNKNOWN" in completed.stderr, completed.stderr
    assert repository not in registry_catalog()


def registry_catalog() -> list[str]:
    """Every repository of the stage registry (the catalog API, page by page)."""
    repositories: list[str] = []
    url: str | None = f"http://{REGISTRY}/v2/_catalog?n=1000"
    while url is not None:
        with urllib.request.urlopen(url, timeout=30) as answer:
            repositories.extend(json.load(answer)["repositories"])
            link = answer.headers.get("Link")
        # Link: </v2/_catalog?last=...&n=1000>; rel="next"
        url = f"http://{REGISTRY}{link.split(';')[0].strip('<> ')}" if link else None
    return repositories


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_service(root: Path, source: Path, *, lock_env: dict[str, str] | None) -> Path:
    """``source`` copied as the service ``api`` of a project at ``root`` (the seed's layout);
    locked with uv when ``lock_env`` is given. Returns the service folder."""
    service = root / "backend" / "api"
    shutil.copytree(
        source, service, ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__")
    )
    if lock_env is not None:
        uv_lock(service, lock_env)
    return service


def uv_lock(service: Path, env: dict[str, str]) -> None:
    subprocess.run(["uv", "lock", "--quiet"], cwd=service, env=env, check=True, timeout=300)


def copy_example(destination: Path, env: dict[str, str]) -> Path:
    """The example project copied to ``destination`` without its environments, locks and
    bytecode, and its ``api`` service locked again with ``env``: a project a test may edit."""
    shutil.copytree(
        EXAMPLE, destination, ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__")
    )
    uv_lock(destination / "backend" / "api", env)
    return destination


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, hex_digest = digest.split(":")
    return layout / "blobs" / algorithm / hex_digest


def read_blob_json(layout: Path, digest: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(blob_path(layout, digest).read_bytes())
    return result


@dataclass(frozen=True)
class LayoutImage:
    """One platform's image in an OCI layout folder: manifest, config, layer blob paths."""

    platform: dict[str, Any]
    digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    layers: tuple[Path, ...]


def layout_entries(layout: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """index.json's one image entry, and its artifact entries (crossdock writes one SBOM per
    platform image beside the index; tests/integration/test_sbom.py checks them)."""
    listed = json.loads((layout / "index.json").read_text())["manifests"]
    (entry,) = [e for e in listed if "artifactType" not in e]
    return entry, [e for e in listed if "artifactType" in e]


def layout_images(layout: Path) -> dict[str, LayoutImage]:
    """The images of the (only) index in ``layout``, by architecture."""
    entry, _ = layout_entries(layout)
    index = read_blob_json(layout, entry["digest"])
    images = {}
    for child in index["manifests"]:
        manifest = read_blob_json(layout, child["digest"])
        images[child["platform"]["architecture"]] = LayoutImage(
            platform=child["platform"],
            digest=child["digest"],
            manifest=manifest,
            config=read_blob_json(layout, manifest["config"]["digest"]),
            layers=tuple(blob_path(layout, layer["digest"]) for layer in manifest["layers"]),
        )
    return images


def layout_index_digest(layout: Path) -> str:
    entry, _ = layout_entries(layout)
    digest: str = entry["digest"]
    return digest


def layer_files(layer: Path) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    """Every member of a gzip layer: name -> (header, bytes of regular files)."""
    members: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    with tarfile.open(layer, "r:gz") as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            members[member.name.removeprefix("./")] = (
                member,
                handle.read() if handle is not None else None,
            )
    return members


@dataclass(frozen=True)
class Built:
    """A CLI build: its JSON report, the pushed reference (if any), its OCI layout folder."""

    run: Run
    report: dict[str, Any]
    repository: str | None
    layout: Path

    @property
    def index_digest(self) -> str:
        digest: str = self.report["index"]
        return digest

    def platform_report(self, arch: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            p for p in self.report["platforms"] if p["platform"].split("/")[1] == arch
        ]
        assert len(found) == 1, found
        return found[0]


def build_arm64_and_push(stage_env: dict[str, str], project: Path, repository: str) -> Run:
    """`crossdock build` of a project's api service for linux/arm64, pushed to the stage."""
    return build_service(
        stage_env, project, "linux/arm64", "--push", f"{REGISTRY}/{repository}:latest"
    )


def stage_environment(host_python: str, **overrides: str) -> dict[str, str]:
    """The environment the CLI runs with on the stage: stage mirrors, a host Python 3.13 for uv
    (locks of the >=3.13 services, and the bytecode compiler for the image's Python 3.13), no
    SOURCE_DATE_EPOCH from outside; then ``overrides``."""
    env = {
        **os.environ,
        "UV_PYTHON": host_python,
        "UV_PYTHON_DOWNLOADS": "never",
        "CROSSDOCK_REGISTRY_MIRRORS": MIRRORS,
    }
    env.pop("SOURCE_DATE_EPOCH", None)
    env.update(overrides)
    return env


def build_service(
    env: dict[str, str],
    project: Path,
    platforms: str,
    *options: str,
    service: str = "api",
    timeout: float = 900,
) -> Run:
    """``crossdock build -C PROJECT --service SERVICE --platform PLATFORMS OPTIONS...``."""
    return crossdock(
        env,
        "build",
        "-C",
        str(project),
        "--service",
        service,
        "--platform",
        platforms,
        *options,
        timeout=timeout,
    )


# -- containers under dockerd ------------------------------------------------------------------


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - http on loopback
        return json.load(answer)


def container_running(name: str) -> bool:
    completed = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() == "true"


def wait_for_health(name: str, url: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if not container_running(name):
            logs = subprocess.run(
                ["docker", "logs", name], capture_output=True, text=True, check=False
            )
            pytest.fail(f"container {name} exited:\n{logs.stdout}{logs.stderr}")
        try:
            return http_json(url)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last_error = str(error)
        time.sleep(1)
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
    pytest.fail(f"{url} did not answer in {timeout:.0f} s ({last_error}):\n{logs.stderr}")


@contextlib.contextmanager
def detached_container(image: str, arch: str, name: str) -> Iterator[str]:
    """``image`` running its default command as container ``name`` on the host network,
    removed afterwards."""
    try:
        subprocess.run(
            [
                "docker",
                "run",
                "--detach",
                "--name",
                name,
                "--network",
                "host",
                "--platform",
                f"linux/{arch}",
                image,
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        yield name
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)


def build_into(
    env: dict[str, str],
    project: Path,
    platforms: str,
    layout: Path,
    *options: str,
    push: str | None = None,
) -> Built:
    """``build_service`` written as an OCI layout (``--oci-layout LAYOUT --json``) and, when
    ``push`` names a repository, pushed to the stage as ``push:latest``. The report is checked
    against the index the layout holds."""
    pushing = ("--push", f"{REGISTRY}/{push}:latest") if push is not None else ()
    run = build_service(
        env, project, platforms, *options, *pushing, "--oci-layout", str(layout), "--json"
    )
    built = Built(run, build_json(run), push, layout)
    assert layout_index_digest(layout) == built.index_digest
    return built
