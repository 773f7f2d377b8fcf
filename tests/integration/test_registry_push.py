"""Pushing real images to real registries on loopback: no auth, htpasswd, bearer tokens, ECR.

Each test starts its own ``docker-registry`` (distribution 2.8) on a free 127.0.0.1 port, pushes
a small multi-arch ImageSet built here from real gzip tar layers, and checks the result with an
independent client (skopeo).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crossdock.errors import AuthError, NotFoundError, RegistryError
from crossdock.image import (
    ImageSet,
    Index,
    Manifest,
    MediaType,
    sha256_of,
)
from crossdock.image.digest import Digest
from crossdock.platform import AMD64, ARM64
from crossdock.registry import (
    BlobCache,
    EcrRegistry,
    Reference,
    RegistryClient,
    UploadMode,
    ensure_repository,
)
from crossdock.sinks import PushEvent, push_image_set
from tests.support import images
from tests.support.distribution import Registry
from tests.support.prerequisites import missing, needs_tools, require_module
from tests.support.stage import free_port

pytestmark = [
    pytest.mark.integration,
    needs_tools("docker-registry", "skopeo"),
]

CANARY = "canary-5ecret-Zq8vXw"
USER = "pusher"
TIMESTAMP = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SHA = "abc1234"
TOKEN_SERVER = Path(__file__).parents[2] / "stage" / "token_server.py"


# -- servers ---------------------------------------------------------------------------------


@pytest.fixture
def plain_registry(tmp_path):
    registry = Registry(tmp_path / "plain")
    yield registry
    registry.stop()


def htpasswd_line(user: str, password: str) -> str:
    return subprocess.run(
        ["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def basic_registry(tmp_path):
    if shutil.which("htpasswd") is None:
        missing("htpasswd (apache2-utils) is not installed")
    folder = tmp_path / "basic"
    folder.mkdir()
    (folder / "htpasswd").write_text(htpasswd_line(USER, CANARY) + "\n")
    registry = Registry(folder, {"htpasswd": {"realm": "test", "path": str(folder / "htpasswd")}})
    yield registry
    registry.stop()


@pytest.fixture
def token_registry(tmp_path):
    folder = tmp_path / "token"
    folder.mkdir()
    (folder / "password").write_text(CANARY)
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, str(TOKEN_SERVER), "--port", str(port), "--folder", str(folder)),
            *("--user", USER, "--password-file", str(folder / "password")),
        ],
        stdout=subprocess.PIPE,
    )
    assert server.stdout is not None
    assert server.stdout.readline().strip() == b"ready"
    auth = {
        "token": {
            "realm": f"http://127.0.0.1:{port}/token",
            "service": "crossdock-test-registry",
            "issuer": "crossdock-test-issuer",
            "rootcertbundle": str(folder / "cert.pem"),
        }
    }
    registry = Registry(folder, auth)
    yield registry
    registry.stop()
    server.terminate()
    server.wait(10)
    server.stdout.close()


@pytest.fixture
def no_ambient_credentials(tmp_path, monkeypatch):
    """Credentials come only from what each test sets, never from the machine."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-docker-config"))
    for key in list(os.environ):
        if key.startswith("CROSSDOCK_REGISTRY_") and key != "CROSSDOCK_REGISTRY_MIRRORS":
            monkeypatch.delenv(key)


def the_index(image_set: ImageSet) -> Index:
    assert image_set.index is not None
    return image_set.index


def skopeo_digest(host: str, repository: str, tag: str, creds: str | None = None) -> Digest | None:
    command = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if creds:
        command += ["--creds", creds]
    result = subprocess.run(
        [*command, f"docker://{host}/{repository}:{tag}"], capture_output=True, check=False
    )
    if result.returncode != 0:
        return None
    return sha256_of(result.stdout)


def assert_tags_as_seed_says(host, repository, image_set, creds=None):
    arm = image_set.image_for(ARM64).digest
    amd = image_set.image_for(AMD64).digest
    top = image_set.index.digest if image_set.index else arm
    expected = {
        "dev-20250102-030405": top,
        "dev-20250102-030405-arm64": arm,
        "dev-20250102-030405-amd64": amd,
        "dev-arm64-latest": arm,
        "dev-amd64-latest": amd,
        "dev-latest": top,
        "abc1234-arm64": arm,
        "abc1234-amd64": amd,
        "abc1234": top,
    }
    seen = {tag: skopeo_digest(host, repository, tag, creds) for tag in expected}
    assert seen == expected


# -- tests -----------------------------------------------------------------------------------


def test_push_to_plain_registry_sets_the_six_tags_and_repush_uploads_nothing(
    plain_registry, tmp_path, no_ambient_credentials
):
    image_set = images.image_set(tmp_path / "blobs", shared=images.app_files())
    repository = Reference.parse(f"{plain_registry.host}/team/service")
    tags = images.six_tags(image_set)
    events: list[PushEvent] = []
    with RegistryClient(plain_registry.host) as client:
        report = push_image_set(client, image_set, repository, tags, on_progress=events.append)
        assert report.blobs_uploaded == 5  # shared + 2 own layers + 2 configs
        assert report.bytes_uploaded > 5000
        assert report.index == the_index(image_set).digest
        assert_tags_as_seed_says(plain_registry.host, "team/service", image_set)
        assert {e.kind for e in events} == {"blob", "bytes", "manifest", "index", "tag"}
        # Every byte of every uploaded layer was reported while it was sent (progress).
        sent: dict[str, int] = {}
        for event in events:
            if event.kind == "bytes":
                sent[event.name] = sent.get(event.name, 0) + event.size
        layers = {str(b.descriptor.digest): b.descriptor.size for b in image_set.blobs()}
        assert sent == layers

        again = push_image_set(client, image_set, repository, tags)
        assert (again.blobs_uploaded, again.bytes_uploaded) == (0, 0)
        assert again.blobs_present == 5
        assert sorted(again.tags_unchanged) == sorted(tags)


def test_lambda_style_push_points_every_tag_at_a_single_manifest(
    plain_registry, tmp_path, no_ambient_credentials
):
    image_set = images.image_set(tmp_path / "blobs", with_index=False, shared=images.app_files())
    repository = Reference.parse(f"{plain_registry.host}/lambda-fn")
    with RegistryClient(plain_registry.host) as client:
        push_image_set(
            client, image_set, repository, images.six_tags(image_set, single_manifests=True)
        )
    assert_tags_as_seed_says(plain_registry.host, "lambda-fn", image_set)
    raw = subprocess.run(
        [
            *("skopeo", "inspect", "--raw", "--tls-verify=false"),
            f"docker://{plain_registry.host}/lambda-fn:dev-latest",
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert json.loads(raw)["mediaType"] == MediaType.OCI_MANIFEST


def test_chunked_upload_and_cross_repository_mount(
    plain_registry, tmp_path, no_ambient_credentials, caplog
):
    caplog.set_level(logging.DEBUG, logger="crossdock")
    image_set = images.image_set(tmp_path / "blobs", shared=images.app_files())
    first = Reference.parse(f"{plain_registry.host}/base/python")
    second = Reference.parse(f"{plain_registry.host}/apps/web")
    with RegistryClient(
        plain_registry.host, upload_mode=UploadMode.CHUNKED, chunk_size=1024
    ) as client:
        push_image_set(client, image_set, first, {"v1": the_index(image_set).digest})
        assert any("PATCH" in r.getMessage() for r in caplog.records)
        assert (
            skopeo_digest(plain_registry.host, "base/python", "v1") == the_index(image_set).digest
        )

        origin = f"{plain_registry.host}/base/python"
        mounted = ImageSet(
            tuple(
                dataclasses.replace(
                    image,
                    layers=tuple(dataclasses.replace(b, origin=origin) for b in image.layers),
                )
                for image in image_set.images
            ),
            image_set.index,
        )
        report = push_image_set(client, mounted, second, {"v1": the_index(image_set).digest})
    assert report.blobs_mounted == 3
    assert report.blobs_uploaded == 2  # the configs: held as bytes, they carry no origin
    assert skopeo_digest(plain_registry.host, "apps/web", "v1") == the_index(image_set).digest


def test_pull_side_verifies_and_caches(plain_registry, tmp_path, no_ambient_credentials):
    image_set = images.image_set(tmp_path / "blobs", shared=images.app_files())
    repository = Reference.parse(f"{plain_registry.host}/pull/me")
    with RegistryClient(plain_registry.host) as client:
        push_image_set(client, image_set, repository, {"1": the_index(image_set).digest})
        index = client.get_manifest(repository.with_tag("1"))
        assert isinstance(index, Index)
        assert index.raw == the_index(image_set).raw
        arm = image_set.image_for(ARM64)
        manifest = client.get_manifest(repository.with_digest(arm.digest))
        assert isinstance(manifest, Manifest)
        assert manifest.digest == arm.digest
        assert client.fetch_blob_bytes(repository, manifest.config) == arm.config.raw

        cache = BlobCache(tmp_path / "cache")
        layer = manifest.layers[0]
        calls = []

        def download(descriptor, dest):
            calls.append(descriptor.digest)
            client.fetch_blob(repository, descriptor, dest)

        path = cache.ensure(layer, download)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == layer.digest.hex
        assert cache.ensure(layer, download) == path
        assert calls == [layer.digest]
        assert [p.name for p in path.parent.iterdir()] == [layer.digest.hex]

        lying = dataclasses.replace(layer, size=layer.size - 1)
        with pytest.raises(RegistryError, match="larger than its descriptor"):
            client.fetch_blob(repository, lying, tmp_path / "lying")
        assert not (tmp_path / "lying").exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".partial")] == []
        with pytest.raises(NotFoundError, match="nope"):
            client.get_manifest(repository.with_tag("nope"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        # The right size with other bytes is sent, and the registry refuses its digest.
        pytest.param(
            "corrupt", r"upload blob sha256:[0-9a-f]{64}.*(DIGEST_INVALID|digest)", id="corrupt"
        ),
        # A size that is not the descriptor's is refused here, before any byte is sent.
        pytest.param("truncated", r"has \d+ bytes, its descriptor says \d+", id="truncated"),
    ],
)
def test_a_damaged_local_blob_fails_the_push_with_no_tag(
    plain_registry, tmp_path, no_ambient_credentials, damage, message
):
    """(A push interrupted mid-upload: test_failure_paths.py, the process killed.)"""
    image_set = images.image_set(tmp_path / "blobs", shared=images.app_files())
    victim = image_set.image_for(AMD64).layers[1].path
    data = victim.read_bytes()
    victim.write_bytes(bytes(b ^ 0xFF for b in data) if damage == "corrupt" else data[:-10])
    repository = Reference.parse(f"{plain_registry.host}/broken/push")
    tags = images.six_tags(image_set)
    with (
        RegistryClient(plain_registry.host) as client,
        pytest.raises(RegistryError, match=message),
    ):
        push_image_set(client, image_set, repository, tags)
    for tag in tags:
        assert skopeo_digest(plain_registry.host, "broken/push", tag) is None


def test_push_with_htpasswd_basic_auth(
    basic_registry, tmp_path, no_ambient_credentials, monkeypatch
):
    monkeypatch.setenv("CROSSDOCK_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("CROSSDOCK_REGISTRY_PASSWORD", CANARY)
    image_set = images.image_set(tmp_path / "blobs", shared=images.app_files())
    repository = Reference.parse(f"{basic_registry.host}/secure/app")
    with RegistryClient(basic_registry.host) as client:
        push_image_set(client, image_set, repository, images.six_tags(image_set))
    assert_tags_as_seed_says(basic_registry.host, "secure/app", image_set, f"{USER}:{CANARY}")


def test_push_with_bearer_tokens_from_docker_config(
    token_registry, tmp_path, no_ambient_credentials, monkeypatch
):
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    auth = base64.b64encode(f"{USER}:{CANARY}".encode()).decode()
    (config_dir / "config.json").write_text(
        json.dumps({"auths": {f"http://{token_registry.host}": {"auth": auth}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    image_set = images.image_set(tmp_path / "blobs", shared=images.app_files())
    repository = Reference.parse(f"{token_registry.host}/tokens/app")
    with RegistryClient(token_registry.host) as client:
        report = push_image_set(client, image_set, repository, images.six_tags(image_set))
        assert report.blobs_uploaded == 5
        again = push_image_set(client, image_set, repository, images.six_tags(image_set))
        assert again.blobs_uploaded == 0
    assert_tags_as_seed_says(token_registry.host, "tokens/app", image_set, f"{USER}:{CANARY}")


@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_canary_secret_never_shows_even_when_refused(  # noqa: PLR0917 - pytest fixtures
    which, request, tmp_path, no_ambient_credentials, monkeypatch, caplog, capsys
):
    registry = request.getfixturevalue(which)
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    wrong = CANARY + "-wrong"
    image_set = images.image_set(tmp_path / "blobs", shared=images.app_files())
    repository = Reference.parse(f"{registry.host}/canary/app")
    monkeypatch.setenv("CROSSDOCK_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("CROSSDOCK_REGISTRY_PASSWORD", wrong)
    with RegistryClient(registry.host) as client, pytest.raises(AuthError) as refused:
        push_image_set(client, image_set, repository, images.six_tags(image_set))
    monkeypatch.setenv("CROSSDOCK_REGISTRY_PASSWORD", CANARY)
    with RegistryClient(registry.host) as client:
        push_image_set(client, image_set, repository, images.six_tags(image_set))
        client_repr = repr(client.transport.auth.credentials())
    captured = capsys.readouterr()
    texts = [
        str(refused.value),
        repr(refused.value),
        client_repr,
        captured.out,
        captured.err,
        caplog.text,
        *(str(r.args) for r in caplog.records),
    ]
    encoded = base64.b64encode(f"{USER}:{CANARY}".encode()).decode()
    for text in texts:
        assert CANARY not in text
        assert encoded not in text
    assert "refused" in str(refused.value)


def test_ecr_flow_against_moto_and_a_basic_auth_registry(
    tmp_path, no_ambient_credentials, monkeypatch, caplog
):
    server_module = require_module("moto.server")
    if shutil.which("htpasswd") is None:
        missing("htpasswd (apache2-utils) is not installed")
    account, region = "123456789012", "us-east-1"
    moto_port = free_port()
    moto = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port)
    moto.start()
    folder = tmp_path / "ecr"
    folder.mkdir()
    # moto's token decodes to AWS:<account>-auth-token; the blob registry accepts exactly that.
    (folder / "htpasswd").write_text(htpasswd_line("AWS", f"{account}-auth-token") + "\n")
    registry = Registry(folder, {"htpasswd": {"realm": "ecr", "path": str(folder / "htpasswd")}})
    try:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
        }.items():
            monkeypatch.setenv(key, value)
        ecr = EcrRegistry(account, region, f"http://127.0.0.1:{moto_port}")
        with pytest.raises(NotFoundError, match="--create-repository"):
            ensure_repository(ecr, "backend/api")
        assert ensure_repository(ecr, "backend/api", create=True) is False
        assert ensure_repository(ecr, "backend/api") is False

        caplog.set_level(logging.DEBUG, logger="crossdock")
        image_set = images.image_set(
            tmp_path / "blobs", with_index=False, shared=images.app_files()
        )
        repository = Reference.parse(f"{registry.host}/backend/api")
        tags = images.six_tags(image_set, single_manifests=True)
        with RegistryClient(registry.host, ecr=ecr, chunk_size=1024) as client:
            report = push_image_set(client, image_set, repository, tags)
            assert report.blobs_uploaded == 5
            again = push_image_set(client, image_set, repository, tags)
            assert again.blobs_uploaded == 0
            assert sorted(again.tags_unchanged) == sorted(tags)
        assert not any("PATCH" in r.getMessage() for r in caplog.records)  # monolithic on ECR
        assert_tags_as_seed_says(
            registry.host, "backend/api", image_set, f"AWS:{account}-auth-token"
        )
    finally:
        registry.stop()
        moto.stop()
