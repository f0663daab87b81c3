"""The network guard as users meet it. No packet leaves loopback, not even a DNS query: the inline
conftest fakes the resolver (`_socket.getaddrinfo`, under the guard) so `api.example.com` resolves
to a decoy HTTP server on 127.0.0.1, and fails any other name."""

from __future__ import annotations

import pytest

CONFTEST = """
import _socket
import http.server
import socket
import threading

import pytest

class Decoy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"source": "decoy"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

@pytest.fixture
def fake_dns(monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), Decoy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real = _socket.getaddrinfo
    looked_up = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in ("127.0.0.1", "localhost", "::1"):  # the backend, the decoy
            return real(host, port, *args, **kwargs)
        looked_up.append(host)
        if host == "api.example.com":
            return real("127.0.0.1", server.server_port, *args, **kwargs)
        raise OSError(f"the test's fake resolver knows no {host!r}")

    monkeypatch.setattr(_socket, "getaddrinfo", getaddrinfo)
    yield looked_up, server.server_port
    server.shutdown()
"""

TESTS = """
import httpx
import pytest
from prefect import flow, task
from pytest_prefect_flows import NetworkBlockedError, assert_completed

@task
def fetch(url):
    return httpx.get(url, timeout=5).json()

@flow
def pull(url: str):
    return fetch(url)

@pytest.mark.prefect(block_network=False)
def test_warns_and_connects_when_not_blocking(run_flow, fake_dns):
    looked_up, port = fake_dns
    run = run_flow(pull, f"http://api.example.com:{port}/data")
    assert run.result() == {"source": "decoy"}
    assert looked_up == ["api.example.com"]

def test_block_refuses_before_any_lookup(run_flow, fake_dns):
    looked_up, port = fake_dns
    run = run_flow(pull, f"http://api.example.com:{port}/data")
    assert run.state_name == "Failed"
    error = run.task("fetch").exception
    assert isinstance(error, NetworkBlockedError), repr(error)
    assert f"task run 'fetch-" in str(error)
    assert f"tried to connect to api.example.com:{port}" in str(error)
    assert "prefect_http" in str(error)
    assert looked_up == [], "refused before the resolver was asked"
    # the isolated backend keeps working: the next run completes and is recorded
    assert_completed(run_flow(pull, f"http://127.0.0.1:{port}/data"))

def test_loopback_and_the_test_itself_are_not_concerned(run_flow, fake_dns):
    looked_up, port = fake_dns
    assert run_flow(pull, f"http://localhost:{port}/data").result() == {"source": "decoy"}
    assert httpx.get(f"http://api.example.com:{port}/data").json() == {"source": "decoy"}

def test_prefect_http_mocks_are_unaffected(run_flow, prefect_http, fake_dns):
    looked_up, _ = fake_dns
    prefect_http.get("https://api.example.com/data").respond(json={"source": "mock"})
    assert run_flow(pull, "https://api.example.com/data").result() == {"source": "mock"}
    assert looked_up == []
"""


def test_network_guard(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_pull=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--prefect-block-network")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "test_pull.py::test_warns_and_connects_when_not_blocking",
            "*NetworkWarning: Flow or task code connected to 1 non-loopback host(s):",
            "*api.example.com:* (from task run 'fetch-*')",
            "*prefect_http*--prefect-block-network*",
        ]
    )
    assert result.stdout.str().count("NetworkWarning") == 1


ADVICE_TESTS = """
import urllib.request

import pytest
import requests
from prefect import flow, task

@task
def fetch_with_requests(url):
    return requests.get(url, timeout=5).json()

@task
def fetch_with_urllib(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()

@flow
def pull(url: str, client: str):
    return (fetch_with_requests if client == "requests" else fetch_with_urllib)(url)

def test_requests_without_a_route(run_flow, fake_dns):
    _, port = fake_dns
    assert run_flow(pull, f"http://api.example.com:{port}/data", "requests").result() == {"source": "decoy"}

def test_a_client_prefect_http_does_not_serve(run_flow, prefect_http, fake_dns):
    _, port = fake_dns
    assert "decoy" in run_flow(pull, f"http://api.example.com:{port}/data", "urllib").result()
"""


def test_network_warning_names_what_is_missing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_advice=ADVICE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "test_advice.py::test_requests_without_a_route",
            "*NetworkWarning: Flow or task code connected to 1 non-loopback host(s):",
            "*Missing: a prefect_http route for each URL requested from api.example.com, e.g. "
            'prefect_http.get("https://api.example.com/...").respond(json=...)*',
            "test_advice.py::test_a_client_prefect_http_does_not_serve",
            "*NetworkWarning*",
            "*prefect_http is active but never saw the requests to api.example.com: their client is "
            "neither httpx nor requests*",
        ]
    )
    assert "Mock it with the prefect_http fixture" not in result.stdout.str()
