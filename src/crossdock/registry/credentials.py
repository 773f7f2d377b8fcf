"""Where registry credentials come from: the places users already keep them.

Lookup order for a registry host (the first that has something wins):

1. ``CROSSDOCK_REGISTRY_<HOST>_USERNAME`` / ``..._PASSWORD``, where HOST is the host upper-cased
   with every other character than A-Z and 0-9 turned into ``_`` (``127.0.0.1:5000`` ->
   ``CROSSDOCK_REGISTRY_127_0_0_1_5000_USERNAME``).
2. ``CROSSDOCK_REGISTRY_USERNAME`` / ``CROSSDOCK_REGISTRY_PASSWORD`` (CI). They apply to every
   registry unless ``CROSSDOCK_REGISTRY_HOST`` names the one they belong to; set it, so that a
   base image's registry never sees your push credentials.
3. Docker's ``config.json`` (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``):
   ``credHelpers[host]``, then ``credsStore``, then ``auths[host].auth`` (base64 ``user:pass``),
   exactly as the docker CLI reads it. A helper is ``docker-credential-<name>`` on PATH, asked
   with ``get`` and the host on stdin.

ECR's token (boto3) is a fallback handled by ``crossdock.registry.ecr``, not here.

Secrets never appear in a repr, a log record or an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossdock.children import run_child
from crossdock.errors import AuthError, ConfigError

__all__ = [
    "Credentials",
    "docker_config_path",
    "find_credentials",
    "run_credential_helper",
]

_log = logging.getLogger(__name__)

# Keys Docker writes for Docker Hub in config.json (the v1 index URL is the historical one).
_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
# A credential helper that hangs (a locked keychain waiting for a prompt) must not hang a build.
_HELPER_TIMEOUT_SECONDS = 30
_FIX_CONFIG = "fix or remove the file, or set DOCKER_CONFIG to another folder"


@dataclass(frozen=True)
class Credentials:
    """A username and a secret for one registry. The secret never shows in ``repr``."""

    username: str
    password: str = field(repr=False)
    source: str = "unknown"

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***', source={self.source!r})"

    def basic_header(self) -> str:
        """The ``Authorization`` header value for HTTP basic auth."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def find_credentials(host: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for ``host`` (``registry[:port]``), or None when nothing is configured."""
    env = os.environ if environ is None else environ
    return (
        _from_host_env(host, env)
        or _from_global_env(host, env)
        or _from_docker_config(host, docker_config_path(env), env)
    )


def _env_name(host: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", host.upper())


def _from_host_env(host: str, env: Mapping[str, str]) -> Credentials | None:
    prefix = f"CROSSDOCK_REGISTRY_{_env_name(host)}"
    return _pair_from_env(env, f"{prefix}_USERNAME", f"{prefix}_PASSWORD")


def _from_global_env(host: str, env: Mapping[str, str]) -> Credentials | None:
    only_for = env.get("CROSSDOCK_REGISTRY_HOST")
    if only_for and only_for.strip() != host:
        return None
    return _pair_from_env(env, "CROSSDOCK_REGISTRY_USERNAME", "CROSSDOCK_REGISTRY_PASSWORD")


def _pair_from_env(env: Mapping[str, str], user_key: str, password_key: str) -> Credentials | None:
    username, password = env.get(user_key), env.get(password_key)
    if username is None and password is None:
        return None
    if not username or password is None:
        raise ConfigError(
            f"{user_key} and {password_key} must be set together",
            hint="set both environment variables, or neither",
        )
    return Credentials(username, password, source=f"environment ({user_key})")


def docker_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the docker CLI keeps ``config.json``."""
    env = os.environ if environ is None else environ
    folder = env.get("DOCKER_CONFIG")
    if folder:
        return Path(folder) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def _from_docker_config(host: str, path: Path, env: Mapping[str, str]) -> Credentials | None:
    if not path.is_file():
        return None
    try:
        config: object = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # RecursionError: nested too deep
        raise ConfigError(
            f"cannot read docker config {path}: {type(err).__name__}",
            hint=_FIX_CONFIG,
        ) from err
    if not isinstance(config, dict):
        raise ConfigError(
            f"docker config {path} is a JSON {type(config).__name__}, not an object",
            hint=_FIX_CONFIG,
        )
    keys = _config_keys(host)
    helpers = _table(config, "credHelpers", path)
    for key in keys:
        if key in helpers:
            return run_credential_helper(str(helpers[key]), key, env)
    auths = {_strip_scheme(k): v for k, v in _table(config, "auths", path).items()}
    store = config.get("credsStore")
    if store:
        for key in keys:
            found = run_credential_helper(str(store), key, env)
            if found is not None:
                return found
    for key in keys:
        entry = auths.get(_strip_scheme(key))
        if isinstance(entry, dict) and entry.get("auth"):
            return _decode_auth(str(entry["auth"]), path, key)
    return None


def _table(config: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    """``config[key]`` (an object, or absent): docker's config.json maps hosts to entries.
    Never echoes the value (an auths entry holds a secret)."""
    value = config.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"docker config {path}: {key!r} is a JSON {type(value).__name__}, not an object",
            hint=_FIX_CONFIG,
        )
    return value


def _config_keys(host: str) -> tuple[str, ...]:
    """The spellings a config.json may use for ``host``; Docker Hub has several."""
    if host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        return _HUB_KEYS
    return (host,)


def _strip_scheme(key: str) -> str:
    """``https://host/v1/`` -> ``host``: docker login writes either form."""
    if key.startswith(("http://", "https://")):
        key = key.split("://", 1)[1]
    return key.split("/", 1)[0]


def _decode_auth(value: str, path: Path, host: str) -> Credentials:
    try:
        username, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as err:
        raise ConfigError(
            f"the auth entry for {host} in {path} is not base64 of user:password",
            hint=f"run `docker login {host}` again",
        ) from err
    if not sep:
        raise ConfigError(
            f"the auth entry for {host} in {path} has no ':' between user and password",
            hint=f"run `docker login {host}` again",
        )
    return Credentials(username, password, source=f"docker config {path}")


def run_credential_helper(
    name: str, host: str, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """Ask ``docker-credential-<name>`` (found on ``environ``'s PATH) for ``host``'s
    credentials; None if it has none."""
    program = f"docker-credential-{name}"
    env = os.environ if environ is None else environ
    executable = shutil.which(program, path=env.get("PATH", os.defpath))
    if executable is None:
        raise AuthError(
            f"docker config names credential helper {name!r} for {host}, "
            f"but {program} is not on PATH",
            hint=f"install {program}, or remove it from your docker config.json",
        )
    try:
        result = run_child(
            [executable, "get"],
            input=host.encode(),
            capture_output=True,
            text=False,  # bytes: a helper's output that is not UTF-8 is a ValueError below
            timeout=_HELPER_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise AuthError(
            f"credential helper {program} did not answer for {host} "
            f"within {_HELPER_TIMEOUT_SECONDS} s",
            hint=f"unlock its keychain, or run it by hand: echo {host} | {program} get",
        ) from err
    if result.returncode != 0:
        # Helpers print "credentials not found" on stdout and exit 1 when they know nothing;
        # their output is never echoed, since a broken helper may print a secret.
        _log.debug("credential helper %s has no credentials for %s", program, host)
        return None
    try:
        data = json.loads(result.stdout)
        username, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError) as err:
        raise AuthError(
            f"credential helper {program} answered for {host} with something that is not "
            "the expected JSON (Username, Secret)",
            hint=f"check the helper by hand: echo {host} | {program} get",
        ) from err
    return Credentials(username, secret, source=f"credential helper {program}")
