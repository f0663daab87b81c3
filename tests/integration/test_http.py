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
