"""crossdock as a library: the example built and released from Python, without the CLI.

The base comes from the stage registry (127.0.0.1:5555, through registry-mirrors); the release
goes to an in-process registry (tests/support/registry.py), so the test reads back exactly what
the release wrote: the index under the plain tag, each platform's manifest under TAG-ARCH, the
same bytes the build made.

Needs `stage/stage.sh up`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from uv import find_uv_bin

from crossdock import AMD64, ARM64, NativeBackend, load_config, make_plan, prepare_release, release
from crossdock.build import build
from crossdock.cache import CacheLayout
from crossdock.image.manifest import Index
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Reference
from tests.support.cachelock import prune_would_wait
from tests.support.registry import InProcessRegistry

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "example"
STAGE = os.environ.get("CROSSDOCK_STAGE_REGISTRY", "127.0.0.1:5555")


@pytest.fixture
def example(tmp_path: Path, host_python: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A locked copy of the example project (uv.lock is not committed)."""
    monkeypatch.setenv("UV_PYTHON", host_python)
    root = tmp_path / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__"))
    subprocess.run([find_uv_bin(), "lock", "--quiet"], cwd=root / "backend" / "api", check=True)
    return root


def test_build_and_release_from_python_without_the_cli(example: Path, tmp_path: Path) -> None:
    environ = {"CROSSDOCK_REGISTRY_MIRRORS": f"docker.io={STAGE},public.ecr.aws={STAGE}"}
    config = load_config(
        project_dir=example,
        service="api",
        overrides={"platforms": "linux/arm64,linux/amd64", "cache-dir": str(tmp_path / "cache")},
        environ=environ,
    )
    messages: list[str] = []
    with InProcessRegistry() as registry:
        config, publishing = prepare_release(config, to=f"{registry.host}/team/api:1.0")
        assert publishing is not None
        # As the README does: the cache held in use from the build to the push (a prune meanwhile
        # waits instead of removing the layers the release reads).
        with CacheLayout(config.cache_dir).in_use():
            outcome = build(make_plan(config), NativeBackend(), lambda _p, m: messages.append(m))
            assert outcome.image_set.index is not None
            result = release(publishing, outcome.image_set, checked=True)
            assert prune_would_wait(config.cache_dir)
        assert not prune_would_wait(config.cache_dir)

        assert result.report is not None
        index = outcome.image_set.index
        arm = outcome.image_set.image_for(ARM64)
        amd = outcome.image_set.image_for(AMD64)
        assert {t.tag: t.digest for t in result.plan.tags} == {
            "1.0": index.digest,
            "1.0-arm64": arm.digest,
            "1.0-amd64": amd.digest,
        }
        # What the registry now serves under each tag is the build's own bytes.
        with RegistryClient(registry.host) as client:
            repository = Reference.parse(f"{registry.host}/team/api")
            served = client.get_manifest(repository.with_tag("1.0"))
            assert isinstance(served, Index)
            assert served.raw == index.raw
            for tag, image in (("1.0-arm64", arm), ("1.0-amd64", amd)):
                pulled = client.get_manifest(repository.with_tag(tag))
                assert pulled.digest == image.digest and pulled.raw == image.manifest.raw
        for blob in outcome.image_set.blobs():
            assert str(blob.descriptor.digest) in registry.blobs
