"""Hand-made hostile files for the readers the generated tests of
tests/unit/sources/test_hostile_documents.py do not reach: uv.lock, crossdock.toml,
pyproject.toml (the service's and a local dependency's) and docker's config.json. Each is a
file a user, a checkout or a tool may hand crossdock damaged; each must end in a one-line
``CrossdockError`` with its exit code, never a traceback (a ``RecursionError``,
``UnicodeDecodeError``, ``AttributeError`` escaped before)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdock.config import load_config
from crossdock.errors import ConfigError, CrossdockError, LockError
from crossdock.registry.credentials import find_credentials
from crossdock.resolve.localprojects import project_name
from crossdock.resolve.lockfile import read_lock

PACKAGE = "version = 1\n[[package]]\nversion = '1'\n"


@pytest.mark.parametrize(
    "text",
    [
        b"version = 1\n# \xff\xfe not UTF-8\n",
        b"version = 1\npackage = 5\n",
        b"version = 1\npackage = { name = 'a' }\n",
        PACKAGE.encode() + b"name = 5\n",
        PACKAGE.encode() + b"name = ['a']\n",
        PACKAGE.encode() + b"name = 'a'\nsdist = { url = 5 }\n",
        PACKAGE.encode() + b"name = 'a'\nsdist = { path = ['x'] }\n",
        b"version = 1\nx = " + b"[" * 5000,
    ],
    ids=[
        "not-utf8",
        "packages-an-int",
        "packages-a-table",
        "name-an-int",
        "name-a-list",
        "sdist-url-an-int",
        "sdist-path-a-list",
        "nested-too-deep",
    ],
)
def test_a_damaged_lock_is_a_lock_error(tmp_path, text):
    (tmp_path / "uv.lock").write_bytes(text)
    with pytest.raises(LockError) as caught:
        read_lock(tmp_path)
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == 3


def _service(root: Path) -> Path:
    (root / "backend" / "api").mkdir(parents=True)
    (root / "backend" / "api" / "pyproject.toml").write_text('[project]\nname = "api"\n')
    return root / "backend" / "api" / "pyproject.toml"


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("crossdock.toml", b"platforms = ['\xff']\n"),
        ("crossdock.toml", b"a = " + b"[" * 5000),
        ("crossdock.toml", b"a = " + b"{b = " * 5000),
        ("pyproject.toml", b'[project]\nname = "\xff"\n'),
        ("pyproject.toml", b"a = " + b"[" * 5000),
        ("pyproject.toml", b"project = 'api'\n"),
        ("pyproject.toml", b"[project]\nname = 'api'\n[tool]\n[tool.uv]\nx = 1\n"),
        ("pyproject.toml", b"tool = 5\n[project]\nname = 'api'\n"),
        ("pyproject.toml", b"[project]\nname = 'api'\n[tool]\nuv = 5\n"),
    ],
    ids=[
        "crossdock-not-utf8",
        "crossdock-arrays-too-deep",
        "crossdock-tables-too-deep",
        "pyproject-not-utf8",
        "pyproject-too-deep",
        "pyproject-project-a-string",
        "pyproject-valid",
        "pyproject-tool-an-int",
        "pyproject-uv-an-int",
    ],
)
def test_a_damaged_settings_file_is_a_config_error_or_read(tmp_path, file, text):
    pyproject = _service(tmp_path)
    (pyproject if file == "pyproject.toml" else tmp_path / file).write_bytes(text)
    try:
        load_config(project_dir=tmp_path, service="api", environ={})
    except CrossdockError as err:
        assert isinstance(err, ConfigError), err
        assert "\n" not in err.message
        assert err.exit_code == 2


@pytest.mark.parametrize(
    "text",
    [b"[" * 100_000, b'{"auths": ' + b'{"a": ' * 100_000],
    ids=["arrays-too-deep", "objects-too-deep"],
)
def test_a_docker_config_nested_too_deep_is_a_config_error(tmp_path, text):
    (tmp_path / "config.json").write_bytes(text)
    with pytest.raises(ConfigError, match="cannot read docker config") as caught:
        find_credentials("registry.example.test", {"DOCKER_CONFIG": str(tmp_path)})
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    "text",
    [b"project = 'lib'\n", b"[project]\nname = '\xff'\n", b"a = " + b"[" * 5000],
    ids=["project-a-string", "not-utf8", "too-deep"],
)
def test_a_local_project_with_a_damaged_pyproject_is_named_after_its_folder(tmp_path, text):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "pyproject.toml").write_bytes(text)
    assert project_name(tmp_path / "lib") == "lib"
