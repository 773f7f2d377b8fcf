import pytest

from crossdock.errors import ConfigError
from crossdock.image.digest import Digest
from crossdock.registry.reference import Mirrors, Reference, is_loopback_registry

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("python:3.13-slim", "docker.io", "library/python", "3.13-slim", None),
        ("python", "docker.io", "library/python", "latest", None),
        ("index.docker.io/user/app", "docker.io", "user/app", "latest", None),
        ("127.0.0.1:5555/library/python:3.13", "127.0.0.1:5555", "library/python", "3.13", None),
        ("localhost/app", "localhost", "app", "latest", None),
        (f"ghcr.io/o/r@{DIGEST}", "ghcr.io", "o/r", None, DIGEST),
        (f"ghcr.io/o/r:v1@{DIGEST}", "ghcr.io", "o/r", "v1", DIGEST),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/backend/api:prod-latest",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "backend/api",
            "prod-latest",
            None,
        ),
    ],
)
def test_reference_parsing(text, registry, repository, tag, digest):
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)
    assert ref.digest == (Digest(digest) if digest else None)
    assert ref.identifier == (digest or tag)


@pytest.mark.parametrize("text", ["UPPER/case", "a//b", "host:5000/", "app:bad tag", "x@sha256:12"])
def test_bad_references_are_refused(text):
    with pytest.raises(ConfigError):
        Reference.parse(text)


def test_mirrors_keep_the_repository_path_and_add_a_prefix():
    mirrors = Mirrors.parse("docker.io=127.0.0.1:5555, public.ecr.aws=mirror.corp/ecr")
    assert str(mirrors.apply(Reference.parse("python:3.13-slim"))) == (
        "127.0.0.1:5555/library/python:3.13-slim"
    )
    assert str(mirrors.apply(Reference.parse("public.ecr.aws/lambda/python:3.13"))) == (
        "mirror.corp/ecr/lambda/python:3.13"
    )
    untouched = Reference.parse("ghcr.io/o/r:1")
    assert mirrors.apply(untouched) == untouched
    with pytest.raises(ConfigError):
        Mirrors.parse("docker.io")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5555", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("10.0.0.1:5000", False),
        ("ghcr.io", False),
        ("localhost.evil.com", False),
    ],
)
def test_loopback_detection(host, loopback):
    assert is_loopback_registry(host) is loopback


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag"),
    [
        ("python:3.13-slim", "docker.io", "library/python", "3.13-slim"),
        ("python", "docker.io", "library/python", "latest"),
        ("index.docker.io/library/python:3", "docker.io", "library/python", "3"),
        ("public.ecr.aws/lambda/python:3.13", "public.ecr.aws", "lambda/python", "3.13"),
        (
            "127.0.0.1:5555/library/python:3.13-slim",
            "127.0.0.1:5555",
            "library/python",
            "3.13-slim",
        ),
        ("localhost/app", "localhost", "app", "latest"),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:dev-latest",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "team/api",
            "dev-latest",
        ),
    ],
)
def test_parse(text, registry, repository, tag):
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)


def test_parse_digest_and_identifier():
    digest = "sha256:" + "b" * 64
    ref = Reference.parse(f"127.0.0.1:5555/app@{digest}")
    assert ref.tag is None
    assert ref.identifier == digest
    assert str(ref) == f"127.0.0.1:5555/app@{digest}"


@pytest.mark.parametrize("text", ["UPPER/case", "a//b", "app:bad tag", "app@sha256:nothex"])
def test_parse_refuses_bad_references(text):
    with pytest.raises(ConfigError):
        Reference.parse(text)


def test_mirrors_keep_the_repository_path():
    mirrors = Mirrors.parse("docker.io=127.0.0.1:5555, public.ecr.aws=127.0.0.1:5555")
    assert str(mirrors.apply(Reference.parse("python:3.13-slim"))) == (
        "127.0.0.1:5555/library/python:3.13-slim"
    )
    assert str(mirrors.apply(Reference.parse("public.ecr.aws/lambda/python:3.13"))) == (
        "127.0.0.1:5555/lambda/python:3.13"
    )
    untouched = Reference.parse("ghcr.io/org/app:1")
    assert mirrors.apply(untouched) == untouched


def test_mirror_with_path_prefix():
    mirrors = Mirrors.parse("index.docker.io=mirror.corp.example/hub")
    assert str(mirrors.apply(Reference.parse("python:3.13"))) == (
        "mirror.corp.example/hub/library/python:3.13"
    )


@pytest.mark.parametrize("text", ["docker.io", "=x", "docker.io="])
def test_mirrors_refuse_malformed(text):
    with pytest.raises(ConfigError, match="registry mirror"):
        Mirrors.parse(text)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5555", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("registry.example.com", False),
        ("10.0.0.1:5000", False),
    ],
)
def test_is_loopback_registry(host, loopback):
    assert is_loopback_registry(host) is loopback
