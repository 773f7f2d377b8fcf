"""Unit tests are offline: any attempt to open a network connection fails the test
(cibuildwheel's mock_protection idea), so a test cannot reach the network by accident.

One exception: a test that asks for the ``registry`` fixture (an in-process OCI registry,
tests/support/registry.py) may connect to loopback addresses (127.0.0.1, ::1), and only there:
everything else is still refused."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.registry import InProcessRegistry

LOOPBACK = frozenset({"127.0.0.1", "::1"})


class NetworkAccessError(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    loopback_allowed = "registry" in request.fixturenames

    def refuse(self: socket.socket, address: object) -> None:
        if self.family == socket.AF_UNIX:
            return original(self, address)  # type: ignore[arg-type]
        if (
            loopback_allowed
            and self.family in (socket.AF_INET, socket.AF_INET6)
            and isinstance(address, tuple)
            and address[0] in LOOPBACK
        ):
            return original(self, address)
        raise NetworkAccessError(f"unit test tried to connect to {address!r}")

    original = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def registry() -> Iterator[InProcessRegistry]:
    """An OCI registry served over HTTP on 127.0.0.1 in this process, for this test alone."""
    with InProcessRegistry() as served:
        yield served
