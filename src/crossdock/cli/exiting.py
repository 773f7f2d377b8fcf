"""How the ``crossdock`` process ends: Python's exit without the interpreter's teardown.

At exit CPython frees every module and object one by one. A build answered from its record, or
a code-only rebuild, holds tens of thousands of objects (file views, records, the imported
modules of its stacks), and that teardown took 50-100 ms of runs that take 0.2-0.5 s (issue 14).
Nothing crossdock needs happens in it: what does is done here first, in Python's order. Threads
that are not daemons are waited for, ``atexit`` handlers run (a compiler child started ahead is
ended, records of the benchmark and the tests are written), and stdout and stderr are flushed;
then ``os._exit``. When one of these cannot be done here (a thread still running, a pipe that
closed), Python's own exit does everything, as before. Ctrl-C ends the process its own way
(``crossdock.cli.interrupt``).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

__all__ = ["end_process", "exit_code"]


def exit_code(stop: SystemExit) -> int:
    """The status Python exits with for ``stop``: None is 0, a number is itself, anything else
    is printed to stderr and is 1 (``sys.exit("message")``)."""
    code = stop.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def end_process(code: int) -> NoReturn:
    """Exit with ``code`` as Python would, without freeing the interpreter's objects first."""
    running = [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon and thread.is_alive()
    ]
    if running:
        sys.exit(code)  # Python waits for them, then exits
    atexit._run_exitfuncs()  # what exit runs first; it then holds none of them
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # a closed pipe: Python's exit says so and sets the status, as before
    os._exit(code)
