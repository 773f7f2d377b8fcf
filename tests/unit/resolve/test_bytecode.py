import importlib.util
import sys

import pytest

from crossdock.errors import ToolError
from crossdock.layers import entries_from_tree
from crossdock.resolve.bytecode import bytecode_python, compile_bytecode, find_host_python

HOST_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def _tree(root):
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("VALUE = {'b', 'a'}\n")
    (root / "pkg" / "broken.py").write_text("print 'python 2'\n")
    return root


def test_find_host_python_checks_the_version(monkeypatch):
    monkeypatch.delenv("CROSSDOCK_BYTECODE_PYTHON", raising=False)
    assert find_host_python(HOST_VERSION) is not None
    assert find_host_python("2.1") is None
    monkeypatch.setenv("CROSSDOCK_BYTECODE_PYTHON", "/nonexistent/python")
    assert find_host_python(HOST_VERSION) is not None  # a bad override is skipped, not fatal


def test_compile_writes_unchecked_hash_pycs_reproducibly(tmp_path):
    first = _tree(tmp_path / "one")
    second = _tree(tmp_path / "two")
    compile_bytecode(first, sys.executable, image_dir="/opt/packages")
    compile_bytecode(second, sys.executable, image_dir="/opt/packages")
    tag = sys.implementation.cache_tag
    pyc = first / "pkg" / "__pycache__" / f"__init__.{tag}.pyc"
    data = pyc.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    # PEP 552 flags: bit 0 = hash-based, bit 1 = check_source; unchecked-hash is 0b01.
    assert int.from_bytes(data[4:8], "little") == 0b01
    assert data == (second / "pkg" / "__pycache__" / pyc.name).read_bytes()
    # A module that does not compile simply gets no pyc (as pip leaves it), no failure.
    assert not (first / "pkg" / "__pycache__" / f"broken.{tag}.pyc").exists()


def test_compile_failure_of_the_interpreter_is_an_error(tmp_path):
    with pytest.raises(ToolError, match="compiling bytecode"):
        compile_bytecode(_tree(tmp_path), "/bin/false", image_dir="/x")


def test_layers_keep_bytecode_only_when_asked(tmp_path):
    tree = _tree(tmp_path / "t")
    compile_bytecode(tree, sys.executable, image_dir="/x")
    without = {e.path for e in entries_from_tree(tree, "x")}
    with_bytecode = {e.path for e in entries_from_tree(tree, "x", keep_bytecode=True)}
    assert not any("__pycache__" in p for p in without)
    assert any(p.endswith(".pyc") for p in with_bytecode)
    assert without < with_bytecode


def _other_host_python() -> tuple[str, str]:
    """Debian 12's /usr/bin/python3 (3.11), when it is another version than this test's."""
    import subprocess

    exe = "/usr/bin/python3"
    try:
        version = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no /usr/bin/python3")
    if version == HOST_VERSION:
        pytest.skip("/usr/bin/python3 is this test's own version")
    return exe, version


def test_bytecode_python_asks_uv_when_the_host_has_none(monkeypatch, tmp_path):
    """No python3.X on PATH under its versioned name, but uv finds one (as `python3`)."""
    exe, version = _other_host_python()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(exe)
    monkeypatch.setenv("PATH", str(bin_dir))
    for name in ("CROSSDOCK_BYTECODE_PYTHON", "UV_PYTHON", "VIRTUAL_ENV", "PYENV_VERSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    assert find_host_python(version) is None
    found = bytecode_python(version)
    assert found.executable is not None
    assert found.how == f"uv python find {version}"


def test_bytecode_python_says_why_uv_installed_none(monkeypatch, tmp_path):
    """Downloads not allowed (as on these machines): uv's own reason reaches the warning."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.delenv("CROSSDOCK_BYTECODE_PYTHON", raising=False)
    monkeypatch.delenv("UV_PYTHON", raising=False)
    found = bytecode_python("3.8")
    assert found.executable is None
    assert found.how.startswith("no Python 3.8 on this machine, and `uv python install 3.8` failed")
    assert "not allowed" in found.how
