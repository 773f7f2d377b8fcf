"""Whether a ``crossdock cache prune`` started now would wait: the probe that the tests of the
commands using the cache run from inside them (a hook where the command reads its entries)."""

from __future__ import annotations

from pathlib import Path

from crossdock.cachelock import locked


class _WaitsError(Exception):
    """The prune's lock found a holder."""


def _waits() -> None:
    raise _WaitsError


def prune_would_wait(cache: Path) -> bool:
    """True when something holds the lock of the cache at ``cache`` shared, so that a prune
    would wait for it (and print that it does); False when a prune would run at once. The
    prune's own lock is tried (exclusive, another open file), released at once: nothing is
    removed."""
    try:
        with locked(cache, exclusive=True, on_wait=_waits):
            return False
    except _WaitsError:
        return True
