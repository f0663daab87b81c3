"""`network.is_loopback` and the guard outside flow runs (no connection is made)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from prefect import flow

from pytest_prefect_flows import NetworkBlockedError
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


def test_a_udp_connect_is_not_a_connection(run_flow: Any) -> None:
    """Dask finds the machine's address by "connecting" a UDP socket to 8.8.8.8: nothing is sent."""

    @flow
    def find_own_address() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(("203.0.113.7", 80))  # TEST-NET-3; a UDP connect only picks a route
            except OSError:  # no route on this machine: the guard let it through all the same
                return "no route"
            return str(sock.getsockname()[0])

    with network_guard(block=True) as guard:
        run = run_flow(find_own_address)
    assert run.state_name == "Completed"
    assert guard.attempts == []


def test_inside_a_run_allowed_hosts_pass_and_others_are_refused(run_flow: Any) -> None:
    guard = NetworkGuard(block=True, allowed=["prefect.internal"])

    @flow
    def reach(host: str) -> None:
        guard.check(host, 443)  # what a lookup of `host` from flow code goes through

    assert run_flow(reach, "prefect.internal").state_name == "Completed"  # a `server:` backend's host
    refused = run_flow(reach, "api.example.com")
    assert isinstance(refused.exception, NetworkBlockedError)
    assert str(refused.exception).startswith(
        f"flow run {refused.name!r} tried to connect to api.example.com:443"
    )
    assert guard.attempts == [("api.example.com:443", f"flow run {refused.name!r}")]
