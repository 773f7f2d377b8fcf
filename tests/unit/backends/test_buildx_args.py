"""The buildx backend's decisions, checked on the example project's real Dockerfiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdock.backends.buildx_args import BuildxInvocation, builder_driver, render_buildx_args
from crossdock.backends.dockerfile import mirrored_base_args, read_dockerfile, target_for_dockerfile
from crossdock.errors import ConfigError
from crossdock.platform import AMD64, ARM64
from crossdock.registry.reference import Mirrors

BACKEND = Path(__file__).resolve().parents[3] / "example" / "backend"
STAGE_MIRRORS = Mirrors.parse("docker.io=127.0.0.1:5555,public.ecr.aws=127.0.0.1:5555")


@pytest.mark.parametrize(
    ("name", "target", "base"),
    [
        ("Dockerfile.lambda", "lambda", "public.ecr.aws/lambda/python:3.13"),
        ("Dockerfile.apprunner", "apprunner", "python:3.13-slim"),
        ("Dockerfile.eks", "eks", "python:3.13-slim"),
    ],
)
def test_example_dockerfiles_follow_the_seed(name: str, target: str, base: str) -> None:
    path = BACKEND / name
    text = path.read_text()
    facts = read_dockerfile(text)
    assert target_for_dockerfile(path) == target
    # The seed's base name is the default; FROM goes through the argument, for both stages.
    assert facts.base_args == {"BASE_IMAGE": base}
    assert facts.literal_bases == ()
    assert facts.declares_targetplatform
    assert text.count("FROM --platform=$TARGETPLATFORM ${BASE_IMAGE}") == 2
    assert "uv sync --frozen --no-dev" in text
    assert "ARG SERVICE_FOLDER" in text


def test_mirrors_turn_into_base_image_build_args() -> None:
    lambda_facts = read_dockerfile((BACKEND / "Dockerfile.lambda").read_text())
    slim_facts = read_dockerfile((BACKEND / "Dockerfile.eks").read_text())
    assert mirrored_base_args(lambda_facts, STAGE_MIRRORS) == {
        "BASE_IMAGE": "127.0.0.1:5555/lambda/python:3.13"
    }
    assert mirrored_base_args(slim_facts, STAGE_MIRRORS) == {
        "BASE_IMAGE": "127.0.0.1:5555/library/python:3.13-slim"
    }
    # No mirror: the Dockerfile's own default stands, nothing is passed.
    assert mirrored_base_args(lambda_facts, Mirrors({})) == {}


def test_a_literal_from_that_a_mirror_would_change_is_refused_with_the_fix() -> None:
    facts = read_dockerfile(
        "ARG TARGETPLATFORM\n"
        "FROM --platform=$TARGETPLATFORM python:3.13-slim AS builder\n"
        "RUN true\n"
        "FROM builder AS again\n"
        "FROM scratch\n"
    )
    assert facts.literal_bases == ("python:3.13-slim",)
    with pytest.raises(ConfigError) as caught:
        mirrored_base_args(facts, STAGE_MIRRORS)
    assert "ARG BASE_IMAGE" in str(caught.value)
    # Without a mirror for docker.io nothing needs remapping.
    assert mirrored_base_args(facts, Mirrors.parse("public.ecr.aws=127.0.0.1:5555")) == {}


def test_continuation_lines_and_comments() -> None:
    facts = read_dockerfile(
        "# comment FROM nothing\nARG BASE=python:3.13-slim\n"
        "FROM \\\n  --platform=$TARGETPLATFORM \\\n  ${BASE} AS b\n"
    )
    assert facts.base_args == {"BASE": "python:3.13-slim"}
    assert not facts.declares_targetplatform


def test_lambda_arm64_load_arguments() -> None:
    invocation = BuildxInvocation(
        context=BACKEND,
        dockerfile=BACKEND / "Dockerfile.lambda",
        platforms=(ARM64,),
        build_args={
            "SERVICE_FOLDER": "api",
            "BASE_IMAGE": "127.0.0.1:5555/lambda/python:3.13",
            "TARGETPLATFORM": "linux/arm64",
        },
        tags=("crossdock/api:lambda-arm64",),
        output="load",
    )
    assert render_buildx_args(invocation) == [
        "buildx",
        "build",
        "--progress=plain",
        "--platform",
        "linux/arm64",
        "--file",
        str(BACKEND / "Dockerfile.lambda"),
        "--build-arg",
        "BASE_IMAGE=127.0.0.1:5555/lambda/python:3.13",
        "--build-arg",
        "SERVICE_FOLDER=api",
        "--build-arg",
        "TARGETPLATFORM=linux/arm64",
        "--provenance=false",
        "--sbom=false",
        "--network",
        "host",
        "--tag",
        "crossdock/api:lambda-arm64",
        "--load",
        str(BACKEND),
    ]


def test_multi_platform_push_with_a_named_builder_and_attestations() -> None:
    args = render_buildx_args(
        BuildxInvocation(
            context=BACKEND,
            dockerfile=BACKEND / "Dockerfile.eks",
            platforms=(ARM64, AMD64),
            build_args={"SERVICE_FOLDER": "api"},
            tags=("127.0.0.1:5555/demo/api:latest",),
            output="push",
            attestations=True,
            network=None,
            builder="multiarch",
        )
    )
    assert args[args.index("--platform") + 1] == "linux/arm64,linux/amd64"
    assert args[args.index("--builder") + 1] == "multiarch"
    assert "--provenance=false" not in args
    assert "--network" not in args
    assert args[-2:] == ["--push", str(BACKEND)]


def test_builder_driver_from_buildx_inspect() -> None:
    # `docker buildx inspect` on this machine (buildx 0.13.1, dockerd 20.10).
    output = (
        "Name:          default\nDriver:        docker\n"
        "Last Activity: 2026-11-26 22:43:01 +0000 UTC\n"
        "\nNodes:\nName:      default\nEndpoint:  default\nStatus:    running\n"
        "BuildKit:  v0.8+unknown\nPlatforms: linux/amd64, linux/arm64, linux/386\n"
    )
    assert builder_driver(output) == "docker"
    assert builder_driver("Name: x\n") is None
