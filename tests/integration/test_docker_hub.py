"""Docker Hub under its own host names: what a user who writes `--base python:3.13-slim` and
pushes to `docker.io/<user>/<repo>` after `docker login` meets (stage/dockerhub.sh).

The crossdock CLI runs as a user runs it, with no mirror setting, in a mount namespace of its
own (`stage/stage.sh hub-run`: unshare --mount and the stage's hosts file bind-mounted on
/etc/hosts; the machine's /etc/hosts never names docker.io hosts) where registry-1.docker.io,
auth.docker.io and production.cloudflare.docker.com are the stage's TLS servers on port 443,
under certificates of a CA trusted only through SSL_CERT_FILE. docker.io and index.docker.io map
to an address where nothing listens: a client that asked them for the API would fail.

The user logs in with the docker CLI itself (`docker login -u USER`, Docker Hub being the
default), which stores the login under "https://index.docker.io/v1/" in config.json: crossdock
finds it there. The stage logs what each host was asked (stage/token_server.py,
stage/blob_front.py): these tests check the hosts, the token service and scopes, that blob
downloads followed the redirect to the CDN host without credentials, and that the user's
password went only to the token realm.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crossdock.errors import AuthError, RegistryError
from tests.support.prerequisites import needs
from tests.support.stage import CROSSDOCK, PROJECTS, REPO_ROOT, uv_lock

USER = os.environ.get("CROSSDOCK_STAGE_HUB_USER", "")
PASSWORD_FILE = Path(os.environ.get("CROSSDOCK_STAGE_HUB_PASSWORD_FILE", "/nonexistent"))
BUNDLE = Path(os.environ.get("CROSSDOCK_STAGE_HUB_CA_BUNDLE", "/nonexistent"))
LOGS = Path(os.environ.get("CROSSDOCK_STAGE_HUB_LOGS", "/nonexistent"))
HOSTS = Path(os.environ.get("CROSSDOCK_STAGE_HUB_HOSTS", "/nonexistent"))
STAGE_SH = REPO_ROOT / "stage" / "stage.sh"
REGISTRY_HOST = "registry-1.docker.io"
AUTH_HOST = "auth.docker.io"
CDN_HOST = "production.cloudflare.docker.com"
SERVICE = "registry.docker.io"
# Where `docker login` (no server argument) stores Docker Hub's credentials in config.json.
DOCKER_LOGIN_KEY = "https://index.docker.io/v1/"
WRONG_PASSWORD = "not-the-password-Hub7"
BOTH = "linux/arm64,linux/amd64"
# The stage's own requests (its health checks, its skopeo copies) are not the CLI's.
STAGE_AGENTS = ("crossdock-stage-check", "skopeo/")

pytestmark = [
    pytest.mark.integration,
    needs(
        bool(USER) and BUNDLE.is_file() and HOSTS.is_file(),
        "no Docker Hub stand-in: run stage/stage.sh up and eval $(stage/stage.sh env)",
    ),
    needs(os.geteuid() == 0, "stage.sh hub-run needs root (unshare --mount)"),
]


def password() -> str:
    return PASSWORD_FILE.read_text().strip()


def written_login(folder: Path, secret: str) -> Path:
    """A DOCKER_CONFIG folder as `docker login -u USER` leaves it (auths, base64 user:secret),
    written here: a login whose password has changed since is one docker would not write."""
    folder.mkdir(parents=True)
    auth = base64.b64encode(f"{USER}:{secret}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {DOCKER_LOGIN_KEY: {"auth": auth}}}))
    return folder


def secrets_of(secret: str) -> list[str]:
    """Every spelling of a login that must never be printed."""
    return [secret, base64.b64encode(f"{USER}:{secret}".encode()).decode()]


class RequestLog:
    """One of the stage's JSON-lines request logs, from where the test started, without the
    stage's own requests."""

    def __init__(self, name: str) -> None:
        self.path = LOGS / name
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.start)
            lines = handle.read().splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        return [e for e in entries if not e["user_agent"].startswith(STAGE_AGENTS)]


@dataclass
class HubLogs:
    token: RequestLog
    registry: RequestLog
    cdn: RequestLog


@pytest.fixture
def hub_logs() -> HubLogs:
    return HubLogs(
        RequestLog("hub-token-requests.jsonl"),
        RequestLog("hub-registry-requests.jsonl"),
        RequestLog("hub-cdn-requests.jsonl"),
    )


@pytest.fixture(scope="module")
def project(host_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A single uv project (uvicorn and a few lines), locked: not the example."""
    root = tmp_path_factory.mktemp("hub") / "service"
    shutil.copytree(PROJECTS / "shape-single", root)
    uv_lock(root, {**os.environ, "UV_PYTHON": host_python, "UV_PYTHON_DOWNLOADS": "never"})
    return root


def hub_env(host_python: str, docker_config: Path, cache: Path) -> dict[str, str]:
    """The user's environment: no mirror, no credentials but DOCKER_CONFIG's, the stand-in's CA
    trusted through SSL_CERT_FILE only, a cache of its own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CROSSDOCK_REGISTRY_") and key != "SSL_CERT_DIR"
    }
    return env | {
        "UV_PYTHON": host_python,
        "UV_PYTHON_DOWNLOADS": "never",
        "SSL_CERT_FILE": str(BUNDLE),
        "DOCKER_CONFIG": str(docker_config),
        "CROSSDOCK_CACHE_DIR": str(cache),
        "CROSSDOCK_STAGE_HUB_HOSTS": str(HOSTS),
    }


def hub_run(
    env: dict[str, str], *argv: str, stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """ARGV where Docker Hub's names are the stage's."""
    return subprocess.run(
        ["bash", str(STAGE_SH), "hub-run", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def docker_login(env: dict[str, str]) -> None:
    """`docker login -u USER` (Docker Hub: no server named) into env's DOCKER_CONFIG, by the
    docker CLI itself. DOCKER_HOST names no daemon, so the CLI logs in itself (the daemon runs
    outside the namespace, where Docker Hub's names are not the stage's)."""
    docker = shutil.which("docker")
    assert docker is not None, "no docker CLI: run stage/stage.sh up (it installs docker.io)"
    login = hub_run(
        {**env, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        *(docker, "login", "--username", USER, "--password-stdin"),
        stdin=password(),
    )
    assert login.returncode == 0, login.stdout + login.stderr
    assert "Login Succeeded" in login.stdout


def build(
    env: dict[str, str], project: Path, base: str, *output: str
) -> subprocess.CompletedProcess[str]:
    return hub_run(
        env, CROSSDOCK, "build", "-C", str(project), "--base", base, "--platform", BOTH, *output
    )


def digests_of(paths: set[str]) -> set[str]:
    """The hex digests that blob paths end with (registry: .../sha256:HEX, CDN: .../sha256/HEX)."""
    return {path.rsplit("/", 1)[-1].removeprefix("sha256:") for path in paths}


def skopeo_raw(env: dict[str, str], ref: str, authfile: Path) -> bytes:
    inspected = hub_run(env, "skopeo", "inspect", "--raw", "--authfile", str(authfile), ref)
    assert inspected.returncode == 0, inspected.stderr
    return inspected.stdout.encode()


def test_build_on_python_slim_and_push_to_docker_hub_as_docker_login_left_it(
    host_python, project, tmp_path, hub_logs
):
    """Both spellings of the base, both platforms, pushed to the user's repository with the
    credentials `docker login` wrote; then read back by skopeo and `crossdock verify`."""
    login = tmp_path / "docker"
    env = hub_env(host_python, login, tmp_path / "cache")
    docker_login(env)
    stored = json.loads((login / "config.json").read_text())
    assert list(stored["auths"]) == [DOCKER_LOGIN_KEY]
    repository = f"{USER}/tests-{uuid.uuid4().hex[:10]}"
    short = build(
        env, project, "python:3.13-slim", "--push", f"docker.io/{repository}:short", "--json"
    )
    assert short.returncode == 0, short.stdout + short.stderr
    full = build(
        env,
        project,
        "docker.io/library/python:3.13-slim",
        *("--push", f"docker.io/{repository}:full", "--json"),
    )
    assert full.returncode == 0, full.stdout + full.stderr
    reports = [json.loads(run.stdout) for run in (short, full)]
    # One image whichever way the base is spelled.
    assert reports[0]["index"] == reports[1]["index"]
    for run in (short, full):
        for secret in secrets_of(password()):
            assert secret not in run.stdout + run.stderr

    assert_docker_hubs_path_was_taken(hub_logs, repository)
    # The same command again: answered from the build's record, the base's tag and the pushed
    # release read back through Docker Hub's names (crossdock.registry.light), nothing written.
    again = hub_run(env, *short.args[3:])  # bash stage.sh hub-run | crossdock build ...
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing changed since the last build" in again.stderr
    answered = json.loads(again.stdout)
    assert answered["index"] == reports[0]["index"]
    assert answered["push"]["pushed"]["blobs_uploaded"] == 0
    assert answered["push"]["pushed"]["tags_set"] == 0
    assert not {
        secret for secret in secrets_of(password()) if secret in again.stdout + again.stderr
    }
    # An independent client, through the same names and the same login: the pushed index.
    assert_pushed_on_the_base(env, login / "config.json", repository, reports[0]["index"])
    verified = hub_run(env, CROSSDOCK, "verify", f"docker.io/{repository}:full")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count("PASS linux/") == 2


def assert_docker_hubs_path_was_taken(hub_logs: HubLogs, repository: str) -> None:
    """What the stage's hosts were asked while the user's login pulled the base and pushed to
    ``repository``."""
    tokens = hub_logs.token.entries()
    registry = hub_logs.registry.entries()
    cdn = hub_logs.cdn.entries()
    # Every request went to its own host under its Docker Hub name, none to docker.io itself.
    assert {e["host"] for e in tokens} == {AUTH_HOST}
    assert {e["host"] for e in registry} == {REGISTRY_HOST}
    assert {e["host"] for e in cdn} == {CDN_HOST}
    # Tokens for Docker Hub's service, the user's login (the right one) sent to the realm: pull
    # of library/python (the base, and the source of the cross-repository mounts), push to the
    # user's repository.
    mine = [e for e in tokens if any(repository in scope for scope in e["scopes"])]
    assert {tuple(e["service"]) for e in tokens} == {(SERVICE,)}
    assert {(e["authorization"], e["authenticated"], e["status"]) for e in mine} == {
        ("Basic", True, 200)
    }
    scopes = {scope for e in tokens for scope in e["granted"]}
    assert "repository:library/python:pull" in scopes
    assert f"repository:{repository}:pull,push" in scopes
    # The registry host saw bearer tokens only: the password never went there.
    assert {e["authorization"] for e in registry} <= {None, "Bearer"}
    # Blob downloads were redirected to the CDN host and followed there without credentials.
    redirected = {e["path"] for e in registry if e["method"] == "GET" and e["status"] == 307}
    assert redirected, "no blob was redirected: the base was not pulled from the registry"
    assert all(path.startswith("/v2/library/python/blobs/sha256:") for path in redirected)
    fetched = [e for e in cdn if e["method"] == "GET"]
    assert {(e["authorization"], e["status"]) for e in fetched} == {(False, 200)}
    assert digests_of(redirected) <= digests_of({e["path"] for e in fetched})


def assert_pushed_on_the_base(
    env: dict[str, str], config: Path, repository: str, index_digest: str
) -> None:
    """skopeo reads ``repository:short`` with the login in ``config``: the build's index, one
    image per platform, each the base's layers (read the same way) and then crossdock's."""
    raw = skopeo_raw(env, f"docker://docker.io/{repository}:short", config)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == index_digest
    index = json.loads(raw)
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"arm64", "amd64"}
    base = json.loads(skopeo_raw(env, "docker://docker.io/library/python:3.13-slim", config))
    for child in index["manifests"]:
        arch = child["platform"]["architecture"]
        (base_child,) = [m for m in base["manifests"] if m["platform"]["architecture"] == arch]
        manifest = json.loads(
            skopeo_raw(env, f"docker://docker.io/{repository}@{child['digest']}", config)
        )
        base_ref = f"docker://docker.io/library/python@{base_child['digest']}"
        base_manifest = json.loads(skopeo_raw(env, base_ref, config))
        layers = [layer["digest"] for layer in manifest["layers"]]
        base_layers = [layer["digest"] for layer in base_manifest["layers"]]
        assert layers[: len(base_layers)] == base_layers
        assert len(layers) > len(base_layers)


def test_an_anonymous_build_pulls_library_python_with_an_anonymous_token(
    host_python, project, tmp_path, hub_logs
):
    """No login at all: `--base python:3.13-slim` still pulls (an anonymous pull token for
    library/python, as auth.docker.io gives), here to an OCI layout."""
    env = hub_env(host_python, tmp_path / "no-docker-config", tmp_path / "cache")
    run = build(env, project, "python:3.13-slim", "--oci-layout", str(tmp_path / "out"), "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["index"]
    pulls = [e for e in hub_logs.token.entries() if e["authorization"] is None]
    assert pulls
    assert {(tuple(e["granted"]), e["status"]) for e in pulls} >= {
        (("repository:library/python:pull",), 200)
    }
    fetched = [e for e in hub_logs.cdn.entries() if e["method"] == "GET"]
    assert fetched
    assert {(e["authorization"], e["status"]) for e in fetched} == {(False, 200)}


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


# What a user meets pushing to Docker Hub: each a one-line error with its exit code. The token
# realm lets the user push under its own name only (as Docker Hub does): `docker.io/NAME` is
# library/NAME, the official images'.
REFUSED_PUSH = (
    f"registry {REGISTRY_HOST} refused credentials from docker config {{config}} for POST"
)
REFUSALS = {
    "a one-part name": (AuthError.exit_code, REFUSED_PUSH),
    "another account's repository": (AuthError.exit_code, REFUSED_PUSH),
    "no credentials": (
        AuthError.exit_code,
        "registry docker.io requires credentials and none are configured for it",
    ),
    "wrong password": (
        AuthError.exit_code,
        "the token server of docker.io refused credentials from docker config {config} (401)",
    ),
    "untrusted certificate": (
        RegistryError.exit_code,
        (
            f"cannot reach registry {REGISTRY_HOST} (GET https://{REGISTRY_HOST}/v2/): its TLS "
            "certificate is not trusted"
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_push_to_docker_hub_that_would_be_refused_is_one_line(
    host_python, project, tmp_path, case
):
    if case == "no credentials":
        login = tmp_path / "no-docker-config"
    else:
        login = written_login(
            tmp_path / "docker", WRONG_PASSWORD if case == "wrong password" else password()
        )
    cache = tmp_path / "cache"
    env = hub_env(host_python, login, cache)
    if case == "untrusted certificate":
        env["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt"  # the system's CAs only
    name = f"tests-{uuid.uuid4().hex[:10]}"
    target = {
        "a one-part name": f"docker.io/{name}:latest",
        "another account's repository": f"docker.io/someone-else/{name}:latest",
    }.get(case, f"docker.io/{USER}/{name}:latest")
    run = build(env, project, "python:3.13-slim", "--push", target)
    exit_code, message = REFUSALS[case]
    assert run.returncode == exit_code, run.stdout + run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, run.stderr
    assert errors[0].startswith(f"error: {message.format(config=login / 'config.json')}"), (
        run.stderr
    )
    assert "Traceback" not in run.stderr
    if case == "a one-part name":
        assert "hint: Docker Hub takes pushes under your account's name only: push to " in (
            run.stderr
        )
    for secret in [*secrets_of(password()), *secrets_of(WRONG_PASSWORD)]:
        assert secret not in run.stdout + run.stderr
    # Refused before the build: nothing pulled, installed or written.
    assert files_under(cache) == []
