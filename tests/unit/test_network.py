"""`network.is_loopback` and the guard outside flow runs (no connection is made)."""

from __future__ import annotations

import socket

import pytest

from pytest_prefect_flows.network import NetworkGuard, is_loopback, network_guard


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST", "127.0.0.1", "127.8.9.10", "::1", "[::1]", b"127.0.0.1", "api.localhost"],
)
def test_loopback_hosts(host: str | bytes) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["api.example.com", "203.0.113.7", "2001:db8::1", "10.0.0.1", None, 443])
def test_other_hosts(host: object) -> None:
    assert not is_loopback(host)


def test_outside_flow_runs_nothing_is_refused_or_recorded() -> None:
    guard = NetworkGuard(block=True)
    guard.check("api.example.com", 443)  # the test's own code: not the guard's business
    assert guard.attempts == []
    assert guard.warning() is None


def test_the_guard_restores_socket() -> None:
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo
    with network_guard(block=True):
        assert socket.getaddrinfo is not getaddrinfo
        assert "connect" in vars(socket.socket)
    assert socket.getaddrinfo is getaddrinfo
    assert socket.socket.connect is connect
