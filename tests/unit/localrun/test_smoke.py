"""The smoke test's own logic: the code it runs in a container and how it reads the answer
(the containers themselves run in tests/integration/test_startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from crossdock.localrun.smoke import _IMPORT_CODE, _machine


def test_import_code_imports_the_modules_from_the_given_path(tmp_path):
    """The generated code, run by a real interpreter: a module only on the given path imports."""
    (tmp_path / "only_here").mkdir()
    (tmp_path / "only_here" / "__init__.py").write_text("VALUE = 1\n")
    code = _IMPORT_CODE.format(path=[str(tmp_path)], modules=["json", "only_here"])
    completed = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert _machine(completed.stdout) is not None
    missing = _IMPORT_CODE.format(path=[], modules=["only_here"])
    failed = subprocess.run(
        [sys.executable, "-I", "-c", missing], capture_output=True, text=True, check=False
    )
    assert failed.returncode != 0 and "No module named 'only_here'" in failed.stderr
    assert _machine(failed.stdout) is None


def test_machine_is_read_from_the_last_answer_line():
    answer = json.dumps({"crossdock-smoke": ["app"], "machine": "aarch64"})
    assert _machine(f"some log line\n{answer}\n") == "aarch64"
    assert _machine('{"other": 1}\n') is None
    assert _machine("") is None


def test_smoke_is_refused_with_the_buildx_backend(tmp_path):
    from typer.testing import CliRunner

    from crossdock.cli import _register_commands, app
    from crossdock.errors import ConfigError

    _register_commands()
    result = CliRunner().invoke(
        app, ["build", "-C", str(tmp_path), "--backend", "buildx", "--smoke"]
    )
    # The command raises; crossdock's entry point turns it into one line and exit code 2.
    assert isinstance(result.exception, ConfigError), result.output
    assert result.exception.exit_code == 2
    assert "--smoke is for the native backend" in str(result.exception)
