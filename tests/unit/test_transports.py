"""Image names as skopeo spells them (crossdock.transports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdock.errors import ConfigError
from crossdock.registry.reference import Reference
from crossdock.transports import (
    DockerArchive,
    DockerDaemon,
    OciArchive,
    OciLayout,
    Registry,
    parse_image_name,
    registry_image,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker://127.0.0.1:5555/demo/api:v1", "127.0.0.1:5555/demo/api:v1"),
        ("docker://python:3.13-slim", "docker.io/library/python:3.13-slim"),
        ("docker://ghcr.io/org/x@sha256:" + "a" * 64, "ghcr.io/org/x@sha256:" + "a" * 64),
        # bare references, as before transports existed
        ("python:3.13-slim", "docker.io/library/python:3.13-slim"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("registry.corp:5000/team/x:1", "registry.corp:5000/team/x:1"),
        ("127.0.0.1:5555/demo/api:latest", "127.0.0.1:5555/demo/api:latest"),
        ("public.ecr.aws/lambda/python:3.13", "public.ecr.aws/lambda/python:3.13"),
    ],
)
def test_registry_references(text, expected):
    name = parse_image_name(text)
    assert isinstance(name, Registry)
    assert str(name.reference) == expected


def test_oci_layout_with_and_without_tag():
    assert parse_image_name("oci:/srv/out") == OciLayout(Path("/srv/out"))
    assert parse_image_name("oci:/srv/out:v1") == OciLayout(Path("/srv/out"), "v1")
    assert parse_image_name("oci:relative/dir:latest-arm64") == OciLayout(
        Path("relative/dir"), "latest-arm64"
    )
    assert str(OciLayout(Path("/x"), "t")) == "oci:/x:t"


def test_archives_and_daemon():
    assert parse_image_name("oci-archive:/srv/a.tar") == OciArchive(Path("/srv/a.tar"))
    assert parse_image_name("oci-archive:a.tar:v2") == OciArchive(Path("a.tar"), "v2")
    # skopeo's docker-archive reference is a docker name with its own colon
    assert parse_image_name("docker-archive:/srv/i.tar:example/api:arm64") == DockerArchive(
        Path("/srv/i.tar"), "example/api:arm64"
    )
    assert parse_image_name("docker-archive:i.tar") == DockerArchive(Path("i.tar"))
    assert parse_image_name("docker-daemon:example/api:latest") == DockerDaemon(
        "example/api:latest"
    )


def test_bare_existing_paths(tmp_path):
    (tmp_path / "layout").mkdir()
    (tmp_path / "image.tar").write_bytes(b"")
    assert parse_image_name(str(tmp_path / "layout")) == OciLayout(tmp_path / "layout")
    assert parse_image_name(str(tmp_path / "image.tar")) == DockerArchive(tmp_path / "image.tar")
    with pytest.raises(ConfigError, match="does not exist"):
        parse_image_name(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "text",
    [
        "dir:/tmp/x",  # skopeo's, not ours
        "docker:python:3.13",  # docker: without //
        "containers-storage:x",
        "https://registry.example/x",
        "ocii:/tmp/x",  # a typo of oci:
        "oci-layout:/tmp/x",
        "foo:bar/baz",  # neither name:tag nor host:port/repo
    ],
)
def test_what_looks_like_a_transport_is_an_error(text):
    with pytest.raises(ConfigError) as err:
        parse_image_name(text)
    assert "oci:DIR" in (err.value.hint or "") or "transport" in str(err.value)


@pytest.mark.parametrize(
    "text", ["", "oci:", "docker-daemon:", "docker://", "oci:/tmp/x:bad tag", "oci-archive::t"]
)
def test_incomplete_names(text):
    with pytest.raises(ConfigError):
        parse_image_name(text)


def test_a_reference_never_names_a_registry_without_a_numeric_port():
    # Before transports, "oci:/tmp/x" became registry "oci:" and a DNS lookup with retries.
    with pytest.raises(ConfigError, match="not HOST:PORT"):
        Reference.parse("oci:/tmp/x")
    assert Reference.parse("[::1]:5000/x").registry == "[::1]:5000"


def test_registry_only_commands_take_docker_names_and_refuse_the_others():
    assert str(registry_image("docker://127.0.0.1:5555/a/b:1")) == "127.0.0.1:5555/a/b:1"
    assert str(registry_image("python:3.13-slim")) == "docker.io/library/python:3.13-slim"
    with pytest.raises(ConfigError, match="a registry image, not oci:"):
        registry_image("oci:/srv/layout")
