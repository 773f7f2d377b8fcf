"""Ctrl-C stops crossdock at once, says what state the registry is in, and takes its children
along (issue 13, point 9): a worker thread blocked in a transfer and a child process that would
run for a minute are both gone when crossdock exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_SCRIPT = """
import subprocess, sys, threading, time
from crossdock.cli import install_interrupt_handlers

install_interrupt_handlers()
child = subprocess.Popen(["sleep", "60"])
print(child.pid, flush=True)
# A non-daemon worker stuck in a long transfer: a normal exit would wait for it.
threading.Thread(target=time.sleep, args=(60,)).start()
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (reaped by init soon) counts as gone
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_sigint_stops_at_once_with_its_children():
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    assert _alive(child)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)  # a generous bound: it exits at once
    assert proc.returncode == 130
    assert "interrupted: stopped at once, transfers cancelled" in stderr
    assert "no tag moved" in stderr
    assert "Traceback" not in stderr
    # SIGTERM was sent before crossdock exited; its delivery is asynchronous: wait for it.
    for _ in range(100):
        if not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(child)


_KILLED_SCRIPT = """
import sys
from crossdock.children import run_child

# The shared launcher of uv, compilers, docker and git; the child reports its pid and waits.
run_child(["sh", "-c", "echo $$; exec sleep 60"], stdout=sys.stdout)
"""


def test_sigkill_takes_the_children_along():
    """SIGKILL cannot be caught: the children end through their parent-death signal."""
    with subprocess.Popen(
        [sys.executable, "-c", _KILLED_SCRIPT], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        try:
            assert _alive(child)
            proc.kill()
            proc.wait(timeout=20)
            for _ in range(100):  # the kernel delivers the signal asynchronously: wait for it
                if not _alive(child):
                    break
                time.sleep(0.1)
            assert not _alive(child)
        finally:
            if _alive(child):
                os.kill(child, signal.SIGKILL)


_SCRATCH_SCRIPT = """
import os, sys, threading, time
from pathlib import Path
from crossdock import scratch
from crossdock.cli import install_interrupt_handlers

install_interrupt_handlers()
where = Path(sys.argv[1])
gone = scratch.temporary_directory(dir=where, prefix="finished-")
with gone as finished:  # a block that ended normally is forgotten: nothing to remove twice
    pass
handle, partial = scratch.mkstemp(prefix=".partial-", dir=where)
os.write(handle, b"half a blob")

lines = threading.Lock()  # print writes a line and its newline apart: one line at a time

def say(path):
    with lines:
        print(path, flush=True)

def transfer():  # a worker in the middle of a download, with its own scratch folder
    with scratch.temporary_directory(dir=where, prefix="worker-") as folder:
        (folder / "layer.tar.gz.partial").write_bytes(b"x" * 1024)
        say(folder)
        time.sleep(60)

threading.Thread(target=transfer).start()
say(partial)
time.sleep(60)
"""


def test_sigint_removes_the_temporary_files_still_in_use(tmp_path):
    """os._exit runs no `finally` block: the interrupt deletes what crossdock.scratch holds."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRATCH_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        made = {Path(proc.stdout.readline().strip()), Path(proc.stdout.readline().strip())}
        assert all(path.exists() for path in made), made
        assert len(list(tmp_path.iterdir())) == 2  # the finished folder is already gone
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:  # a failed check leaves no process running into the next test
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert list(tmp_path.iterdir()) == []
