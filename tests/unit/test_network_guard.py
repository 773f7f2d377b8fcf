"""The unit tests' network guard (tests/unit/conftest.py): no connection leaves a unit test,
except to loopback for a test that uses the in-process registry."""

from __future__ import annotations

import socket

import pytest


def _connect(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect((host, port))


def test_without_the_registry_even_loopback_is_refused():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with pytest.raises(AssertionError, match="unit test tried to connect"):
            _connect("127.0.0.1", port)


def test_with_the_registry_loopback_is_reachable_and_nothing_else(registry):
    host, port = registry.host.rsplit(":", 1)
    _connect(host, int(port))
    # TEST-NET-1 (RFC 5737): never routed; refused by the guard before any packet is sent.
    with pytest.raises(AssertionError, match="unit test tried to connect"):
        _connect("192.0.2.1", 80)
