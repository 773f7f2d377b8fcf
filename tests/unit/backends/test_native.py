"""The native backend, whole, offline: a small synthetic multi-arch base (a Debian-like root with
the platforms' real libc and libstdc++, tests/support/miniimage.py) served by the in-process OCI
registry (tests/support/registry.py, real HTTP on loopback), and a service with no third-party
dependencies locked by real uv. uv runs with UV_OFFLINE=1: a build that needs wheels from an
index (every project with dependencies) is the integration tests' part (test_native_build.py).

Covered here: the base pull (index -> the platform's manifest, config, layers verified by digest
and cached), the base profile (Python and glibc read from the layers), the dependency and code
layers, verification, the image typed like its base, the index, and what a rebuild pulls."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from uv import find_uv_bin

from crossdock.backends.base import BuildOutcome
from crossdock.backends.native import NativeBackend
from crossdock.build import make_plan
from crossdock.cache import CacheLayout
from crossdock.config import load_config
from crossdock.errors import BaseImageError, CrossdockError, VerificationError
from crossdock.image.artifact import ImageSet
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.mediatypes import MediaType
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.progress import NO_PROGRESS
from crossdock.registry.client import RegistryClient
from crossdock.verify import Check, PlatformReport
from tests.support import images
from tests.support.layertar import write_layer
from tests.support.miniimage import base_entries
from tests.support.registry import InProcessRegistry

BASE_REPOSITORY = "library/python"
BASE_ENV = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]


@pytest.fixture(scope="module")
def base_layers(tmp_path_factory: pytest.TempPathFactory) -> dict[Platform, Path]:
    """Each platform's base root as one tar+gzip layer, written once for the module (the real
    libc and libstdc++ make it a few MB)."""
    folder = tmp_path_factory.mktemp("base-layers")
    return {
        platform: write_layer(folder / f"{platform.architecture}.tar.gz", base_entries(platform))
        for platform in (ARM64, AMD64)
    }


@pytest.fixture
def serve_base(
    registry: InProcessRegistry, base_layers: dict[Platform, Path]
) -> Callable[..., ImageSet]:
    """Puts a base image for ``platforms`` (an index over them, typed as ``family``) in the
    registry as BASE_REPOSITORY:3.13-slim."""

    def serve(
        platforms: Sequence[Platform] = (ARM64, AMD64), family: images.Family = images.OCI
    ) -> ImageSet:
        platform_images = tuple(
            images.platform_image(
                platform,
                [images.layer_file(base_layers[platform], family.layer)],
                family=family,
                config={"Env": BASE_ENV, "Cmd": ["python3"]},
            )
            for platform in platforms
        )
        base = ImageSet(platform_images, images.index_over(platform_images))
        registry.put_image_set(BASE_REPOSITORY, base, "3.13-slim")
        return base

    return serve


@pytest.fixture
def project(tmp_path: Path, registry: InProcessRegistry, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A service of two files and no dependencies, locked, whose base is in ``registry``."""
    # uv (a child process: the socket guard does not reach it) must not touch the network.
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_PYTHON", sys.executable)
    service = tmp_path / "backend" / "api"
    (service / "app").mkdir(parents=True)
    (service / "app" / "__init__.py").write_text("")
    (service / "app" / "main.py").write_text("print('hello')\n")
    (service / "pyproject.toml").write_text(
        '[project]\nname = "api"\nversion = "0"\nrequires-python = ">=3.13"\n'
        'dependencies = []\n\n[tool.crossdock]\ncommand = ["python3", "-m", "app.main"]\n'
    )
    subprocess.run(
        [find_uv_bin(), "lock", "--offline", "--quiet"], cwd=service, check=True, timeout=60
    )
    (tmp_path / "crossdock.toml").write_text(
        'platforms = ["linux/arm64", "linux/amd64"]\ntarget = "eks"\n'
        f'base = "{registry.host}/{BASE_REPOSITORY}:3.13-slim"\n'
        f'cache-dir = "{tmp_path / "cache"}"\n'
    )
    return tmp_path


def build(project: Path) -> BuildOutcome:
    plan = make_plan(load_config(project_dir=project, service="api", environ={}))
    backend = NativeBackend(lambda host: RegistryClient(host, environ={}))
    return backend.build(plan, NO_PROGRESS)


def blob_gets(registry: InProcessRegistry, since: int = 0) -> list[str]:
    return [
        seen.path
        for seen in registry.requests[since:]
        if seen.method == "GET" and "/blobs/sha256:" in seen.path
    ]


def layer_names(path: Path) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes()), mode="r:*") as tar:
        return set(tar.getnames())


def test_a_build_puts_its_two_layers_on_the_pulled_base_for_each_platform(
    registry, project, serve_base
):
    base = serve_base()
    outcome = build(project)

    built = outcome.image_set
    assert built.index is not None
    assert [image.platform for image in built.images] == [ARM64, AMD64]
    assert [entry.platform for entry in built.index.manifests] == [ARM64, AMD64]
    for image, report in zip(built.images, outcome.reports, strict=True):
        served = base.image_for(image.platform)
        # The base's layers, byte for byte as served (pulled, verified, cached), then two more.
        assert image.manifest.layers[:1] == served.manifest.layers
        assert image.layers[0].path.read_bytes() == served.layers[0].path.read_bytes()
        assert len(image.layers) == 3
        assert image.config.diff_ids[:1] == served.config.diff_ids
        assert image.manifest.media_type == MediaType.OCI_MANIFEST
        annotations = image.manifest.annotations
        assert annotations["org.opencontainers.image.base.digest"] == str(served.digest)
        assert image.config.platform.architecture == image.platform.architecture
        # The base profile, read from the base's layers.
        assert report.base_digest == served.digest
        assert report.python_version == "3.13"
        assert re.fullmatch(r"2\.\d+", report.glibc_version)
        assert report.verification is not None
        assert report.verification.passed
        # The code layer holds the service's files under the target's app folder.
        code = image.layers[2].path
        assert any(name.endswith("app/main.py") for name in layer_names(code))
        assert image.referrers  # the SBOM of what was installed


def test_a_base_that_fails_verification_is_refused_with_and_without_a_cached_tree(
    registry, project, tmp_path
):
    """The base's own files are checked beside the bytecode compile (once uv's install is done,
    or the installed tree is found in the cache): the check still runs, and still stops the
    build, on both paths."""
    entries = base_entries(ARM64)
    foreign = (Path("/lib/x86_64-linux-gnu") / "libc.so.6").read_bytes()
    entries.append(("usr/lib/aarch64-linux-gnu/libforeign.so", "file", foreign))
    layer = write_layer(tmp_path / "foreign.tar.gz", entries)
    arm64 = images.platform_image(
        ARM64,
        [images.layer_file(layer, images.OCI.layer)],
        config={"Env": BASE_ENV, "Cmd": ["python3"]},
    )
    base = ImageSet((arm64,), images.index_over((arm64,)))
    registry.put_image_set(BASE_REPOSITORY, base, "3.13-slim")
    toml = project / "crossdock.toml"
    toml.write_text(toml.read_text().replace('"linux/arm64", "linux/amd64"', '"linux/arm64"'))
    trees = project / "cache" / "deps"
    for _ in range(2):  # installed now, then found in the cache
        with pytest.raises(VerificationError, match=r"the base image .* failed verification"):
            build(project)
        assert len([tree for tree in trees.iterdir() if not tree.name.startswith(".")]) == 1


def test_a_rebuild_pulls_no_base_layer_again(registry, project, serve_base):
    serve_base()
    first = build(project)
    assert len(blob_gets(registry)) == 4  # two platforms: one config and one layer each

    seen = len(registry.requests)
    again = build(project)  # nothing changed: the record of the last build answers
    assert again.image_set.index == first.image_set.index
    assert blob_gets(registry, seen) == []

    (project / "backend" / "api" / "app" / "main.py").write_text("print('hello, world')\n")
    seen = len(registry.requests)
    changed = build(project)
    assert changed.image_set.index != first.image_set.index
    # The base's configs are read again, its layers come from the cache (by digest).
    layers = {str(b.descriptor.digest) for i in first.image_set.images for b in i.layers[:1]}
    assert not any(path.rsplit("/", 1)[1] in layers for path in blob_gets(registry, seen))


def test_a_base_blob_altered_in_transit_is_refused_and_not_cached(registry, project, serve_base):
    base = serve_base()
    registry.quirks.bad_blob_bodies = "altered"  # the right size, one byte changed
    with pytest.raises(CrossdockError, match=r"does not match its (digest|descriptor)"):
        build(project)
    cached = project / "cache" / "blobs" / "sha256"
    for image in base.images:
        for digest in (image.config.digest, *(blob.descriptor.digest for blob in image.layers)):
            assert not (cached / digest.hex).exists()


def test_a_base_without_one_of_the_platforms_is_refused_naming_what_it_has(
    registry, project, serve_base
):
    serve_base(platforms=(ARM64,))
    with pytest.raises(BaseImageError, match=r"has no linux/amd64 image \(it has: linux/arm64"):
        build(project)


def test_a_docker_typed_base_gives_docker_typed_images_and_a_manifest_list(
    registry, project, serve_base
):
    serve_base(family=images.DOCKER)
    built = build(project).image_set
    assert built.index is not None
    assert built.index.media_type == MediaType.DOCKER_MANIFEST_LIST
    for image in built.images:
        assert image.manifest.media_type == MediaType.DOCKER_MANIFEST
        assert image.manifest.config.media_type == MediaType.DOCKER_CONFIG
        assert {d.media_type for d in image.manifest.layers} == {MediaType.DOCKER_LAYER_GZIP}


def _app_main(outcome: BuildOutcome) -> set[bytes]:
    """The bytes of app/main.py in each platform's code layer."""
    found = set()
    for image in outcome.image_set.images:
        with tarfile.open(image.layers[2].path, "r:gz") as tar:
            [member] = [m for m in tar.getmembers() if m.name.endswith("app/main.py")]
            data = tar.extractfile(member)
            assert data is not None
            found.add(data.read())
    return found


def test_a_service_file_changed_while_the_build_reads_it_leaves_no_record_of_the_build(
    registry, project, serve_base, monkeypatch
):
    """The record of a build is keyed by the service's files as they were when the build began;
    a file saved while it runs (an editor, a git checkout) is in the image as it was when the
    code layer read it. Recorded under the key of the files it began with, the build answered
    a later build of those files (the edit undone) with the image of the edited ones."""
    serve_base()
    main = project / "backend" / "api" / "app" / "main.py"
    real_app_layer = NativeBackend._app_layer
    # Each platform's thread makes its code layer: the file is saved once, by the first, and
    # the other waits for the save to end (a write truncates first: a read meanwhile is empty).
    saving = threading.Lock()
    saved: list[bool] = []

    def saved_meanwhile(self, *args, **kwargs):
        with saving:
            if not saved:
                main.write_text("print('edited')\n")  # after the key was made, before the read
                saved.append(True)
        return real_app_layer(self, *args, **kwargs)

    monkeypatch.setattr(NativeBackend, "_app_layer", saved_meanwhile)
    edited = build(project)
    assert _app_main(edited) == {b"print('edited')\n"}
    monkeypatch.setattr(NativeBackend, "_app_layer", real_app_layer)
    main.write_text("print('hello')\n")  # the edit undone: the files the first build began with
    again = build(project)
    assert _app_main(again) == {b"print('hello')\n"}
    # Not vacuous: a build whose files did not change meanwhile is recorded and answered.
    assert build(project).image_set.index == again.image_set.index
    assert all(layer.cached for report in build(project).reports for layer in report.layers)


def _poison_dependency_layer_records(project: Path) -> Digest:
    """Give every deps-layer record a wrong diff_id, its checksum made anew as a tamperer would
    (through the Records API); the wrong diff_id."""
    records = CacheLayout(project / "cache").records("deps-layer", version=1)
    poison = sha256_of(b"not the dependency layer")
    keys = [path.stem for path in records.folder.glob("*.rec")]
    assert len(keys) == 2  # one per platform
    for key in keys:
        meta = records.load(key, dict)
        assert meta is not None
        assert records.store(key, {**meta, "diff_id": str(poison)})
    # A code change: the build runs (no record of the last build answers), and looks for its
    # dependency layer's record.
    (project / "backend" / "api" / "app" / "main.py").write_text("print('changed')\n")
    return poison


def test_a_dependency_layer_record_naming_a_wrong_diff_id_is_not_used(
    registry, project, serve_base
):
    """The record of a dependency layer names its blob (checked by digest on use) and its
    diff_id, which goes into the image config as it is. A record whose diff_id is not the one
    recorded for its blob's bytes (when crossdock wrote the layer) is damage: the layer is
    written again, and the image names its true diff_id."""
    serve_base()
    first = build(project)
    poison = _poison_dependency_layer_records(project)
    rebuilt = build(project)
    assert not any(la.cached for r in rebuilt.reports for la in r.layers if la.role != "app")
    for before, after in zip(first.image_set.images, rebuilt.image_set.images, strict=True):
        assert after.layers[1].descriptor.digest == before.layers[1].descriptor.digest
        assert after.config.diff_ids[1] == before.config.diff_ids[1] != poison


def test_a_wrong_diff_id_in_a_dependency_layer_record_fails_the_builds_verification(
    registry, project, serve_base
):
    """Without the fact the record's diff_id could be checked against (its record gone), the
    record is used, and the build's verification hashes the layer and refuses the image: it is
    never reported as verified."""
    serve_base()
    first = build(project)
    poison = _poison_dependency_layer_records(project)
    shutil.rmtree(project / "cache" / "records" / "layer-diff-id", ignore_errors=True)
    with pytest.raises(VerificationError, match=r"api for linux/\S+ failed verification") as err:
        build(project)
    report = err.value.report
    assert isinstance(report, PlatformReport)
    deps = {str(image.layers[1].descriptor.digest) for image in first.image_set.images}
    (finding,) = report.failures
    assert finding.check == Check.DIFF_ID
    assert finding.file.layer_index == 1 and finding.file.layer_digest in deps
    assert str(poison) in finding.found
