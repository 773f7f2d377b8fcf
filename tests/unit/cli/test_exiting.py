"""How the crossdock process ends (crossdock.cli.exiting): Python's exit status, atexit handlers,
flushed output and waited-for threads, without the interpreter's teardown. Real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crossdock.cli.exiting import exit_code

# `crossdock ARGS...` through the console script's entry point, with an atexit handler that
# writes a file (as the benchmark's and the tests' probes do).
_CROSSDOCK = """
import atexit, sys
marker = sys.argv[1]
atexit.register(lambda: open(marker, "w").write("atexit ran"))
sys.argv = ["crossdock", *sys.argv[2:]]
from crossdock.cli import main
main()
"""


def _crossdock(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    marker = tmp_path / "atexit.txt"
    done = subprocess.run(
        [sys.executable, "-c", _CROSSDOCK, str(marker), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, marker


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (("--version",), 0, "crossdock "),
        (("--help",), 0, "Commands"),
        (("build", "--no-such-option"), 2, "No such option"),
        (("verify", "oci:/nonexistent-crossdock-layout"), 9, "error: oci:/nonexistent"),
    ],
)
def test_the_status_output_and_atexit_handlers_are_pythons(tmp_path, args, status, said):
    done, marker = _crossdock(tmp_path, *args)
    assert done.returncode == status, done.stderr
    assert said in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert marker.read_text() == "atexit ran"


def test_a_long_output_on_a_pipe_arrives_whole(tmp_path):
    # The plan as JSON through a pipe, flushed before the process ends.
    example = Path(__file__).resolve().parents[3] / "example"
    done, _ = _crossdock(tmp_path, "plan", "-C", str(example), "--service", "api")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > 1000
    assert json.loads(done.stdout)["service"] == "api"


def test_a_thread_still_running_is_waited_for_as_python_does(tmp_path):
    script = (
        "import threading, time\n"
        "from crossdock.cli.exiting import end_process\n"
        "def work():\n"
        "    time.sleep(0.3)\n"
        "    print('the thread finished', flush=True)\n"
        "threading.Thread(target=work).start()\n"
        "end_process(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3
    assert done.stdout == "the thread finished\n"


def test_exit_codes_of_system_exit(capsys):
    assert exit_code(SystemExit()) == 0
    assert exit_code(SystemExit(None)) == 0
    assert exit_code(SystemExit(6)) == 6
    assert exit_code(SystemExit("a message")) == 1
    assert capsys.readouterr().err == "a message\n"
