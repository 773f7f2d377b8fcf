"""The native builder end to end on the local stage (issue 3's "Done when" list).

Everything here is real: the stage registry on 127.0.0.1:5555 with its multi-arch Python base,
uv and PyPI wheels, skopeo as an independent registry client, dockerd with QEMU (binfmt) for
the arm64 containers. Builds go through the CLI, as users run them, and are shared between tests
(module-scoped fixtures) so that the file stays fast: the warm builds take seconds; the slow
parts are the two cold-cache builds of the reproducibility test and the one arm64 container.

Needs `stage/stage.sh up` and, for the tests marked docker, `stage/stage.sh docker`.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossdock.image.mediatypes import MediaType
from tests.support.stage import (
    ARCHES,
    BOTH,
    DEPS_DIR,
    MACHINE,
    PROJECTS,
    REGISTRY,
    REPO_ROOT,
    STAGE_BASE,
    START_TIMEOUT_S,
    Built,
    assert_nothing_pushed,
    build_arm64_and_push,
    build_into,
    build_json,
    build_service,
    crossdock,
    detached_container,
    http_json,
    layer_files,
    layout_images,
    layout_index_digest,
    make_service,
    skopeo_raw,
    wait_for_health,
)

pytestmark = pytest.mark.integration

VERIFY_DATA = REPO_ROOT / "tests" / "data" / "verify"
RUN_ID = uuid.uuid4().hex[:10]
BASE_NAME = "docker.io/library/python:3.13-slim"
# (os, architecture, variant) of each child of a both-platform index.
EXPECTED_PLATFORMS = {("linux", "amd64", None), ("linux", "arm64", "v8")}
GZIP_LAYER_TYPES = {MediaType.OCI_LAYER_GZIP, MediaType.DOCKER_LAYER_GZIP}
# The base's Python (the stage stand-in is Debian trixie's python3.13): bytecode must be for it.
IMAGE_PYTHON = "/usr/bin/python3.13"
PYC_MAGIC_313 = (3571).to_bytes(2, "little") + b"\r\n"  # importlib.util.MAGIC_NUMBER of 3.13
APP_DIR = "app"
# Every native dependency of the example, each exercised (not just imported) so that its
# extension module is loaded; prints the results and the CPU as one JSON line.
IMPORT_CHECK = """
import json, platform
import numpy, orjson, pydantic_core
from PIL import Image
from cryptography.hazmat.primitives import hashes
digest = hashes.Hash(hashes.SHA256()); digest.update(b"crossdock")
print(json.dumps({
    "machine": platform.machine(),
    "numpy": int(numpy.arange(7).dot(numpy.arange(7))),
    "pillow": Image.new("RGB", (2, 3)).size,
    "cryptography": digest.finalize().hex()[:16],
    "orjson": orjson.dumps({"a": 1}).decode(),
    "pydantic_core": pydantic_core.SchemaValidator({"type": "int"}).validate_python("5"),
}))
"""
SHA256_CROSSDOCK_PREFIX = hashlib.sha256(b"crossdock").hexdigest()[:16]


# -- helpers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_build(
    example: Path, stage_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Built:
    """The example's api service for both platforms in one command, pushed and written as an
    OCI layout (the shared cache: warm after the first run on this machine)."""
    repository = f"tests-{RUN_ID}/api"
    layout = tmp_path_factory.mktemp("example-layout") / "oci"
    return build_into(stage_env, example, BOTH, layout, push=repository)


@pytest.fixture(scope="module")
def pushed_copy(example_build: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the registry holds, copied by skopeo (an independent client) to an OCI layout."""
    dest = tmp_path_factory.mktemp("skopeo") / "oci"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--all",
            "--src-tls-verify=false",
            f"docker://{REGISTRY}/{example_build.repository}:latest",
            f"oci:{dest}:latest",
        ],
        check=True,
        timeout=300,
    )
    return dest


@pytest.fixture(scope="module")
def stage_base_children() -> dict[str, str]:
    """The stage base's child manifest digest per architecture."""
    index = skopeo_raw(STAGE_BASE)
    return {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}


# -- 1. one command, both platforms, a well-formed index ------------------------------------


def test_example_builds_both_platforms_into_one_index(example_build: Built) -> None:
    ref = f"{REGISTRY}/{example_build.repository}:latest"
    index = skopeo_raw(ref)
    assert index["mediaType"] == MediaType.OCI_INDEX
    platforms = {
        (m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant"))
        for m in index["manifests"]
    }
    assert len(index["manifests"]) == 2
    assert platforms == EXPECTED_PLATFORMS
    # The tag points to the index the build reported, and the report's images are its children.
    digest = (
        "sha256:"
        + hashlib.sha256(
            subprocess.run(
                ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                capture_output=True,
                check=True,
            ).stdout
        ).hexdigest()
    )
    assert digest == example_build.index_digest
    assert {m["digest"] for m in index["manifests"]} == {
        p["image_digest"] for p in example_build.report["platforms"]
    }


@pytest.mark.parametrize("arch", ARCHES)
def test_each_child_has_the_right_config_history_media_types_and_annotations(
    example_build: Built, stage_base_children: dict[str, str], arch: str
) -> None:
    repository = f"{REGISTRY}/{example_build.repository}"
    index = skopeo_raw(f"{repository}:latest")
    (child,) = [m for m in index["manifests"] if m["platform"]["architecture"] == arch]
    manifest = skopeo_raw(f"{repository}@{child['digest']}")
    config = skopeo_raw(f"{repository}@{child['digest']}", config=True)

    assert manifest["mediaType"] == MediaType.OCI_MANIFEST
    assert config["os"] == "linux"
    assert config["architecture"] == arch
    assert config.get("variant") == ("v8" if arch == "arm64" else None)
    layers = manifest["layers"]
    assert {layer["mediaType"] for layer in layers} <= GZIP_LAYER_TYPES
    assert len(config["rootfs"]["diff_ids"]) == len(layers) >= 3
    real_history = [h for h in config["history"] if not h.get("empty_layer")]
    assert len(real_history) == len(layers)
    # The build's two layers come last: dependencies (for this platform's wheels), then code.
    assert "dependencies of api" in real_history[-2]["created_by"]
    assert MACHINE[arch] in real_history[-2]["created_by"]
    assert "api code -> /app" in real_history[-1]["created_by"]
    annotations = manifest["annotations"]
    assert annotations["org.opencontainers.image.base.name"] == BASE_NAME
    assert annotations["org.opencontainers.image.base.digest"] == stage_base_children[arch]
    assert annotations["org.opencontainers.image.title"] == "api"
    # The image runs the service: uvicorn on the base's Python, on the configured port.
    assert config["config"]["Cmd"][0] == IMAGE_PYTHON
    assert config["config"]["Cmd"][1:4] == ["-m", "uvicorn", "app.main:app"]


def test_revision_annotation_names_the_commit(example_build: Built, example: Path) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=example, capture_output=True, text=True, check=True
    ).stdout.strip()
    ref = f"{REGISTRY}/{example_build.repository}"
    for image in example_build.report["platforms"]:
        manifest = skopeo_raw(f"{ref}@{image['image_digest']}")
        assert manifest.get("annotations", {}).get("org.opencontainers.image.revision") == head


def test_layer_diff_ids_match_the_pushed_layers(pushed_copy: Path) -> None:
    images = layout_images(pushed_copy)
    assert set(images) == set(ARCHES)
    for image in images.values():
        diff_ids = image.config["rootfs"]["diff_ids"]
        assert len(diff_ids) == len(image.layers)
        for layer, descriptor, diff_id in zip(
            image.layers, image.manifest["layers"], diff_ids, strict=True
        ):
            data = layer.read_bytes()
            assert len(data) == descriptor["size"]
            assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"]
            assert "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest() == diff_id


@pytest.mark.parametrize("arch", ARCHES)
def test_report_names_each_platforms_own_wheels(example_build: Built, arch: str) -> None:
    report = example_build.platform_report(arch)
    assert report["python_version"] == "3.13"
    assert report["python_platform"].startswith(f"{MACHINE[arch]}-manylinux_")
    wheels = {w["name"]: w for w in report["wheels"]}
    for native in ("numpy", "pillow", "cryptography", "pydantic-core", "orjson"):
        tags = wheels[native]["tags"]
        assert tags, native
        assert all(tag.endswith(f"_{MACHINE[arch]}") for tag in tags), (native, tags)
        assert not wheels[native]["built_from_sdist"]
    assert "pytest" not in wheels  # dev dependencies stay out of images


# -- 2. the images run on their CPU and serve HTTP -------------------------------------------


@pytest.fixture
def running(
    request: pytest.FixtureRequest, example_build: Built, port: int
) -> Iterator[tuple[str, str]]:
    """The example image for ``arch`` running its default command (one container per arch)."""
    arch: str = request.param
    image = example_build.platform_report(arch)["image_digest"]
    reference = f"{REGISTRY}/{example_build.repository}@{image}"
    with detached_container(reference, arch, f"crossdock-it-{RUN_ID}-{arch}") as name:
        yield arch, name


@pytest.mark.docker
@pytest.mark.parametrize("running", ARCHES, indirect=True)
def test_image_serves_http_and_imports_every_native_dependency(
    running: tuple[str, str], port: int
) -> None:
    arch, name = running
    base = f"http://127.0.0.1:{port}"
    assert wait_for_health(name, f"{base}/health", START_TIMEOUT_S[arch]) == {"status": "ok"}
    assert http_json(f"{base}/compute?n=7") == {
        "n": 7,
        "sum_of_squares": 91,
        "machine": MACHINE[arch],
    }
    # In the same container: one QEMU start per platform is what this file can afford.
    completed = subprocess.run(
        ["docker", "exec", name, "python3", "-c", IMPORT_CHECK],
        capture_output=True,
        text=True,
        check=False,
        timeout=START_TIMEOUT_S[arch],
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result == {
        "machine": MACHINE[arch],
        "numpy": 91,
        "pillow": [2, 3],
        "cryptography": SHA256_CROSSDOCK_PREFIX,
        "orjson": '{"a":1}',
        "pydantic_core": 5,
    }


# -- 3. reproducible: same inputs, different cache states, same digest -----------------------


def _layout_build(
    example: Path, env: dict[str, str], layout: Path, *, cache: Path | None, epoch: str | None
) -> Built:
    env = dict(env)
    if cache is not None:
        env["CROSSDOCK_CACHE_DIR"] = str(cache)
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = epoch
    return build_into(env, example, BOTH, layout)


def _dependency_layers_cached(built: Built) -> set[bool]:
    return {
        layer["cached"]
        for platform in built.report["platforms"]
        for layer in platform["layers"]
        if layer["role"] == "dependencies"
    }


def test_same_index_digest_from_a_cold_a_warm_and_a_damaged_cache(
    example: Path, example_build: Built, stage_env: dict[str, str], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cold = _layout_build(example, stage_env, tmp_path / "oci", cache=cache, epoch=None)
    assert _dependency_layers_cached(cold) == {False}  # really built from nothing
    assert cold.index_digest == example_build.index_digest
    assert layout_index_digest(example_build.layout) == example_build.index_digest
    # Not only the index: every blob the two builds wrote is byte for byte the same.
    cold_blobs = sorted(p.name for p in (tmp_path / "oci" / "blobs" / "sha256").iterdir())
    warm_blobs = sorted(p.name for p in (example_build.layout / "blobs" / "sha256").iterdir())
    assert cold_blobs == warm_blobs

    # Warm, for sure this time: the same cache again, its dependency layers reused.
    warm = _layout_build(example, stage_env, tmp_path / "warm", cache=cache, epoch=None)
    assert _dependency_layers_cached(warm) == {True}
    assert warm.index_digest == cold.index_digest

    # A damaged cache: every record fails its checksum, every blob (base layers pulled and
    # layers written) is changed in place with its size unchanged. All of it is detected and
    # rebuilt or fetched again, and the result is the same image.
    records = sorted((cache / "records").rglob("*.rec"))
    assert {p.parent.name for p in records} >= {"base-profile", "base-verified", "deps-layer"}
    for record in records:
        record.write_bytes(record.read_bytes()[:-4] + b"XXXX")
    blobs = sorted(p for p in (cache / "blobs" / "sha256").iterdir() if p.is_file())
    assert len(blobs) >= 4
    for blob in blobs:
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))
    damaged = _layout_build(example, stage_env, tmp_path / "damaged", cache=cache, epoch=None)
    assert _dependency_layers_cached(damaged) == {False}
    assert damaged.index_digest == cold.index_digest
    for blob in blobs:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_source_date_epoch_gives_another_digest_equal_between_cache_states(
    example: Path, example_build: Built, stage_env: dict[str, str], tmp_path: Path
) -> None:
    epoch = "1700000000"
    # The shared cache is warm for this project now (example_build ran in it).
    warm = _layout_build(example, stage_env, tmp_path / "warm", cache=None, epoch=epoch)
    cold = _layout_build(
        example, stage_env, tmp_path / "cold", cache=tmp_path / "cache", epoch=epoch
    )
    assert _dependency_layers_cached(cold) == {False}
    assert warm.index_digest == cold.index_digest
    assert warm.index_digest != example_build.index_digest
    for image in layout_images(tmp_path / "cold").values():
        assert image.config["created"] == "2023-11-14T22:13:20Z"
        with tarfile.open(image.layers[-1], "r:gz") as tar:
            assert {member.mtime for member in tar} == {int(epoch)}


# -- 4. sdists: pure ones are built, native ones refused; the lock is the truth --------------


def test_pure_python_sdist_only_dependency_builds_into_the_image(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    make_service(tmp_path / "project", PROJECTS / "pure-sdist", lock_env=stage_env)
    built = _layout_build(tmp_path / "project", stage_env, tmp_path / "oci", cache=None, epoch=None)
    for arch, image in layout_images(tmp_path / "oci").items():
        wheels = {w["name"]: w for w in built.platform_report(arch)["wheels"]}
        assert wheels["docopt"]["version"] == "0.6.2"
        assert wheels["docopt"]["built_from_sdist"] is True
        assert all(tag.endswith("-none-any") for tag in wheels["docopt"]["tags"])
        assert not wheels["idna"]["built_from_sdist"]
        files = layer_files(image.layers[-2])
        source = files[f"{DEPS_DIR}/docopt.py"][1]
        assert source is not None
        assert b"__version__ = '0.6.2'" in source
        assert any(name.startswith(f"{DEPS_DIR}/docopt-0.6.2.dist-info/") for name in files)


def test_native_sdist_only_dependency_fails_clearly_and_pushes_nothing(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    make_service(tmp_path / "project", PROJECTS / "native-sdist", lock_env=stage_env)
    repository = f"tests-{RUN_ID}/native-sdist"
    run = build_service(
        stage_env,
        tmp_path / "project",
        BOTH,
        "--push",
        f"{REGISTRY}/{repository}:latest",
    )
    assert run.returncode == 4, run.output
    error = run.stderr[run.stderr.index("error:") :]
    assert "mmh3 2.5.1" in error
    assert "linux/arm64/v8" in error or "linux/amd64" in error
    assert "only an sdist" in error
    assert "native code" in error
    # The options: another version, another base, or the buildx backend.
    assert "pin a version of mmh3" in error
    assert "another base image" in error
    assert "buildx" in error
    assert "Traceback" not in run.output
    assert_nothing_pushed(repository)


def test_missing_lock_fails_clearly_and_pushes_nothing(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    service = make_service(tmp_path / "project", PROJECTS / "wheels-only", lock_env=None)
    repository = f"tests-{RUN_ID}/no-lock"
    run = build_arm64_and_push(stage_env, tmp_path / "project", repository)
    assert run.returncode == 3, run.output
    assert f"{service / 'uv.lock'} does not exist" in run.stderr
    assert f"run `uv lock` in {service}" in run.stderr
    assert not (service / "uv.lock").exists()  # crossdock never makes the lock itself
    assert_nothing_pushed(repository)


def test_stale_lock_fails_clearly_and_pushes_nothing(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    service = make_service(tmp_path / "project", PROJECTS / "wheels-only", lock_env=stage_env)
    pyproject = service / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"idna==3.20",', '"idna==3.20", "six",'))
    lock_before = (service / "uv.lock").read_bytes()
    repository = f"tests-{RUN_ID}/stale-lock"
    run = build_arm64_and_push(stage_env, tmp_path / "project", repository)
    assert run.returncode == 3, run.output
    assert f"{service / 'uv.lock'} is out of date with {pyproject}" in run.stderr
    assert f"run `uv lock` in {service}" in run.stderr
    assert (service / "uv.lock").read_bytes() == lock_before  # the lock is left alone
    assert_nothing_pushed(repository)


# -- 5. verification refuses a foreign binary in the service's own code ---------------------


def test_x86_64_extension_in_service_code_fails_verification_for_arm64(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    service = make_service(tmp_path / "project", PROJECTS / "wheels-only", lock_env=stage_env)
    (service / "app").mkdir()
    shutil.copy(VERIFY_DATA / "x86_64-puts.so", service / "app" / "_speedups.so")
    repository = f"tests-{RUN_ID}/foreign-so"
    # crossdock keeps table cells whole off a terminal, so the row names the whole path.
    run = build_arm64_and_push(stage_env, tmp_path / "project", repository)
    assert run.returncode == 6, run.output
    (row,) = [
        line
        for line in run.output.splitlines()
        if "/app/app/_speedups.so" in line and "elf-platform" in line
    ]
    assert "EM_AARCH64" in row
    assert "EM_X86_64" in row
    assert "failed verification; nothing was written or pushed" in run.stderr
    assert_nothing_pushed(repository)


def test_a_base_that_fails_verification_stops_the_build_and_pushes_nothing(
    stage_env: dict[str, str], tmp_path: Path
) -> None:
    """The base's own files are checked on a side thread while the dependencies install: its
    failure still stops the build, names the base and the file, and nothing is pushed."""
    service = make_service(tmp_path / "made", PROJECTS / "wheels-only", lock_env=stage_env)
    (service / "app").mkdir()
    shutil.copy(VERIFY_DATA / "x86_64-puts.so", service / "app" / "_speedups.so")
    # An arm64 image with an x86-64 library, allowed while it is made: the base of the next.
    foreign_base = f"{REGISTRY}/tests-{RUN_ID}/foreign-base:latest"
    made = crossdock(
        stage_env,
        *("build", "-C", str(tmp_path / "made"), "--service", "api"),
        *("--platform", "linux/arm64", "--allow", "elf-platform:*/_speedups.so"),
        # (the project runs uvicorn without depending on it: no matter for a base)
        *("--allow", "startup:*", "--push", foreign_base),
    )
    assert made.returncode == 0, made.output
    make_service(tmp_path / "project", PROJECTS / "wheels-only", lock_env=stage_env)
    repository = f"tests-{RUN_ID}/on-foreign-base"
    run = crossdock(
        stage_env,
        *("build", "-C", str(tmp_path / "project"), "--service", "api"),
        *("--platform", "linux/arm64", "--base", foreign_base),
        *("--push", f"{REGISTRY}/{repository}:latest"),
    )
    assert run.returncode == 6, run.output
    assert "failed verification; nothing was built on it" in run.stderr
    assert "_speedups.so" in run.output
    assert_nothing_pushed(repository)


# -- 6. bytecode for the image's Python -------------------------------------------------------


def _pyc_matches_source(pyc: bytes, source: bytes, source_mtime: int) -> bool:
    """The pyc is valid for this source as the image's Python judges it (PEP 552)."""
    flags = int.from_bytes(pyc[4:8], "little")
    if flags & 0b1:  # hash-based
        return pyc[8:16] == importlib.util.source_hash(source)
    return (
        int.from_bytes(pyc[8:12], "little") == source_mtime
        and int.from_bytes(pyc[12:16], "little") == len(source) & 0xFFFFFFFF
    )


@pytest.mark.parametrize("arch", ARCHES)
def test_bytecode_is_for_the_images_python(example_build: Built, arch: str) -> None:
    image = layout_images(example_build.layout)[arch]
    for layer, top in ((image.layers[-2], DEPS_DIR), (image.layers[-1], APP_DIR)):
        files = layer_files(layer)
        pycs = {name: data for name, (_, data) in files.items() if name.endswith(".pyc")}
        assert any(f"{top}/" in name and "/__pycache__/" in name for name in pycs), top
        assert pycs, top
        for name, data in pycs.items():
            assert data is not None
            assert data[:4] == PYC_MAGIC_313, name
            assert name.endswith(".cpython-313.pyc"), name
            folder, _, file_name = name.rpartition("/__pycache__/")
            source_name = f"{folder}/{file_name.split('.')[0]}.py"
            info, source = files[source_name]
            assert source is not None, source_name
            assert _pyc_matches_source(data, source, int(info.mtime)), name
    app_files = layer_files(image.layers[-1])
    assert f"{APP_DIR}/app/__pycache__/main.cpython-313.pyc" in app_files
    deps_files = layer_files(image.layers[-2])
    assert f"{DEPS_DIR}/numpy/__pycache__/__init__.cpython-313.pyc" in deps_files
    # Console scripts run the image's Python, not the host's.
    uvicorn_script = deps_files[f"{DEPS_DIR}/bin/uvicorn"][1]
    assert uvicorn_script is not None
    assert uvicorn_script.splitlines()[0] == f"#!{IMAGE_PYTHON}".encode()


def test_no_bytecode_gives_an_image_without_pyc(
    example: Path, stage_env: dict[str, str], tmp_path: Path
) -> None:
    run = build_service(
        stage_env,
        example,
        "linux/amd64",
        "--no-bytecode",
        "--oci-layout",
        str(tmp_path / "oci"),
        "--json",
    )
    build_json(run)
    image = layout_images(tmp_path / "oci")["amd64"]
    for layer in image.layers[-2:]:
        names = layer_files(layer)
        assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
        assert any(n.endswith(".py") for n in names)
