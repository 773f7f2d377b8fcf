"""Every project shape, built for linux/arm64 and linux/amd64 and run (issue 11).

One small project per shape (tests/data/projects/shape-*): a single uv project at its root, a uv
workspace with two services sharing a library member (one service copied as files, one packaged
and started by its console script), a packaged src-layout app started by its console script, a
packaged flat-layout app served through `app`. Each is locked with uv, built through the CLI from
where a user would stand, pushed to the stage registry, and each platform's image is run with
docker (arm64 under QEMU) until it answers HTTP with the shape and the CPU it runs on. The seed's
layout is the example, built and run the same way by test_native_build.py. A project whose own
code is a C extension is refused, by name, before anything is pushed.

Dependencies are kept small (uvicorn, or nothing: the standard library's http.server) so that
the arm64 containers start quickly under emulation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crossdock.dockercli import Docker
from crossdock.localrun.docker_run import default_start_timeout
from crossdock.localrun.health import wait_for_health
from crossdock.platform import parse_platforms
from tests.support.stage import (
    ARCHES,
    BOTH,
    CROSSDOCK,
    DEPS_DIR,
    MACHINE,
    MIRRORS,
    PROJECTS,
    REGISTRY,
    STAGE_BASE,
    Run,
    assert_nothing_pushed,
    build_json,
    free_port,
    layer_files,
    layout_images,
    skopeo_raw,
    uv_lock,
)

pytestmark = pytest.mark.integration

RUN_ID = uuid.uuid4().hex[:10]
IMAGE_PYTHON = "/usr/bin/python3.13"


@dataclass(frozen=True)
class Shape:
    """A test project, the service to build in it, and where the user stands to build it."""

    project: str  # folder under tests/data/projects
    stand_in: str = "."  # the folder crossdock runs in, relative to the project
    args: tuple[str, ...] = ()  # more CLI arguments (--service ...)


SHAPES = {
    # `crossdock build` in the project's folder: no -C, no --service.
    "single": Shape("shape-single"),
    "src-package": Shape("shape-src-package"),
    "flat-package": Shape("shape-flat-package"),
    # A member chosen by name from the workspace root ...
    "workspace-web": Shape("shape-workspace", args=("--package", "web")),
    # ... or found from the member's folder.
    "workspace-worker": Shape("shape-workspace", stand_in="services/worker"),
}


@dataclass(frozen=True)
class ShapeBuild:
    shape: str
    root: Path
    port: int
    run: Run
    report: dict[str, Any]
    repository: str
    layout: Path

    def image(self, arch: str) -> str:
        return f"{REGISTRY}/{self.repository}@{self.platform_report(arch)['image_digest']}"

    def platform_report(self, arch: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            p for p in self.report["platforms"] if p["platform"].split("/")[1] == arch
        ]
        assert len(found) == 1, found
        return found[0]


def run_crossdock(env: dict[str, str], cwd: Path, *args: str) -> Run:
    completed = subprocess.run(
        [CROSSDOCK, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    return Run(completed.returncode, completed.stdout, completed.stderr, 0.0)


def copy_project(name: str, dest: Path, env: dict[str, str], *, port: int | None = None) -> Path:
    """tests/data/projects/NAME copied to ``dest`` and locked; with ``port``, a crossdock.toml
    that sets it (the test's containers share the host network)."""
    shutil.copytree(
        PROJECTS / name, dest, ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__")
    )
    if port is not None:
        (dest / "crossdock.toml").write_text(f"port = {port}\n")
    uv_lock(dest, env)
    return dest


@pytest.fixture(scope="module")
def stage_env(host_python: str) -> dict[str, str]:
    env = {
        **os.environ,
        "UV_PYTHON": host_python,
        "UV_PYTHON_DOWNLOADS": "never",
        "CROSSDOCK_REGISTRY_MIRRORS": MIRRORS,
    }
    env.pop("SOURCE_DATE_EPOCH", None)
    skopeo_raw(STAGE_BASE)  # fails clearly when the stage is down
    return env


@pytest.fixture(scope="module")
def shape_build(
    stage_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], ShapeBuild]:
    """Each shape built once for both platforms, pushed and written as an OCI layout."""
    built: dict[str, ShapeBuild] = {}

    def build(name: str) -> ShapeBuild:
        if name not in built:
            shape = SHAPES[name]
            tmp = tmp_path_factory.mktemp(name)
            port = free_port()
            root = copy_project(shape.project, tmp / shape.project, stage_env, port=port)
            repository = f"tests-shapes-{RUN_ID}/{name}"
            run = run_crossdock(
                stage_env,
                root / shape.stand_in,
                "build",
                *shape.args,
                "--platform",
                BOTH,
                "--push",
                f"{REGISTRY}/{repository}:latest",
                "--oci-layout",
                str(tmp / "oci"),
                "--json",
            )
            built[name] = ShapeBuild(
                name, root, port, run, build_json(run), repository, tmp / "oci"
            )
        return built[name]

    return build


@pytest.fixture
def docker() -> Docker:
    return Docker()


# -- every shape answers on both architectures ---------------------------------------------------


@contextmanager
def serving(docker: Docker, built: ShapeBuild, arch: str) -> Iterator[dict[str, Any]]:
    """The image for ``arch`` started with its own command; yields its first HTTP answer."""
    (platform,) = parse_platforms(f"linux/{arch}")
    image = built.image(arch)
    docker.pull(image, platform)
    name = f"crossdock-shapes-{RUN_ID}-{built.shape}-{arch}"
    container = docker.start(image, platform, name=name)
    try:
        answer = wait_for_health(
            built.port,
            "/",
            timeout_s=default_start_timeout(platform),
            alive=lambda: docker.is_running(container),
        )
        yield json.loads(answer.body)
    except Exception:
        print(docker.logs(container))
        raise
    finally:
        docker.remove(container)


@pytest.mark.docker
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_shape_builds_and_answers_on_both_architectures(
    shape_build: Callable[[str], ShapeBuild], docker: Docker, shape: str, arch: str
) -> None:
    built = shape_build(shape)
    with serving(docker, built, arch) as answer:
        assert answer["machine"] == MACHINE[arch]
        if shape == "single":
            assert answer == {"shape": "single", "machine": MACHINE[arch]}
        elif shape == "src-package":
            # Started by its console script, from the installed wheel (not from /app/src).
            assert answer["shape"] == "src-package"
            assert answer["script"] == f"/{DEPS_DIR}/bin/srcapp"
            assert answer["module"] == f"/{DEPS_DIR}/srcapp/cli.py"
        elif shape == "flat-package":
            assert answer["shape"] == "flat-package"
            assert answer["module"] == f"/{DEPS_DIR}/flatapp/__init__.py"
        else:
            service = shape.removeprefix("workspace-")
            assert answer["shape"] == "workspace"
            assert answer["service"] == service
            # The library member, built into a wheel and installed, in both services.
            assert answer["library"] == f"/{DEPS_DIR}/greeting/__init__.py"


# -- what each image holds ----------------------------------------------------------------------


def code_layer(built: ShapeBuild, arch: str) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    return layer_files(layout_images(built.layout)[arch].layers[-1])


def image_cmd(built: ShapeBuild, arch: str) -> list[str]:
    cmd: list[str] = layout_images(built.layout)[arch].config["config"]["Cmd"]
    return cmd


@pytest.mark.parametrize("arch", ARCHES)
def test_packaged_project_is_installed_from_its_wheel_with_its_console_script(
    shape_build: Callable[[str], ShapeBuild], arch: str
) -> None:
    built = shape_build("src-package")
    files = code_layer(built, arch)
    assert image_cmd(built, arch) == [f"/{DEPS_DIR}/bin/srcapp"]
    script = files[f"{DEPS_DIR}/bin/srcapp"]
    assert script[0].mode & 0o111
    assert script[1] is not None
    assert script[1].startswith(f"#!{IMAGE_PYTHON}\n".encode())
    assert f"{DEPS_DIR}/srcapp/cli.py" in files
    assert f"{DEPS_DIR}/srcapp/__pycache__/cli.cpython-313.pyc" in files
    # Installed, not copied: nothing under /app; no editable install, no host path recorded.
    assert not any(name.startswith("app/") for name in files)
    assert not any(name.endswith((".pth", "direct_url.json", "uv_cache.json")) for name in files)
    dist_info = f"{DEPS_DIR}/srcapp-0.1.0.dist-info"
    record = files[f"{dist_info}/RECORD"][1]
    assert record is not None
    assert b"direct_url.json" not in record
    assert b"srcapp/cli.py" in record
    report = built.platform_report(arch)
    assert report["local_packages"] == [
        {"name": "srcapp", "version": "0.1.0", "tags": ["py3-none-any"]}
    ]
    assert report["wheels"] == []  # no dependencies at all


@pytest.mark.parametrize("arch", ARCHES)
def test_workspace_services_get_the_library_member_they_need(
    shape_build: Callable[[str], ShapeBuild], arch: str
) -> None:
    web = shape_build("workspace-web")
    files = code_layer(web, arch)
    # Not a package: its files copied as they are; the library built and installed.
    assert "app/web_main.py" in files
    assert f"{DEPS_DIR}/greeting/__init__.py" in files
    assert not any(name.startswith(f"{DEPS_DIR}/web") for name in files)
    assert [p["name"] for p in web.platform_report(arch)["local_packages"]] == ["greeting"]
    assert {w["name"] for w in web.platform_report(arch)["wheels"]} >= {"uvicorn", "h11"}

    worker = shape_build("workspace-worker")
    files = code_layer(worker, arch)
    assert not any(name.startswith("app/") for name in files)
    assert [p["name"] for p in worker.platform_report(arch)["local_packages"]] == [
        "greeting",
        "worker",
    ]
    assert image_cmd(worker, arch) == [f"/{DEPS_DIR}/bin/worker"]
    # The web service's own dependency (uvicorn) is not the worker's.
    assert worker.platform_report(arch)["wheels"] == []


def test_local_wheels_give_the_same_layer_from_a_cold_cache(
    shape_build: Callable[[str], ShapeBuild], stage_env: dict[str, str], tmp_path: Path
) -> None:
    built = shape_build("flat-package")
    env = {**stage_env, "CROSSDOCK_CACHE_DIR": str(tmp_path / "cache")}
    run = run_crossdock(
        env,
        built.root,
        "build",
        "--platform",
        "linux/amd64",
        "--oci-layout",
        str(tmp_path / "oci"),
        "--json",
    )
    again = build_json(run)["platforms"][0]
    first = built.platform_report("amd64")
    assert [layer["digest"] for layer in again["layers"]] == [
        layer["digest"] for layer in first["layers"]
    ]
    assert again["image_digest"] == first["image_digest"]


# -- refused ------------------------------------------------------------------------------------


def test_project_with_a_c_extension_is_refused_by_name(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    root = copy_project("native-project", tmp_path / "native-project", stage_env)
    repository = f"tests-shapes-{RUN_ID}/native-project"
    run = run_crossdock(
        stage_env,
        root,
        "build",
        "--platform",
        BOTH,
        "--push",
        f"{REGISTRY}/{repository}:latest",
    )
    assert run.returncode == 4, run.output
    error = run.stderr[run.stderr.index("error:") :]
    assert "the project fastc" in error
    assert "not pure Python" in error
    assert "C extension" in error
    assert "linux_x86_64" in error  # what building it on this machine gave
    assert "crossdock never puts native code compiled on the host into an image" in error
    assert "py3-none-any" in error
    assert "Traceback" not in run.output
    assert_nothing_pushed(repository)


# -- the README's quick start, as written ---------------------------------------------------------


def readme_quick_start() -> list[str]:
    """The shell lines of the README's quick start for a plain `uv init` project (the code block
    under that heading; the README's first quick start installs crossdock itself)."""
    readme = (PROJECTS.parents[2] / "README.md").read_text()
    section = readme[readme.index("## Quick start: a plain `uv init` project") :]
    block = section[section.index("```bash\n") + len("```bash\n") : section.index("\n```\n")]
    return block.splitlines()


def test_readme_quick_start_builds_a_plain_uv_init_project(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    lines = readme_quick_start()
    assert len(lines) == 3
    *setup, build = lines
    assert "uv init" in setup[0]
    assert build.startswith("crossdock build ")
    # The user's lines, run by a shell as they are; only the pushed repository is this test's,
    # and `uv init` stays standalone: under a folder whose parent has a pyproject.toml (another
    # checkout in /tmp), it would join that as a workspace member and edit its file.
    setup[0] = setup[0].replace("uv init ", "uv init --no-workspace ", 1)
    repository = f"tests-shapes-{RUN_ID}/quick-start"
    build = build.replace("crossdock ", f"{CROSSDOCK} ", 1).replace(
        "127.0.0.1:5555/hello:latest", f"{REGISTRY}/{repository}:latest"
    )
    completed = subprocess.run(
        ["bash", "-e", "-c", "\n".join([*setup, build])],
        cwd=tmp_path,
        env=stage_env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    index = skopeo_raw(f"{REGISTRY}/{repository}:latest")
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}
    (amd64,) = [m for m in index["manifests"] if m["platform"]["architecture"] == "amd64"]
    config = skopeo_raw(f"{REGISTRY}/{repository}@{amd64['digest']}", config=True)
    # Served by uvicorn, as `app` says: the project you stand in is the service.
    assert config["config"]["Cmd"][1:] == [
        "-m",
        "uvicorn",
        "main:app",
        "--host",
        "0.0.0.0",  # noqa: S104
        "--port",
        "8080",
    ]
