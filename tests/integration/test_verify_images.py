"""crossdock verify on real images: the stage's multi-arch python:3.13-slim, plus layers made
here from real wheels downloaded from PyPI by uv, for each way an image goes wrong (issue 4).

Needs the stage (`stage/stage.sh up`, CROSSDOCK_STAGE_REGISTRY) and PyPI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from uv import find_uv_bin

from crossdock.errors import ConfigError, NotFoundError, UnsafeContentError
from crossdock.image.artifact import PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.rootfs.baseprofile import read_base_profile
from crossdock.sources import open_images
from crossdock.sources.docker_archive import read_docker_archive
from crossdock.sources.oci_layout import read_oci_layout
from crossdock.verify import Check, verify_image
from tests.support.images import with_layer_files
from tests.support.layertar import other_python_pyc, write_layer
from tests.support.prerequisites import missing

pytestmark = pytest.mark.integration

SITE = "usr/local/lib/python3.13/dist-packages"
NUMPY = "numpy==2.3.5"


@pytest.fixture(scope="module")
def stage_ref() -> str:
    registry = os.environ.get("CROSSDOCK_STAGE_REGISTRY")
    if not registry:
        missing("CROSSDOCK_STAGE_REGISTRY is not set: run `stage/stage.sh up` and its env")
    return f"{registry}/library/python:3.13-slim"


@pytest.fixture(scope="module")
def bases(stage_ref, tmp_path_factory) -> dict[Platform, PlatformImage]:
    cache = Path(os.environ.get("CROSSDOCK_CACHE_DIR") or tmp_path_factory.mktemp("cache"))
    with open_images(stage_ref, cache_dir=cache) as image_sets:
        return {image.platform: image for found in image_sets for image in found.images}


def _paths(image: PlatformImage) -> list[Path]:
    return [blob.path for blob in image.layers]


def _uv_target(tmp: Path, python_platform: str, python_version: str, *packages: str) -> Path:
    target = tmp / f"{python_platform}-{python_version}"
    if not target.exists():
        subprocess.run(
            [
                find_uv_bin(),
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--python-platform",
                python_platform,
                "--python-version",
                python_version,
                "--target",
                str(target),
                *packages,
            ],
            check=True,
        )
    return target


def _tree_layer(tree: Path, prefix: str, dest: Path) -> Path:
    entries = [
        (f"{prefix}/{path.relative_to(tree)}", "file", path.read_bytes())
        for path in sorted(tree.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    return write_layer(dest, entries)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wheels")


def _image(base: PlatformImage, *layers: Path, config: ImageConfig | None = None):
    """The config (the base's, naming ``layers`` too) and layer files of ``base`` + ``layers``."""
    return with_layer_files(config or base.config, layers), [*_paths(base), *layers]


@pytest.mark.parametrize("platform", [AMD64, ARM64], ids=str)
def test_stage_base_profile(bases, platform):
    base = bases[platform]
    profile = read_base_profile(
        base.config, _paths(base), [blob.descriptor.digest for blob in base.layers]
    )
    assert profile.platform.architecture == platform.architecture
    assert profile.python_version == "3.13"
    assert profile.python_path == "/usr/bin/python3.13"
    assert profile.python_stdlib == "/usr/lib/python3.13"
    assert profile.glibc_version == "2.41"  # Debian trixie
    assert profile.glibcxx is not None


@pytest.mark.parametrize(
    ("platform", "uv_platform"),
    [(AMD64, "x86_64-manylinux_2_28"), (ARM64, "aarch64-manylinux_2_28")],
    ids=str,
)
def test_a_correct_image_passes(bases, wheels, tmp_path, platform, uv_platform):
    tree = _uv_target(wheels, uv_platform, "3.13", NUMPY)
    config, layers = _image(bases[platform], _tree_layer(tree, SITE, tmp_path / "deps.tar.gz"))
    base_layers = len(_paths(bases[platform]))
    report = verify_image(config, layers, declared_platform=platform)
    assert report.passed, report.failures
    assert report.counts["extension"] > 47  # numpy's own modules were checked
    assert report.counts["wheel"] >= 4
    # The build's way: the base is trusted, only new layers are read (with the base's profile).
    profile = read_base_profile(bases[platform].config, _paths(bases[platform]))
    fast = verify_image(config, layers, profile=profile, first_layer=base_layers)
    assert fast.passed, fast.failures
    assert 0 < fast.counts["elf"] < report.counts["elf"]


def test_amd64_binaries_in_an_arm64_image(bases, wheels, tmp_path):
    tree = _uv_target(wheels, "x86_64-manylinux_2_28", "3.13", NUMPY)
    config, layers = _image(bases[ARM64], _tree_layer(tree, SITE, tmp_path / "deps.tar.gz"))
    report = verify_image(config, layers)
    checks = {f.check for f in report.failures}
    assert {Check.ELF_PLATFORM, Check.EXTENSION_SUFFIX, Check.WHEEL_PLATFORM} <= checks
    named = {f.file.path for f in report.failures if f.check is Check.ELF_PLATFORM}
    assert any(p.endswith("_multiarray_umath.cpython-313-x86_64-linux-gnu.so") for p in named)
    assert all(f.file.layer_index == len(layers) - 1 for f in report.failures)


def test_image_labelled_arm64_whose_binaries_are_amd64(bases):
    # What a mislabelled buildx result looks like: amd64 layers under an arm64 config.
    arm_config = bases[ARM64].config
    report = verify_image(arm_config, _paths(bases[AMD64]))
    entry = [f for f in report.failures if f.check is Check.ENTRYPOINT]
    assert len(entry) == 1
    assert entry[0].file.path == "/usr/bin/python3.13"
    assert "EM_X86_64" in entry[0].found
    assert report.counts["elf"] == sum(f.check is Check.ELF_PLATFORM for f in report.failures)


def test_wheel_needing_newer_glibc_than_the_base(bases, wheels, tmp_path):
    tree = _uv_target(wheels, "aarch64-manylinux_2_28", "3.13", NUMPY)
    config, layers = _image(bases[ARM64], _tree_layer(tree, SITE, tmp_path / "deps.tar.gz"))
    real = read_base_profile(bases[ARM64].config, _paths(bases[ARM64]))
    old_base = replace(real, glibc_version="2.17")  # a CentOS 7-era base
    report = verify_image(config, layers, profile=old_base, first_layer=len(_paths(bases[ARM64])))
    glibc = [f for f in report.failures if f.check is Check.GLIBC]
    assert glibc, report.failures
    assert report.glibc.required_by in {f.file.path for f in glibc}
    assert tuple(int(x) for x in report.glibc.required.split(".")) > (2, 17)  # type: ignore[union-attr]
    assert any(f.check is Check.WHEEL_GLIBC for f in report.failures)


def test_cp312_extension_in_a_313_image(bases, wheels, tmp_path):
    tree = _uv_target(wheels, "aarch64-manylinux_2_28", "3.12", NUMPY)
    config, layers = _image(bases[ARM64], _tree_layer(tree, SITE, tmp_path / "deps.tar.gz"))
    report = verify_image(config, layers)
    suffix = [f for f in report.failures if f.check is Check.EXTENSION_SUFFIX]
    assert suffix and all(f.found == "cpython-312" for f in suffix)
    assert any(f.check is Check.WHEEL_PYTHON for f in report.failures)
    assert not any(f.check is Check.ELF_PLATFORM for f in report.failures)


def test_macos_extension_and_host_bytecode(bases, wheels, tmp_path):
    tree = _uv_target(wheels, "aarch64-apple-darwin", "3.13", "markupsafe==3.0.2")
    app = write_layer(
        tmp_path / "app.tar.gz", [("app/handler.pyc", "file", other_python_pyc(tmp_path))]
    )
    config, layers = _image(bases[ARM64], _tree_layer(tree, SITE, tmp_path / "deps.tar.gz"), app)
    report = verify_image(config, layers)
    foreign = [f for f in report.failures if f.check is Check.FOREIGN_BINARY]
    assert [Path(f.file.path).name for f in foreign] == ["_speedups.cpython-313-darwin.so"]
    assert "Mach-O" in foreign[0].found
    pyc = [f for f in report.failures if f.check is Check.PYC_MAGIC]
    assert [f.file.path for f in pyc] == ["/app/handler.pyc"]


@pytest.fixture(scope="module")
def skopeo() -> str:
    exe = shutil.which("skopeo")
    if exe is None:
        missing("skopeo is not installed")
    return exe


def test_oci_layout_source_verifies_digests(stage_ref, skopeo, tmp_path):
    layout = tmp_path / "layout"
    subprocess.run(
        [
            skopeo,
            "copy",
            "--quiet",
            "--all",
            "--src-tls-verify=false",
            f"docker://{stage_ref}",
            f"oci:{layout}",
        ],
        check=True,
    )
    images = [image for found in read_oci_layout(layout) for image in found.images]
    assert sorted(str(i.platform) for i in images) == ["linux/amd64", "linux/arm64/v8"]
    arm = [i for found in read_oci_layout(layout, platforms=[ARM64]) for i in found.images]
    assert len(arm) == 1
    report = verify_image(arm[0].config, _paths(arm[0]), declared_platform=ARM64)
    assert report.passed and report.python_version == "3.13"
    # One flipped byte in a layer blob is refused before anything is read from it.
    blob = _paths(arm[0])[-1]
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(UnsafeContentError, match="does not match"):
        read_oci_layout(layout, platforms=[ARM64])


def test_docker_save_tarball_source(stage_ref, skopeo, tmp_path):
    archive = tmp_path / "image.tar"
    subprocess.run(
        [
            skopeo,
            "copy",
            "--quiet",
            "--override-arch",
            "arm64",
            "--src-tls-verify=false",
            f"docker://{stage_ref}",
            f"docker-archive:{archive}:example/api:arm64",
        ],
        check=True,
    )
    images = read_docker_archive(archive, tmp_path / "work").images
    assert len(images) == 1
    report = verify_image(images[0].config, _paths(images[0]))
    assert report.passed, report.failures
    assert report.platform.startswith("linux/arm64")
    with (
        pytest.raises(NotFoundError, match="has no image for linux/amd64"),
        open_images(str(archive), platforms=[AMD64]),
    ):
        pass


# ----- image names as skopeo spells them (the `crossdock verify` command line) -----

CROSSDOCK = str(Path(sys.executable).parent / "crossdock")


def _verify_cli(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CROSSDOCK, "verify", name, "--json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _verified_platforms(run: subprocess.CompletedProcess[str]) -> list[str]:
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["passed"]
    return sorted(report["platform"] for report in result["platforms"])


def test_verify_cli_reads_oci_and_oci_archive_names(stage_ref, skopeo, tmp_path):
    layout, archive = tmp_path / "layout", tmp_path / "image.oci.tar"
    for dest in (f"oci:{layout}:base", f"oci-archive:{archive}:base"):
        subprocess.run(
            [skopeo, "copy", "--quiet", "--all", "--src-tls-verify=false",
             f"docker://{stage_ref}", dest],
            check=True,
        )  # fmt: skip
    both = ["linux/amd64", "linux/arm64/v8"]
    assert _verified_platforms(_verify_cli(f"oci:{layout}")) == both
    assert _verified_platforms(_verify_cli(f"oci:{layout}:base")) == both
    assert _verified_platforms(_verify_cli(f"oci-archive:{archive}")) == both
    missing_tag = _verify_cli(f"oci:{layout}:nope")
    assert missing_tag.returncode == NotFoundError.exit_code
    assert "no image with that tag" in missing_tag.stderr and "base" in missing_tag.stderr


def test_verify_cli_reads_the_docker_daemon(stage_ref):
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "info"], check=False, capture_output=True).returncode
    ):
        missing("dockerd does not answer: run `stage/stage.sh docker`")
    subprocess.run([docker, "pull", "--quiet", stage_ref], check=True, capture_output=True)
    run = _verify_cli(f"docker-daemon:{stage_ref}")
    assert _verified_platforms(run) == ["linux/amd64"]  # the daemon holds the host's platform
    unknown = _verify_cli(f"docker-daemon:crossdock-none-{uuid.uuid4().hex[:8]}:latest")
    assert unknown.returncode == NotFoundError.exit_code
    assert "docker daemon has no such image" in unknown.stderr


@pytest.mark.parametrize("name", ["oci:/nonexistent/crossdock-layout", "ocii:/tmp/x", "dir:/x"])
def test_verify_cli_never_reads_a_transport_as_a_registry(name):
    run = _verify_cli(name)
    assert run.returncode in (ConfigError.exit_code, NotFoundError.exit_code)
    assert len(run.stderr.strip().splitlines()) <= 2  # one error line and its hint
    assert "retry" not in run.stderr and "Traceback" not in run.stderr


def test_verify_cli_refuses_a_pushed_image_whose_config_names_a_wrong_diff_id(stage_ref, tmp_path):
    """An image whose config names, for its app layer, the compressed blob's digest instead of
    its uncompressed one: containerd and docker refuse to unpack that layer, so the image
    cannot run. `crossdock verify` of it in the stage registry fails in one line (the platform
    above it), with the exit code of a failed verification and no traceback; the same image
    with the true diff_id passes."""
    from crossdock.errors import VerificationError
    from crossdock.image.artifact import ImageSet
    from crossdock.image.mutate import with_config
    from crossdock.registry.client import RegistryClient
    from crossdock.registry.reference import Reference
    from crossdock.sinks import push_image_set
    from tests.support import images
    from tests.support.miniimage import base_entries

    blobs = tmp_path / "blobs"
    good = images.platform_image(
        AMD64,
        [
            images.layer(blobs, base_entries(AMD64)),
            images.layer(blobs, {"app/main.py": b"print('hello')\n"}),
        ],
        config={"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["python3"]},
    )
    app = good.layers[1].descriptor.digest
    data = dict(good.config.data)
    data["rootfs"] = {"type": "layers", "diff_ids": [str(good.config.diff_ids[0]), str(app)]}
    wrong = with_config(good, ImageConfig.from_data(data))
    host = stage_ref.split("/", 1)[0]
    name = f"{host}/crossdock-test/wrong-layer-{uuid.uuid4().hex[:12]}"
    repository = Reference.parse(name)
    with RegistryClient(host) as client:
        push_image_set(client, ImageSet((good,), None), repository, {"good": good.digest})
        push_image_set(client, ImageSet((wrong,), None), repository, {"wrong": wrong.digest})

    passed = _verify_text(f"{name}:good")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    failed = _verify_text(f"{name}:wrong")
    assert failed.returncode == VerificationError.exit_code, failed.stdout + failed.stderr
    output = failed.stdout + failed.stderr
    assert "Traceback" not in output
    assert "FAIL linux/amd64" in output
    (line,) = [row for row in output.splitlines() if "diff-id" in row]
    assert "(layer 1)" in line
    assert str(app) in line and str(good.config.diff_ids[1]) in line


def _verify_text(name: str) -> subprocess.CompletedProcess[str]:
    """``crossdock verify NAME`` as people run it (the report for people, no colours)."""
    return subprocess.run(
        [CROSSDOCK, "verify", name],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "80"},
    )
