"""Unit tests are offline: any attempt to open a network connection fails the test
(cibuildwheel's mock_protection idea), so a test cannot reach the network by accident."""

from __future__ import annotations

import socket

import pytest


class NetworkAccessError(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, address: object) -> None:
        if self.family == socket.AF_UNIX:
            return original(self, address)  # type: ignore[arg-type]
        raise NetworkAccessError(f"unit test tried to connect to {address!r}")

    original = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)
