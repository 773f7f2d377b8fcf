"""Credentials given as URL userinfo are refused everywhere a registry is named (issue 13,
point 6), and the secret is never repeated: not in the error, not in `crossdock plan`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossdock.errors import ConfigError
from crossdock.registry.reference import Mirrors, Reference
from crossdock.transports import parse_image_name

CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
EXAMPLE = Path(__file__).resolve().parents[2] / "example"
SECRET = "s3cretPW"


@pytest.mark.parametrize(
    "text",
    [
        f"alice:{SECRET}@127.0.0.1:5555/demo/api:latest",
        f"docker://alice:{SECRET}@ghcr.io/acme/api",
        f"https://alice:{SECRET}@registry.example.com/acme/api",
        f"alice:{SECRET}@registry.example.com",
        f"{SECRET}@registry.example.com/acme/api",
    ],
)
def test_userinfo_in_a_reference_is_refused_without_repeating_it(text):
    for parse in (Reference.parse, parse_image_name):
        with pytest.raises(ConfigError) as caught:
            parse(text)
        assert "carries credentials" in caught.value.message
        assert "docker login" in (caught.value.hint or "")
        assert SECRET not in str(caught.value)


def test_a_digest_is_not_mistaken_for_credentials():
    digest = "sha256:" + "a" * 64
    assert str(Reference.parse(f"python@{digest}").digest) == digest
    assert Reference.parse(f"127.0.0.1:5555/a/b@{digest}").registry == "127.0.0.1:5555"


@pytest.mark.parametrize(
    "hosts",
    [
        {"docker.io": f"alice:{SECRET}@127.0.0.1:5555"},
        {"docker.io": 5},
        {"docker.io": "not a host!"},
    ],
)
def test_bad_mirror_values_are_refused(hosts):
    with pytest.raises(ConfigError) as caught:
        Mirrors(hosts)
    assert SECRET not in str(caught.value)
    if all(isinstance(v, str) for v in hosts.values()):
        with pytest.raises(ConfigError):
            Mirrors.parse(",".join(f"{k}={v}" for k, v in hosts.items()))


def _crossdock(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CROSSDOCK, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **env},
        timeout=120,
        check=False,
    )


def test_the_cli_refuses_credentials_in_push_verify_and_mirrors(tmp_path):
    runs = [
        _crossdock(
            "build",
            "-C",
            str(EXAMPLE),
            "--service",
            "api",
            "--push",
            f"bob:{SECRET}@127.0.0.1:5555/x/api:latest",
        ),
        _crossdock("verify", f"bob:{SECRET}@127.0.0.1:5555/x/api:latest"),
        _crossdock(
            "plan",
            "-C",
            str(EXAMPLE),
            "--service",
            "api",
            CROSSDOCK_REGISTRY_MIRRORS=f"docker.io=bob:{SECRET}@127.0.0.1:5555",
        ),
    ]
    for run in runs:
        assert run.returncode == 2, run.stderr
        assert "carries credentials" in run.stderr
        assert SECRET not in run.stdout + run.stderr
        assert "Traceback" not in run.stderr
