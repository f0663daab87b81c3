"""`prefect_http` as users meet it: a flow's outbound HTTP is mocked, the backend's API is not."""

from __future__ import annotations

import pytest

EXTRACT = """
import httpx
from prefect import flow, task

@task(retries=3, retry_delay_seconds=[5, 30, 120])
def extract_orders(url):
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    return response.json()

@flow
def orders_pipeline(url="https://api.example.test/orders"):
    return extract_orders(url)
"""


def test_extract_retries_through_503_and_connect_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(orders=EXTRACT)
    pytester.makepyfile(
        """
        import httpx
        import pytest
        from orders import orders_pipeline

        def test_third_attempt_succeeds(run_flow, prefect_http):
            route = prefect_http.get("https://api.example.test/orders").mock(
                side_effect=[
                    httpx.Response(503),
                    httpx.ConnectError("connection refused"),
                    httpx.Response(200, json=[{"id": 1}]),
                ]
            )
            run = run_flow(orders_pipeline)
            assert run.state_name == "Completed"
            assert run.result() == [{"id": 1}]
            assert run.task("extract_orders").attempts == 3
            assert run.task("extract_orders").retry_delays == [5, 30]
            assert route.call_count == 3
            assert [str(call.request.url) for call in prefect_http.calls] == [
                "https://api.example.test/orders"
            ] * 3, "the backend's own API calls are not recorded"

        @pytest.mark.prefect(assert_all_called=False)
        def test_unmocked_url_is_refused_once_without_retries(run_flow, prefect_http):
            prefect_http.get("https://api.example.test/orders").respond(200, json=[])
            run = run_flow(orders_pipeline, "https://elsewhere.example.test/orders")
            assert run.state_name == "Failed"
            assert run.task("extract_orders").attempts == 1
            assert run.task("extract_orders").retry_delays == []
            assert str(run.task("extract_orders").exception) == "\\n".join([
                "GET https://elsewhere.example.test/orders is not mocked: no prefect_http route matches it."
                " Routes:",
                "  <Scheme eq 'https'> AND <Host eq 'api.example.test'> AND <Path eq '/orders'>"
                " AND <Method eq 'GET'>",
                'Add one, e.g. prefect_http.get("https://elsewhere.example.test/orders")'
                ".respond(200, json=...). A missing route is not an outage, so the task is not retried.",
            ])
            assert prefect_http.unmatched[0].url == "https://elsewhere.example.test/orders"

        @pytest.mark.prefect(assert_all_called=False)
        def test_other_failures_are_still_retried(run_flow, prefect_http):
            prefect_http.get("https://api.example.test/orders").respond(503)
            run = run_flow(orders_pipeline)
            assert run.task("extract_orders").attempts == 4
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_uncalled_routes_are_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(orders=EXTRACT)
    pytester.makepyfile(
        """
        import pytest
        from orders import orders_pipeline

        def test_one_route_unused(run_flow, prefect_http):
            prefect_http.get("https://api.example.test/orders").respond(200, json=[])
            prefect_http.post("https://api.example.test/audit", name="audit-log").respond(201)
            run_flow(orders_pipeline)

        @pytest.mark.prefect(assert_all_called=False)
        def test_opted_out(run_flow, prefect_http):
            prefect_http.get("https://api.example.test/orders").respond(200, json=[])
            prefect_http.post("https://api.example.test/audit").respond(201)
            run_flow(orders_pipeline)

        def test_failed_for_its_own_reason(run_flow, prefect_http):
            prefect_http.get("https://api.example.test/orders").respond(200, json=[])
            prefect_http.post("https://api.example.test/audit").respond(201)
            assert run_flow(orders_pipeline).result() == [{"id": 1}], "the test's own failure"
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1, failed=1)
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_failed_for_its_own_reason*")
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_one_route_unused*",
            "*UnusedRouteError: 1 mocked HTTP route(s) were never called:",
            "*'audit-log': <Scheme eq 'https'> AND <Host eq 'api.example.test'> AND <Path eq '/audit'>*POST*",
            "*Requests matched: GET https://api.example.test/orders",
            "*Requests no route matched: (none)",
            "*@pytest.mark.prefect(assert_all_called=False)*",
        ]
    )


REQUESTS_FLOW = """
import httpx
import requests
from prefect import flow, task

@task(retries=2, retry_delay_seconds=10)
def fetch_with_requests(url):
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.json()

@task
def fetch_with_httpx(url):
    return httpx.get(url, timeout=5).json()

@task
def ping(url):
    try:
        requests.get(url, timeout=5)
    except requests.Timeout as exc:
        return f"timeout: {type(exc).__name__}"
    return "answered"

@flow
def both_clients(url="https://api.example.test/orders"):
    return fetch_with_requests(url), fetch_with_httpx(url)

@flow
def requests_only(url="https://api.example.test/orders"):
    return fetch_with_requests(url)

@flow
def pinging(url="https://api.example.test/ping"):
    return ping(url)
"""

# The resolver refuses every name but loopback, and says which it was asked for: no lookup may happen.
NO_DNS_CONFTEST = """
import _socket
import pytest

@pytest.fixture(autouse=True)
def lookups(monkeypatch):
    real, asked = _socket.getaddrinfo, []

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            asked.append(host)
            raise OSError(f"no DNS in this test: {host!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(_socket, "getaddrinfo", getaddrinfo)
    yield asked
    assert asked == [], f"DNS lookups: {asked}"
"""


def test_routes_answer_requests_as_well_as_httpx(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(NO_DNS_CONFTEST)
    pytester.makepyfile(orders=REQUESTS_FLOW)
    pytester.makepyfile(
        """
        import httpx
        import pytest
        import requests
        from orders import both_clients, pinging, requests_only
        from pytest_prefect_flows import UnmockedRequestError, assert_task_failed

        def test_one_route_answers_both_clients(run_flow, prefect_http):
            route = prefect_http.get("https://api.example.test/orders").respond(json=[{"id": 1}])
            run = run_flow(both_clients)
            assert run.result() == ([{"id": 1}], [{"id": 1}])
            assert route.call_count == 2
            assert [call.request.method for call in prefect_http.calls] == ["GET", "GET"]

        def test_httpx_side_effects_reach_requests_as_requests_exceptions(run_flow, prefect_http):
            route = prefect_http.get("https://api.example.test/orders").mock(
                side_effect=[httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(200, json=[])]
            )
            run = run_flow(requests_only)
            assert run.result() == []
            task_run = run.task("fetch_with_requests")
            assert task_run.attempts == 3
            assert isinstance(task_run.attempt_exceptions[1], requests.ConnectionError)
            assert isinstance(task_run.attempt_exceptions[1].__cause__, httpx.ConnectError)
            assert isinstance(task_run.attempt_exceptions[2], requests.HTTPError)
            assert route.call_count == 3

        def test_timeouts_are_requests_timeouts(run_flow, prefect_http):
            prefect_http.get("https://api.example.test/ping").mock(side_effect=httpx.ReadTimeout)
            assert run_flow(pinging).result() == "timeout: ReadTimeout"

        @pytest.mark.prefect(assert_all_called=False)
        def test_unmocked_url_is_refused_by_name_without_retries(run_flow, prefect_http):
            prefect_http.get("https://api.example.test/orders").respond(json=[])
            run = run_flow(requests_only, "https://elsewhere.example.test/orders?page=2")
            assert_task_failed(run, "fetch_with_requests", exc=UnmockedRequestError,
                               match="GET https://elsewhere.example.test/orders[?]page=2 is not mocked")
            assert run.task("fetch_with_requests").attempts == 1

        def test_the_backend_api_passes_through(prefect_http, prefect_harness):
            assert requests.get(prefect_harness.api_url + "/health", timeout=5).json() is True

        def test_a_route_only_requests_called_counts_as_called(run_flow, prefect_http):
            prefect_http.get("https://api.example.test/orders").respond(json=[])
            prefect_http.post("https://api.example.test/audit", name="audit").respond(201)
            run_flow(requests_only)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=6, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_a_route_only_requests_called_counts_as_called*",
            "*UnusedRouteError: 1 mocked HTTP route(s) were never called:",
            "*'audit': *",
            "*Requests matched: GET https://api.example.test/orders",
        ]
    )
