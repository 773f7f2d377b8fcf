"""Waiting for a service's health path to answer, with a bound on time.

Polls ``http://127.0.0.1:PORT/PATH`` until it answers 2xx, the container stops, or time runs
out. Under QEMU an arm64 Python service takes tens of seconds to import its dependencies, so
the bound is generous and the liveness check (is the container still running?) ends the wait
early when the service has crashed.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from crossdock.errors import TargetError

__all__ = ["HealthAnswer", "HealthTimeoutError", "port_is_taken", "probe", "wait_for_health"]

# One probe must not hang on a half-started server.
_PROBE_TIMEOUT_S = 3.0
_LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class HealthAnswer:
    url: str
    status: int
    body: str
    elapsed_s: float

    @property
    def healthy(self) -> bool:
        return 200 <= self.status < 300


class HealthTimeoutError(TargetError):
    """The health path never answered 2xx; ``last`` is the last answer, if any."""

    def __init__(self, message: str, *, last: HealthAnswer | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.last = last


def health_url(port: int, path: str) -> str:
    return f"http://{_LOOPBACK}:{port}{path if path.startswith('/') else '/' + path}"


def port_is_taken(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:``port`` (it would answer our probes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((_LOOPBACK, port)) == 0


def probe(client: httpx.Client, url: str, started: float) -> HealthAnswer | None:
    """One GET of ``url``; None when nothing answers yet (refused, reset, timed out)."""
    try:
        response = client.get(url, timeout=_PROBE_TIMEOUT_S)
    except httpx.TransportError:
        return None
    return HealthAnswer(url, response.status_code, response.text, time.monotonic() - started)


def wait_for_health(
    port: int,
    path: str,
    *,
    timeout_s: float,
    alive: Callable[[], bool] | None = None,
    interval_s: float = 0.5,
) -> HealthAnswer:
    """Poll until the health path answers 2xx; raise HealthTimeoutError otherwise."""
    url = health_url(port, path)
    started = time.monotonic()
    last: HealthAnswer | None = None
    # trust_env=False: a proxy from HTTP(S)_PROXY must never see a loopback health check.
    with httpx.Client(trust_env=False) as client:
        while True:
            answer = probe(client, url, started)
            if answer is not None:
                last = answer
                if answer.healthy:
                    return answer
            elapsed = time.monotonic() - started
            if alive is not None and not alive():
                raise HealthTimeoutError(
                    f"the container stopped after {elapsed:.0f}s before {url} answered", last=last
                )
            if elapsed >= timeout_s:
                said = f" (last answer: HTTP {last.status})" if last else " (no answer at all)"
                raise HealthTimeoutError(
                    f"{url} did not answer 2xx within {timeout_s:.0f}s{said}", last=last
                )
            time.sleep(interval_s)
