"""Start-up: each command imports only what it uses (issue 14). Checked on the set of modules a
real ``crossdock`` process has imported when it exits, not on time (no timed assertions)."""

from __future__ import annotations

import json
import os
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


def test_help_lists_every_command_without_importing_any_command_module():
    completed, modules = run_crossdock("--help")
    assert completed.returncode == 0, completed.stderr
    for command in ("build", "plan", "verify", "push", "run", "doctor", "init", "version"):
        assert f"  {command} " in completed.stdout, completed.stdout
    heavy = sorted(name for name in modules if name.startswith(HEAVY))
    assert heavy == [], f"--help imported {heavy}"
    # ...listed from crossdock.cli.COMMAND_INDEX: no command module is loaded.
    loaded = sorted(name for name in modules if name.endswith("_cmd"))
    assert loaded == [], f"--help imported {loaded}"


# ``main`` after every command module is registered: the help typer renders from the commands
# themselves, to compare with the help listed from the index.
_EAGER_PROBE = """
import sys
sys.argv = ["crossdock", "--help"]
from crossdock.cli import _register_commands, main
_register_commands()
main()
"""


@pytest.mark.parametrize("columns", ["40", "80", "200"])
def test_help_from_the_index_is_the_help_of_the_registered_commands(columns):
    env = {**os.environ, "COLUMNS": columns}
    lazy = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(["--help"])],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    eager = subprocess.run(
        [sys.executable, "-c", _EAGER_PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    assert "Commands:" in eager.stdout
    assert lazy.stdout == eager.stdout


def test_the_index_names_every_registered_command_its_module_and_help():
    import typer.main
    from typer._click.utils import make_default_short_help

    from crossdock.cli import COMMAND_INDEX, _register_commands, app

    _register_commands()
    group = typer.main.get_command(app)
    registered = list(group.commands)  # type: ignore[attr-defined]
    assert registered == list(COMMAND_INDEX)
    for name, (module, summary) in COMMAND_INDEX.items():
        command = group.commands[name]  # type: ignore[attr-defined]
        callback_module = getattr(command.callback, "__module__", None)
        # A group (``cache``) has its callback in its own module too.
        assert callback_module == module, name
        for limit in range(20, 200, 7):
            assert make_default_short_help(summary, limit) == command.get_short_help_str(limit)


@pytest.mark.parametrize(
    ("args", "module", "not_loaded"),
    [
        (["build", "--help"], "crossdock.cli.build_cmd", "crossdock.cli.verify_cmd"),
        (["verify", "--help"], "crossdock.cli.verify_cmd", "crossdock.cli.build_cmd"),
        (["cache", "--help"], "crossdock.cli.cache_cmd", "crossdock.cli.run_cmd"),
    ],
)
def test_a_command_imports_its_own_module_only(args, module, not_loaded):
    completed, modules = run_crossdock(*args)
    assert completed.returncode == 0, completed.stderr
    assert module in modules
    assert not_loaded not in modules


def test_an_unknown_command_is_refused_with_a_suggestion():
    completed, _ = run_crossdock("biuld")
    assert completed.returncode == 2
    assert "No such command 'biuld'" in completed.stderr
    assert "'build'" in completed.stderr


def test_a_command_still_loads_what_it_needs():
    # The laziness is not a stub: `plan` loads the config cascade and fails on a bad project.
    completed, modules = run_crossdock("plan", "-C", "/nonexistent-crossdock-project")
    assert completed.returncode != 0
    assert "error:" in completed.stderr
    assert "crossdock.config" in modules
