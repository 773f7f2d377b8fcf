"""These tests run real HTTP servers on loopback: allow connections to 127.0.0.1 only, and keep
refusing everything else like the rest of the unit tests."""

from __future__ import annotations

import socket

import pytest

from tests.unit.conftest import NetworkAccessError


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def allowed(self: socket.socket, address: object) -> bool:
        if self.family == socket.AF_UNIX:
            return True
        return isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1")

    def connect(self: socket.socket, address: object) -> None:
        if not allowed(self, address):
            raise NetworkAccessError(f"unit test tried to connect to {address!r}")
        return original_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        if not allowed(self, address):
            raise NetworkAccessError(f"unit test tried to connect to {address!r}")
        return original_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
