import base64
import json
import logging
import stat

import pytest

from crossdock.errors import AuthError, ConfigError
from crossdock.registry.credentials import Credentials, docker_config_path, find_credentials

SECRET = "canary-unit-Hq2"


def write_config(folder, data):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(data))
    return {"DOCKER_CONFIG": str(folder), "PATH": ""}


def write_helper(bin_dir, name, known_host, username="helper-user"):
    """A real executable docker-credential-<name>: answers for one host, like the real ones."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\n'
        "read host\n"
        f'if [ "$host" = "{known_host}" ]; then\n'
        f'  printf \'{{"ServerURL":"%s","Username":"{username}","Secret":"{SECRET}"}}\' "$host"\n'
        "else\n"
        "  echo 'credentials not found in native keychain'; exit 1\n"
        "fi\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_auths_entry_is_decoded(tmp_path):
    auth = base64.b64encode(f"me:{SECRET}".encode()).decode()
    env = write_config(tmp_path / "d", {"auths": {"https://reg.example.com": {"auth": auth}}})
    creds = find_credentials("reg.example.com", env)
    assert creds is not None
    assert (creds.username, creds.password) == ("me", SECRET)
    assert find_credentials("other.example.com", env) is None


def test_docker_hub_uses_the_v1_index_key(tmp_path):
    auth = base64.b64encode(b"hubber:pw").decode()
    env = write_config(tmp_path / "d", {"auths": {"https://index.docker.io/v1/": {"auth": auth}}})
    creds = find_credentials("docker.io", env)
    assert creds is not None
    assert creds.username == "hubber"


def test_cred_helper_is_run_with_the_host_on_stdin(tmp_path):
    bin_dir = tmp_path / "bin"
    write_helper(bin_dir, "fake", "reg.example.com")
    env = write_config(tmp_path / "d", {"credHelpers": {"reg.example.com": "fake"}})
    env["PATH"] = str(bin_dir)
    creds = find_credentials("reg.example.com", env)
    assert creds is not None
    assert (creds.username, creds.password) == ("helper-user", SECRET)
    assert "docker-credential-fake" in creds.source


def test_creds_store_that_knows_nothing_falls_back_to_auths(tmp_path):
    bin_dir = tmp_path / "bin"
    write_helper(bin_dir, "store", "elsewhere.example.com")
    auth = base64.b64encode(b"fromauths:pw").decode()
    env = write_config(
        tmp_path / "d", {"credsStore": "store", "auths": {"reg.example.com": {"auth": auth}}}
    )
    env["PATH"] = str(bin_dir)
    creds = find_credentials("reg.example.com", env)
    assert creds is not None
    assert creds.username == "fromauths"


def test_missing_helper_is_a_clear_error(tmp_path):
    env = write_config(tmp_path / "d", {"credHelpers": {"reg.example.com": "ecr-login"}})
    env["PATH"] = str(tmp_path / "empty")
    with pytest.raises(AuthError, match="docker-credential-ecr-login is not on PATH"):
        find_credentials("reg.example.com", env)


def test_environment_variables_per_host_and_global(tmp_path):
    env = {
        "DOCKER_CONFIG": str(tmp_path / "none"),
        "CROSSDOCK_REGISTRY_127_0_0_1_5000_USERNAME": "local",
        "CROSSDOCK_REGISTRY_127_0_0_1_5000_PASSWORD": "p1",
        "CROSSDOCK_REGISTRY_USERNAME": "ci",
        "CROSSDOCK_REGISTRY_PASSWORD": "p2",
    }
    assert find_credentials("127.0.0.1:5000", env).username == "local"  # type: ignore[union-attr]
    assert find_credentials("ghcr.io", env).username == "ci"  # type: ignore[union-attr]
    env["CROSSDOCK_REGISTRY_HOST"] = "ghcr.io"
    assert find_credentials("docker.io", env) is None
    assert find_credentials("ghcr.io", env) is not None
    del env["CROSSDOCK_REGISTRY_PASSWORD"]
    with pytest.raises(ConfigError, match="must be set together"):
        find_credentials("ghcr.io", env)


def test_config_location(tmp_path):
    assert docker_config_path({"DOCKER_CONFIG": "/x"}).as_posix() == "/x/config.json"
    assert docker_config_path({"HOME": "/home/u"}).as_posix() == "/home/u/.docker/config.json"


def test_broken_config_error_does_not_echo_its_content(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "config.json").write_text('{"auths": {"h": {"auth": "' + SECRET)
    with pytest.raises(ConfigError) as error:
        find_credentials("h", {"DOCKER_CONFIG": str(folder)})
    assert SECRET not in str(error.value)


def test_secrets_are_redacted_everywhere(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    creds = Credentials("me", SECRET, source="test")
    assert SECRET not in repr(creds)
    assert SECRET not in str(creds)
    assert SECRET not in repr([creds])
    assert base64.b64decode(creds.basic_header().split()[1]).decode() == f"me:{SECRET}"
    bad = base64.b64encode(SECRET.encode()).decode()  # no ':' inside
    env = write_config(tmp_path / "d", {"auths": {"h": {"auth": bad}}})
    with pytest.raises(ConfigError) as error:
        find_credentials("h", env)
    assert SECRET not in str(error.value)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ([{"auths": {}}], "is a JSON list, not an object"),
        ({"auths": ["h"]}, "'auths' is a JSON list, not an object"),
        ({"credHelpers": "ecr-login"}, "'credHelpers' is a JSON str, not an object"),
    ],
    ids=["a-list", "auths-a-list", "cred-helpers-a-string"],
)
def test_a_docker_config_of_the_wrong_shape_is_a_config_error(tmp_path, config, words):
    env = write_config(tmp_path / "d", config)
    with pytest.raises(ConfigError, match=words) as error:
        find_credentials("h", env)
    assert str(tmp_path / "d" / "config.json") in error.value.message
