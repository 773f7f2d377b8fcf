"""Python versions follow the base (issue 11): one small numpy service built on the stage's two
Debian bases, bookworm's python3.11 (glibc 2.36) and trixie's python3.13 (glibc 2.41).

For each base crossdock must read the Python and the glibc from the base's own layers and choose
from them: the wheels (cp311 vs cp313, manylinux level <= 2.36 vs <= 2.40), the interpreter that
writes the bytecode (a host Python of the *base's* version: pyc magic 3495 vs 3571), and the
glibc rule of verification (a real trixie binary fits trixie and is refused on bookworm). The
bookworm image then runs on both architectures (arm64 under QEMU) and answers over HTTP.

Needs `stage/stage.sh up` (which publishes python:3.11-slim-bookworm) and, for the docker
tests, `stage/stage.sh docker`.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crossdock.platform import AMD64, ARM64, Platform
from crossdock.rootfs.baseprofile import read_base_profile
from crossdock.rootfs.fsview import LayerFS
from crossdock.sources import open_images
from crossdock.verify import Check, verify_image
from tests.support.images import with_layer_files
from tests.support.layertar import write_layer
from tests.support.stage import (
    ARCHES,
    BOTH,
    MACHINE,
    PROJECTS,
    REGISTRY,
    START_TIMEOUT_S,
    Built,
    build_into,
    crossdock,
    detached_container,
    layout_images,
    skopeo_raw,
    uv_lock,
    wait_for_health,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class BaseCase:
    name: str  # as the user writes it; the stage mirrors docker.io
    python: str
    glibc: str
    manylinux: str  # the highest level uv accepts that the glibc allows
    pyc_magic: int  # importlib.util.MAGIC_NUMBER of that Python


BOOKWORM = BaseCase(
    "docker.io/library/python:3.11-slim-bookworm", "3.11", "2.36", "manylinux_2_36", 3495
)
TRIXIE = BaseCase("docker.io/library/python:3.13-slim", "3.13", "2.41", "manylinux_2_40", 3571)
WHEEL_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, stage_env: dict[str, str], port: int) -> Path:
    """The numpy service as the seed's backend/api, listening on a free port, locked."""
    root = tmp_path_factory.mktemp("versions") / "project"
    service = root / "backend" / "api"
    shutil.copytree(PROJECTS / "numpy-any-python", service)
    pyproject = service / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("port = 8080", f"port = {port}"))
    uv_lock(service, stage_env)
    return root


def _build(project: Path, env: dict[str, str], base: BaseCase, layout: Path) -> Built:
    skopeo_raw(f"{REGISTRY}/{base.name.removeprefix('docker.io/')}")  # the stage has this base
    repository = f"tests-{uuid.uuid4().hex[:10]}/py{base.python.replace('.', '')}"
    return build_into(env, project, BOTH, layout, "--base", base.name, push=repository)


@pytest.fixture(scope="module")
def builds(
    project: Path, stage_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Built]:
    return {
        base.python: _build(project, stage_env, base, tmp_path_factory.mktemp("layout") / "oci")
        for base in (BOOKWORM, TRIXIE)
    }


def _pyc_magics(layer: Path) -> set[int]:
    with tarfile.open(layer, "r:gz") as tar:
        magics = set()
        for member in tar:
            if member.name.endswith(".pyc") and (handle := tar.extractfile(member)) is not None:
                magics.add(int.from_bytes(handle.read(2), "little"))
        return magics


@pytest.mark.parametrize("base", [BOOKWORM, TRIXIE], ids=["bookworm-3.11", "trixie-3.13"])
@pytest.mark.parametrize("arch", ARCHES)
def test_wheels_glibc_level_and_bytecode_follow_the_base(
    builds: dict[str, Built], base: BaseCase, arch: str
) -> None:
    built = builds[base.python]
    report = built.platform_report(arch)
    assert report["python_version"] == base.python
    assert report["glibc_version"] == base.glibc
    assert report["python_platform"] == f"{WHEEL_ARCH[arch]}-{base.manylinux}"
    (numpy,) = [w for w in report["wheels"] if w["name"] == "numpy"]
    cp = f"cp{base.python.replace('.', '')}"
    assert numpy["tags"], numpy
    for tag in numpy["tags"]:
        interpreter, abi, platform_tag = tag.split("-")
        assert (interpreter, abi) == (cp, cp), tag
        assert platform_tag.endswith(f"_{WHEEL_ARCH[arch]}"), tag
    verification = report["verification"]
    assert verification["passed"], verification
    assert verification["python_version"] == base.python
    assert verification["glibc"]["available"] == base.glibc
    assert "startup" in verification["checks"]
    # Bytecode for the base's Python in both crossdock layers (dependencies, then the app).
    image = layout_images(built.layout)[arch]
    deps_layer, app_layer = image.layers[-2:]
    assert _pyc_magics(deps_layer) == {base.pyc_magic}
    assert _pyc_magics(app_layer) == {base.pyc_magic}
    assert f"bytecode for Python {base.python}" in built.run.stderr


def test_crossdock_verify_of_the_pushed_bookworm_image(
    builds: dict[str, Built], stage_env: dict[str, str]
) -> None:
    built = builds[BOOKWORM.python]
    run = crossdock(stage_env, "verify", f"{REGISTRY}/{built.repository}:latest", "--json")
    assert run.returncode == 0, run.output
    platforms = json.loads(run.stdout)["platforms"]
    assert {p["python_version"] for p in platforms} == {"3.11"}
    assert {p["glibc"]["available"] for p in platforms} == {"2.36"}


@pytest.fixture
def bookworm_container(
    request: pytest.FixtureRequest, builds: dict[str, Built]
) -> Iterator[tuple[str, str]]:
    arch: str = request.param
    built = builds[BOOKWORM.python]
    reference = f"{REGISTRY}/{built.repository}@{built.platform_report(arch)['image_digest']}"
    name = f"crossdock-it-py311-{uuid.uuid4().hex[:8]}-{arch}"
    with detached_container(reference, arch, name):
        yield arch, name


@pytest.mark.docker
@pytest.mark.parametrize("bookworm_container", ARCHES, indirect=True)
def test_bookworm_image_answers_on_both_architectures(
    bookworm_container: tuple[str, str], port: int
) -> None:
    arch, name = bookworm_container
    answer = wait_for_health(name, f"http://127.0.0.1:{port}/", START_TIMEOUT_S[arch])
    assert answer == {
        "machine": MACHINE[arch],
        "python": "3.11",
        "numpy": "2.4.6",
        "sum_of_squares": 91,
    }


@pytest.mark.parametrize("platform", [AMD64, ARM64], ids=["amd64", "arm64"])
def test_the_glibc_rule_on_both_bases(platform: Platform, tmp_path: Path) -> None:
    """A real binary built against trixie's glibc (its own dash needs GLIBC_2.38) fits the
    trixie base and is refused on bookworm's glibc 2.36, each base's glibc read from its own
    libc.so.6."""
    cache = tmp_path / "cache"
    images: dict[str, Any] = {}
    for base in (TRIXIE, BOOKWORM):
        with open_images(
            f"{REGISTRY}/{base.name.removeprefix('docker.io/')}", cache_dir=cache
        ) as loaded:
            images[base.python] = next(
                i for found in loaded for i in found.images if i.platform == platform
            )
    trixie = images[TRIXIE.python]
    dash = LayerFS([b.path for b in trixie.layers]).read_file("/usr/bin/dash")
    assert dash is not None
    layer = write_layer(tmp_path / "tool.tar.gz", [("app/bin/dash", "file", dash)])
    for base in (TRIXIE, BOOKWORM):
        image = images[base.python]
        profile = read_base_profile(image.config, [b.path for b in image.layers])
        assert profile.glibc_version == base.glibc
        report = verify_image(
            with_layer_files(image.config, [layer]),
            [*(b.path for b in image.layers), layer],
            profile=profile,
            first_layer=len(image.layers),
        )
        glibc = [f for f in report.failures if f.check is Check.GLIBC]
        if base is TRIXIE:
            assert report.passed, report.failures
        else:
            assert [(f.file.path, f.found) for f in glibc] == [
                ("/app/bin/dash", "needs GLIBC_2.38")
            ]
            assert "GLIBC <= 2.36" in glibc[0].expected
