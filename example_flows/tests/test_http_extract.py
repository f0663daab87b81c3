"""The paginated HTTP extraction, with every request answered by `prefect_http` (nothing leaves the machine).

Retries: connection errors and 5xx are retried (with the delays the task asks for), 4xx and invalid
payloads fail at once because `retry_condition_fn` says retrying cannot help.
"""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from example_flows.http_extract import http_extract
from pytest_prefect_flows import (
    assert_completed,
    assert_failed,
    assert_retry_delays,
    assert_task_failed,
    assert_task_retried,
)

API = "https://api.example.test"


def page(items: list[dict[str, object]], next_page: int | None) -> httpx.Response:
    return httpx.Response(200, json={"items": items, "next_page": next_page})


PAGE_1 = page([{"id": 1, "name": "kettle", "price": 25.0}], next_page=2)
PAGE_2 = page(
    [{"id": 2, "name": "teapot", "price": 18.5}, {"id": 3, "name": "cup", "price": 4}], next_page=None
)


def fetch_of(run, page_number: int):
    """The `fetch_page` task run that fetched this page."""
    return next(
        task_run for task_run in run.tasks("fetch_page") if task_run.parameters["page"] == page_number
    )


def test_follows_pages_until_next_page_is_null(run_flow, prefect_http):
    first = prefect_http.get(f"{API}/items", params={"page": "1"}).mock(return_value=PAGE_1)
    second = prefect_http.get(f"{API}/items", params={"page": "2"}).mock(return_value=PAGE_2)

    run = run_flow(http_extract, API)

    assert_completed(run)
    assert [item["name"] for item in run.result()] == ["kettle", "teapot", "cup"]
    assert first.call_count == 1
    assert second.call_count == 1
    assert [task_run.parameters["page"] for task_run in run.tasks("fetch_page")] == [1, 2]


def test_stops_at_max_pages(run_flow, prefect_http):
    prefect_http.get(f"{API}/items", params={"page": "1"}).mock(return_value=PAGE_1)

    run = run_flow(http_extract, API, max_pages=1)

    assert_completed(run)
    assert len(run.result()) == 1
    assert any("page 2 and later were not fetched" in message for message in run.messages)


def test_connection_errors_are_retried(run_flow, prefect_http):
    prefect_http.get(f"{API}/items", params={"page": "1"}).mock(return_value=PAGE_1)
    flaky = prefect_http.get(f"{API}/items", params={"page": "2"}).mock(
        side_effect=[httpx.ConnectError("connection refused"), httpx.ReadTimeout("slow"), PAGE_2]
    )

    run = run_flow(http_extract, API)

    assert_completed(run)
    assert flaky.call_count == 3
    assert_task_retried(run, fetch_of(run, 2), times=2)
    assert_retry_delays(run, fetch_of(run, 2), [2, 10])
    assert_task_retried(run, fetch_of(run, 1), times=0)


def test_server_errors_are_retried_until_retries_run_out(run_flow, prefect_http):
    down = prefect_http.get(f"{API}/items", params={"page": "1"}).mock(return_value=httpx.Response(503))

    run = run_flow(http_extract, API)

    assert_failed(run, httpx.HTTPStatusError, match="503")
    assert down.call_count == 4  # 1 attempt + retries=3
    assert_retry_delays(run, fetch_of(run, 1), [2, 10, 30])


def test_client_errors_are_not_retried(run_flow, prefect_http):
    missing = prefect_http.get(f"{API}/items", params={"page": "1"}).mock(return_value=httpx.Response(404))

    run = run_flow(http_extract, API)

    assert_task_failed(run, fetch_of(run, 1), exc=httpx.HTTPStatusError, match="404")
    assert_task_retried(run, fetch_of(run, 1), times=0)
    assert missing.call_count == 1


def test_invalid_payloads_are_not_retried(run_flow, prefect_http):
    bad = prefect_http.get(f"{API}/items", params={"page": "1"}).mock(
        return_value=httpx.Response(200, json={"items": [{"id": "one", "name": "kettle"}]})
    )

    run = run_flow(http_extract, API)

    assert_task_failed(run, fetch_of(run, 1), exc=ValidationError)
    assert_task_retried(run, fetch_of(run, 1), times=0)
    assert bad.call_count == 1
