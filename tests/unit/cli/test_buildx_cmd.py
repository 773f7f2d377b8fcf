"""Where ``build --backend buildx`` has buildx leave its result: a release stages its pushes in
the release's repository (the release writes the real tags), anything else, a dry run too, loads
into docker under the names the seed's Makefile retags."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdock.backends.buildx import DockerStore, StagingRepository
from crossdock.cli.buildx_cmd import buildx_backend
from crossdock.config import load_config
from crossdock.errors import ConfigError
from crossdock.platform import AMD64
from crossdock.publish.pipeline import Publishing
from crossdock.publish.release import ReleaseRequest
from crossdock.registry.reference import Reference

EXAMPLE = Path(__file__).resolve().parents[3] / "example"
REPO = Reference.parse("127.0.0.1:5555/team/api", default_tag=None)


def _backend(publishing: Publishing | None, tag: str = "lambda"):
    config = load_config(project_dir=EXAMPLE, service="api", environ={})
    dockerfile = EXAMPLE / "backend" / "Dockerfile.lambda"
    return buildx_backend(config, dockerfile, publishing, tag=tag, allow=())


def test_a_release_stages_in_its_repository() -> None:
    backend = _backend(Publishing(ReleaseRequest(REPO, "dev")))
    assert backend.output == StagingRepository(REPO)


def test_a_dry_run_and_a_local_build_load_into_docker_as_the_makefile_expects() -> None:
    for publishing in (Publishing(ReleaseRequest(REPO, "dev"), dry_run=True), None):
        backend = _backend(publishing)
        assert backend.output == DockerStore("lambda")
        # make docker-build retags crossdock/$(SERVICE):$(TARGET)-$(ARCH)
        assert backend.output.name("api", AMD64) == "crossdock/api:lambda-amd64"


def test_a_bad_local_tag_is_refused_before_docker_runs() -> None:
    with pytest.raises(ConfigError):
        _backend(None, tag="no spaces allowed")
