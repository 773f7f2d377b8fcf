"""Each retry shown as one readable line: what failed and when it is tried again.

stamina's default hook logs a bare ``stamina.retry_scheduled`` event (its details are in log
record extras that a plain stderr handler does not print). ``install`` replaces it, for the whole
process, with a hook that logs one line on the ``crossdock.retry`` logger at WARNING, so it
reaches the terminal even without logging configured (Python's last-resort handler prints the
message alone), for example::

    retrying in 1.4 s (retry 1): cannot reach registry 127.0.0.1:5555 (GET /v2/): ReadError

Messages are built from crossdock's own error messages, which never carry credentials (URLs are
redacted where they are made). When retrying gives up, the error's hint says how many attempts
were made, in the words of ``gave_up_after``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stamina.instrumentation import RetryDetails

__all__ = ["gave_up_after", "install"]

_log = logging.getLogger("crossdock.retry")
_installed = False


def _reason(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    first = str(message).splitlines()[0] if str(message) else type(error).__name__
    if not getattr(error, "message", None):
        first = f"{type(error).__name__}: {first}" if str(error) else type(error).__name__
    return first if len(first) <= 300 else first[:297] + "..."


def _on_retry(details: RetryDetails) -> None:
    _log.warning(
        "retrying in %.1f s (retry %d): %s",
        details.wait_for,
        details.retry_num,
        _reason(details.caused_by),
    )


def gave_up_after(attempts: int) -> str:
    """How a hint says that ``attempts`` attempts were made, all failed: the count made, not the
    count allowed (stamina's testing mode, or an outer loop, changes the one, never the other)."""
    return f"gave up after {attempts} attempt{'' if attempts == 1 else 's'}"


def install() -> None:
    """Make every stamina retry in this process log one readable line (idempotent)."""
    global _installed  # noqa: PLW0603 - one process-wide switch
    if _installed:
        return
    from stamina.instrumentation import set_on_retry_hooks

    set_on_retry_hooks([_on_retry])
    _installed = True
