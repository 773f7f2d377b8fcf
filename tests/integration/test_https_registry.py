"""The real-registry path on the stage: HTTPS under a host name, a token realm on another host,
anonymous pull tokens, blobs redirected to a storage origin on a third host (stage/https.sh).

Needs `stage/stage.sh up` (which writes the /etc/hosts names, the CA, and starts the daemons)
and `eval "$(stage/stage.sh env)"`. The CA is trusted the way users trust a private CA: through
SSL_CERT_FILE (a bundle of the system's CAs plus the stage's).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crossdock.errors import AuthError, RegistryError
from crossdock.image.manifest import Index, Manifest
from crossdock.registry.client import RegistryClient
from crossdock.registry.credentials import Credentials
from crossdock.registry.light import DeclinedError, LightClient
from crossdock.registry.reference import Reference
from crossdock.tls import system_ssl_context
from tests.support.prerequisites import needs
from tests.support.stage import crossdock_probed

REGISTRY = os.environ.get("CROSSDOCK_STAGE_HTTPS_REGISTRY", "")
BUNDLE = os.environ.get("CROSSDOCK_STAGE_CA_BUNDLE", "")
STORAGE_LOG = Path(os.environ.get("CROSSDOCK_STAGE_STORAGE_LOG", "/nonexistent"))
USER = os.environ.get("CROSSDOCK_STAGE_HTTPS_USER", "")
PASSWORD_FILE = Path(os.environ.get("CROSSDOCK_STAGE_HTTPS_PASSWORD_FILE", "/nonexistent"))
AUTH_HOST = "auth.crossdock.test:5559"
STORAGE_HOST = "storage.crossdock.test:5558"
BASE = f"{REGISTRY}/library/python:3.13-slim"
# The user agent of the test that sends Authorization to the storage origin on purpose.
PROBE_AGENT = "crossdock-test-storage-probe"
REPO_ROOT = Path(__file__).resolve().parents[2]
CROSSDOCK = str(Path(sys.executable).parent / "crossdock")

pytestmark = [
    pytest.mark.integration,
    needs(
        bool(REGISTRY) and Path(BUNDLE).is_file(),
        "no HTTPS stage: run stage/stage.sh up and eval $(stage/stage.sh env)",
    ),
]


@pytest.fixture
def trust_stage_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", BUNDLE)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture
def no_credentials(tmp_path: Path) -> dict[str, str]:
    """An environment for RegistryClient with no credentials anywhere."""
    return {"DOCKER_CONFIG": str(tmp_path / "docker"), "HOME": str(tmp_path)}


def password() -> str:
    return PASSWORD_FILE.read_text().strip()


class StorageLog:
    """The storage origin's request log, read from where this test started."""

    def __init__(self) -> None:
        self.start = STORAGE_LOG.stat().st_size if STORAGE_LOG.exists() else 0

    def entries(self) -> list[dict[str, Any]]:
        if not STORAGE_LOG.exists():
            return []
        with STORAGE_LOG.open("rb") as handle:
            handle.seek(self.start)
            return [json.loads(line) for line in handle.read().splitlines() if line.strip()]


@pytest.fixture
def storage_log() -> Iterator[StorageLog]:
    yield StorageLog()


def test_an_untrusted_certificate_is_a_clear_error_not_a_retry(monkeypatch, no_credentials):
    # Without the stage's CA: the system store alone does not know it.
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with (
        RegistryClient(REGISTRY, environ=no_credentials) as client,
        pytest.raises(RegistryError) as error,
    ):
        client.get_manifest(Reference.parse(BASE))
    assert f"cannot reach registry {REGISTRY}" in error.value.message
    assert "TLS certificate is not trusted" in error.value.message
    assert "SSL_CERT_FILE" in str(error.value.hint)


def test_ssl_cert_file_is_honoured_by_the_system_trust_context(trust_stage_ca):
    with httpx.Client(verify=system_ssl_context()) as http:
        answer = http.get(f"https://{REGISTRY}/v2/")
    assert answer.status_code == 401
    assert answer.headers["docker-distribution-api-version"] == "registry/2.0"


def test_the_realm_is_on_another_host(trust_stage_ca):
    with httpx.Client(verify=system_ssl_context()) as http:
        challenge = http.get(f"https://{REGISTRY}/v2/").headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="https://{AUTH_HOST}/token"')


def test_anonymous_pull_gets_a_token_from_the_realm_and_blobs_from_storage(
    trust_stage_ca, no_credentials, storage_log, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="crossdock.registry")
    with RegistryClient(REGISTRY, environ=no_credentials) as client:
        index = client.get_manifest(Reference.parse(BASE))
        assert isinstance(index, Index)
        child = index.manifests[0]
        manifest = client.get_manifest(Reference.parse(BASE).with_digest(child.digest))
        assert isinstance(manifest, Manifest)
        layer = manifest.layers[0]
        client.fetch_blob(Reference.parse(BASE), layer, tmp_path / "layer")
        config = client.fetch_blob_bytes(Reference.parse(BASE), manifest.config)
    assert layer.digest.matches((tmp_path / "layer").read_bytes())
    assert manifest.config.digest.matches(config)
    # The token came from the realm on the other host, anonymously (no credentials exist).
    assert f"requesting a token from https://{AUTH_HOST}/token" in caplog.text
    # Both blobs were served by the storage origin, which saw no Authorization header.
    served = {
        (entry["path"], entry["authorization"], entry["status"]) for entry in storage_log.entries()
    }
    for digest in (layer.digest, manifest.config.digest):
        assert (f"/blobs/sha256/{digest.hex}", False, 200) in served


def test_the_storage_origin_refuses_a_request_that_carries_authorization(
    trust_stage_ca, storage_log
):
    """The check above can fail: a client that forwarded the registry's Authorization header
    across the redirect would be refused, and the log would show it."""
    with httpx.Client(verify=system_ssl_context()) as http:
        realm = f"https://{AUTH_HOST}/token"
        token = http.get(
            realm,
            params={
                "service": "crossdock-test-registry",
                "scope": "repository:library/python:pull",
            },
        ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        accept = (
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
        )
        manifests = f"https://{REGISTRY}/v2/library/python/manifests"
        index = http.get(f"{manifests}/3.13-slim", headers={**bearer, "Accept": accept}).json()
        child = index["manifests"][0]["digest"]
        manifest = http.get(f"{manifests}/{child}", headers={**bearer, "Accept": accept}).json()
        digest = manifest["config"]["digest"]
        redirect = http.get(
            f"https://{REGISTRY}/v2/library/python/blobs/{digest}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert redirect.status_code == 307
        location = redirect.headers["location"]
        assert location.startswith(f"https://{STORAGE_HOST}/blobs/sha256/")
        probe = {"User-Agent": PROBE_AGENT}
        refused = http.get(location, headers={**probe, "Authorization": f"Bearer {token}"})
        served = http.get(location, headers=probe)
    assert refused.status_code == 400
    assert b"Only one auth mechanism allowed" in refused.content
    assert served.status_code == 200
    path = f"/blobs/sha256/{digest.removeprefix('sha256:')}"
    mine = [e for e in storage_log.entries() if e["user_agent"] == PROBE_AGENT]
    assert [(e["path"], e["authorization"], e["status"]) for e in mine] == [
        (path, True, 400),
        (path, False, 200),
    ]


def test_the_light_client_reads_through_the_realm_on_another_host_as_the_full_client(
    trust_stage_ca, no_credentials
):
    # What a build answered from its record asks: the base's tag, over HTTPS with the stage's
    # CA (SSL_CERT_FILE), a token from the realm on another host, anonymously and as the user.
    with RegistryClient(REGISTRY, environ=no_credentials) as full:
        expected = full.get_manifest(Reference.parse(BASE)).digest
    as_user = {
        **no_credentials,
        "CROSSDOCK_REGISTRY_USERNAME": USER,
        "CROSSDOCK_REGISTRY_PASSWORD": password(),
    }
    for environ in (no_credentials, as_user):
        with LightClient(REGISTRY, environ=environ) as light:
            assert light.get_manifest(Reference.parse(BASE)).digest == expected
            assert light.auth.header_for([]) is not None  # a token was needed, and given


def test_the_light_client_declines_an_untrusted_certificate(monkeypatch, no_credentials):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with (
        LightClient(REGISTRY, environ=no_credentials) as light,
        pytest.raises(DeclinedError, match="SSLCertVerificationError"),
    ):
        light.get_manifest(Reference.parse(BASE))


def test_anonymous_push_is_refused_and_the_user_may_push(trust_stage_ca, no_credentials):
    repository = Reference.parse(f"{REGISTRY}/tests-{uuid.uuid4().hex[:10]}/push")
    data = b"crossdock https push " + uuid.uuid4().bytes
    with (
        RegistryClient(REGISTRY, environ=no_credentials) as anonymous,
        pytest.raises(AuthError, match="refused no credentials"),
    ):
        anonymous.upload_blob_bytes(repository, data)
    credentials = Credentials(USER, password(), "test")
    with RegistryClient(REGISTRY, credentials=credentials, environ=no_credentials) as client:
        assert client.upload_blob_bytes(repository, data) == "uploaded"
        assert client.upload_blob_bytes(repository, data) == "present"


# The variables that hold the push user's credentials for the HTTPS registry.
LOGIN_VARIABLE = "CROSSDOCK_REGISTRY_REGISTRY_CROSSDOCK_TEST_5556"


@pytest.fixture(scope="module")
def https_example(host_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example project, its `api` service locked."""
    project = tmp_path_factory.mktemp("https") / "example"
    shutil.copytree(
        REPO_ROOT / "example",
        project,
        ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__", "out"),
    )
    env = {**os.environ, "UV_PYTHON": host_python, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run(
        ["uv", "lock", "--quiet"], cwd=project / "backend" / "api", env=env, check=True, timeout=300
    )
    return project


def cli_env(host_python: str, cache: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment: the HTTPS registry's CA trusted, its own cache, no docker
    credentials; ``extra`` on top."""
    env = {
        **os.environ,
        "UV_PYTHON": host_python,
        "UV_PYTHON_DOWNLOADS": "never",
        "SSL_CERT_FILE": BUNDLE,
        "DOCKER_CONFIG": str(cache.parent / "no-docker-config"),
        "CROSSDOCK_CACHE_DIR": str(cache),
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
        **extra,
    }
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


# What each refusal of the destination says (the start of its one line), and its exit code.
REFUSALS = {
    "untrusted certificate": (
        RegistryError.exit_code,
        (
            f"cannot reach registry {REGISTRY} (GET https://{REGISTRY}/v2/): its TLS certificate "
            "is not trusted"
        ),
    ),
    "wrong password": (
        AuthError.exit_code,
        (
            f"the token server of {REGISTRY} refused credentials from environment "
            f"({LOGIN_VARIABLE}_USERNAME) (401) for repository:"
        ),
    ),
    "no credentials": (
        AuthError.exit_code,
        f"registry {REGISTRY} requires credentials and none are configured for it",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_destination_that_would_refuse_the_push_fails_before_the_build(
    host_python, https_example, tmp_path, case
):
    """`crossdock build --push` asks the destination first: each refusal is one line with its
    exit code, and the build never starts (nothing pulled, installed or written to its cache).
    The base comes from the plain registry, so the HTTPS registry is only the destination."""
    cache = tmp_path / "cache"
    extra = {
        "CROSSDOCK_REGISTRY_MIRRORS": os.environ.get(
            "CROSSDOCK_REGISTRY_MIRRORS", "docker.io=127.0.0.1:5555,public.ecr.aws=127.0.0.1:5555"
        )
    }
    if case != "no credentials":
        extra |= {f"{LOGIN_VARIABLE}_USERNAME": USER, f"{LOGIN_VARIABLE}_PASSWORD": password()}
    if case == "wrong password":
        extra[f"{LOGIN_VARIABLE}_PASSWORD"] = "not-the-password-Qx7"
    env = cli_env(host_python, cache, **extra)
    if case == "untrusted certificate":
        env.pop("SSL_CERT_FILE")
        env.pop("SSL_CERT_DIR", None)
    target = f"{REGISTRY}/tests-{uuid.uuid4().hex[:10]}/api:latest"
    run = subprocess.run(
        [
            *(CROSSDOCK, "build", "-C", str(https_example), "--service", "api"),
            *("--platform", "linux/arm64", "--push", target),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    exit_code, message = REFUSALS[case]
    assert run.returncode == exit_code, run.stdout + run.stderr
    error = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1, run.stderr
    assert error[0].startswith(f"error: {message}"), run.stderr
    assert "Traceback" not in run.stderr
    assert password() not in run.stdout + run.stderr
    assert "not-the-password-Qx7" not in run.stdout + run.stderr
    assert run.stdout == ""  # no build report: nothing was built
    # Nothing of the build happened: no base pulled, no tree installed, no layer written.
    assert files_under(cache) == []


@pytest.mark.parametrize("backend", ["native", "buildx"])
def test_the_seed_push_script_asks_the_destination_before_building(
    host_python, https_example, tmp_path, backend
):
    """scripts/docker-push.sh (`crossdock build --env dev`, either backend) to a repository on
    the HTTPS registry without credentials: refused before docker or uv runs."""
    project = tmp_path / "example"
    shutil.copytree(https_example, project)
    settings = project / "crossdock.toml"
    settings.write_text(
        settings.read_text().replace(
            'repository = "127.0.0.1:5555/myapp"',
            f'repository = "{REGISTRY}/tests-{uuid.uuid4().hex[:10]}/myapp"',
            1,
        )
    )
    git = ["git", "-c", "user.name=crossdock-test", "-c", "user.email=test@invalid"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "example"]):
        subprocess.run([*git, *command], cwd=project, check=True)  # the SHA tags need a commit
    cache = tmp_path / "cache"
    env = cli_env(host_python, cache, CROSSDOCK=CROSSDOCK, BACKEND=backend)
    run = subprocess.run(
        [str(project / "scripts" / "docker-push.sh"), "dev", "api", "Dockerfile.eks"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == AuthError.exit_code, run.stdout + run.stderr
    assert run.stderr.startswith(
        f"error: registry {REGISTRY} requires credentials and none are configured for it\n"
    ), run.stderr
    assert "buildx build" not in run.stdout + run.stderr
    assert files_under(cache) == []


def test_build_pulls_its_base_from_the_https_registry_and_pushes_there(
    host_python, https_example, tmp_path, storage_log
):
    """`crossdock build` end to end on the real path: the base through a mirror mapping to the
    HTTPS registry, the image pushed there with the push user (its access asked before the
    build), then verified from there."""
    project = https_example
    # The shared layer-facts cache would let verify skip reading the pushed layers.
    env = cli_env(
        host_python,
        tmp_path / "cache",
        CROSSDOCK_REGISTRY_MIRRORS=f"docker.io={REGISTRY},public.ecr.aws={REGISTRY}",
        **{f"{LOGIN_VARIABLE}_USERNAME": USER, f"{LOGIN_VARIABLE}_PASSWORD": password()},
    )
    target = f"{REGISTRY}/tests-{uuid.uuid4().hex[:10]}/api:latest"
    built = subprocess.run(
        [
            *(CROSSDOCK, "build", "-C", str(project), "--service", "api"),
            *("--platform", "linux/arm64,linux/amd64", "--push", target, "--json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    report = json.loads(built.stdout)
    # The base's layers came through the storage origin, without Authorization.
    # (Leaving out the refusal probe of the test above, should it run at the same time.)
    pulled = [e for e in storage_log.entries() if e["user_agent"] != PROBE_AGENT]
    assert pulled, "the base was not pulled through the redirect"
    assert {entry["authorization"] for entry in pulled} == {False}
    # An independent client sees the pushed index under the tag, with the build's digest.
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--creds", f"{USER}:{password()}", f"docker://{target}"],
        capture_output=True,
        env={**env, "SSL_CERT_FILE": BUNDLE},
        check=True,
        timeout=60,
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == report["index"]
    verified = subprocess.run(
        [CROSSDOCK, "verify", target],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count("PASS linux/") == 2
    # The same command again: answered from the record before the HTTP stack is imported, the
    # base's tag and the pushed image read through the light client (HTTPS, the stage's CA,
    # the realm on another host, the user's credentials from the environment).
    again, modules, _ = crossdock_probed(env, "build", *built.args[2:], timeout=600)
    stderr = again.stderr
    assert again.returncode == 0, again.stdout + stderr
    assert "nothing changed since the last build" in stderr
    assert not {"httpx", "stamina", "typer", "pydantic"} & modules
    answered = json.loads(again.stdout)
    assert answered["index"] == report["index"]
    assert answered["push"]["pushed"]["blobs_uploaded"] == 0
    assert answered["push"]["pushed"]["tags_set"] == 0
    assert password() not in again.stdout + stderr
    # The report for people (no --json), on a pipe as in CI: the build's and the push's, both
    # printed without importing rich.
    people, people_modules, _ = crossdock_probed(
        env, "build", *[a for a in built.args[2:] if a != "--json"], timeout=600
    )
    assert people.returncode == 0, people.stdout + people.stderr
    assert f"index {report['index']}" in people.stdout
    assert "0 blobs uploaded (0.0 MiB)" in people.stdout
    assert not {m for m in people_modules if m.split(".")[0] == "rich"}, people_modules
