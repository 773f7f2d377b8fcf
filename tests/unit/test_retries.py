"""Each retry is one readable line (issue 13, point 7): what failed and when it is tried again,
never stamina's bare ``stamina.retry_scheduled`` event."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """
import stamina
import crossdock.registry.transport  # loading the registry client installs the hook
from crossdock.registry.transport import TransientRegistryError

calls = []
for attempt in stamina.retry_context(on=TransientRegistryError, attempts=3, wait_initial=0.01,
                                     wait_max=0.02, wait_jitter=0):
    with attempt:
        calls.append(1)
        if len(calls) < 3:
            raise TransientRegistryError("registry 127.0.0.1:9 answered 503 to GET /v2/")
print("done after", len(calls))
"""


def test_a_retry_prints_one_readable_line():
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    assert run.stdout.strip() == "done after 3"
    lines = run.stderr.strip().splitlines()
    assert "stamina.retry_scheduled" not in run.stderr
    assert len(lines) == 2, run.stderr
    assert lines[0].startswith("retrying in 0.0 s (retry 1): registry 127.0.0.1:9 answered 503")
    assert lines[1].startswith("retrying in 0.0 s (retry 2): ")
