"""Start-up: each command imports only what it uses (issue 14). Checked on the set of modules a
real ``crossdock`` process has imported when it exits, not on time (no timed assertions)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crossdock._version import __version__

# Runs the console script's entry point as `crossdock ARGS...` would, then reports the modules
# the process imported (at exit, so a command that exits through SystemExit is covered too; a
# None entry is an import refused on purpose, not a module).
_PROBE = """
import atexit, json, sys
loaded = lambda: sorted(name for name, module in sys.modules.items() if module is not None)
atexit.register(lambda: sys.stderr.write("MODULES " + json.dumps(loaded()) + "\\n"))
sys.argv = ["crossdock", *json.loads(sys.argv[1])]
from crossdock.cli import main
main()
"""

HEAVY = (
    "httpx",
    "pydantic",
    "rich.table",
    "rich.console",
    "crossdock.config",
    "crossdock.registry",
)


def run_crossdock(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    marker = [line for line in completed.stderr.splitlines() if line.startswith("MODULES ")]
    assert marker, completed.stderr
    return completed, set(json.loads(marker[-1].removeprefix("MODULES ")))


@pytest.mark.parametrize("args", [["--version"], ["version"]])
def test_version_prints_versions_without_typer_or_heavy_imports(args):
    completed, modules = run_crossdock(*args)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == f"crossdock {__version__}"
    assert lines[1].startswith("uv 0."), lines
    assert lines[2].startswith(f"Python {sys.version_info.major}.{sys.version_info.minor}.")
    assert "typer" not in modules
    assert not [name for name in modules if name.startswith(HEAVY)]


def test_version_inside_other_options_goes_through_typer_and_says_the_same():
    # `crossdock --version` after another root option still answers (the typer option).
    completed, modules = run_crossdock("--version", "--help")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0] == f"crossdock {__version__}"
    assert "typer" in modules


def test_help_lists_every_command_without_http_pydantic_or_rich_tables():
    completed, modules = run_crossdock("--help")
    assert completed.returncode == 0, completed.stderr
    for command in ("build", "plan", "verify", "push", "run", "doctor", "init", "version"):
        assert f"  {command} " in completed.stdout, completed.stdout
    heavy = sorted(name for name in modules if name.startswith(HEAVY))
    assert heavy == [], f"--help imported {heavy}"
    # ...while the command modules were all loaded (help lists them from their registration).
    assert {"crossdock.cli.build_cmd", "crossdock.cli.verify_cmd"} <= modules


def test_a_command_still_loads_what_it_needs():
    # The laziness is not a stub: `plan` loads the config cascade and fails on a bad project.
    completed, modules = run_crossdock("plan", "-C", "/nonexistent-crossdock-project")
    assert completed.returncode != 0
    assert "error:" in completed.stderr
    assert "crossdock.config" in modules
