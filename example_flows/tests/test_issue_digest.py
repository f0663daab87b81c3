"""The issue digest, with every `requests` call answered by `prefect_http` (the same routes serve
httpx and `requests`; nothing leaves the machine).

Shows a task name meaning every mapped run (`where=` picks one by its parameters) and the digest
checked as an artifact.
"""

from __future__ import annotations

import httpx
import requests

from example_flows.issue_digest import TRACKER, issue_digest
from pytest_prefect_flows import (
    assert_artifact,
    assert_completed,
    assert_failed,
    assert_retry_delays,
    assert_task_completed,
    assert_task_failed,
    assert_task_not_run,
    assert_task_retried,
)

API_ISSUES = [{"number": 12, "title": "Timeout on login"}, {"number": 15, "title": "Slow search"}]


def issues_of(prefect_http, repo: str):
    return prefect_http.get(f"{TRACKER}/repos/{repo}/issues", params={"state": "open"})


def test_the_digest_lists_every_repository(run_flow, prefect_http):
    issues_of(prefect_http, "acme/api").respond(json=API_ISSUES)
    issues_of(prefect_http, "acme/web").respond(json=[])

    run = run_flow(issue_digest, ["acme/api", "acme/web"])

    assert run.result() == {"acme/api": 2, "acme/web": 0}
    assert_task_completed(run, "fetch_issues")  # both mapped runs
    digest = assert_artifact(run, key="issue-digest", type="markdown", contains="## acme/api (2)")
    assert "- #15 Slow search" in digest.data
    assert digest.description == "2 open issues in 2 repositories"
    assert digest.task_run is run.task("publish_digest")


def test_a_dropped_connection_is_fetched_again(run_flow, prefect_http):
    issues_of(prefect_http, "acme/api").mock(
        side_effect=[httpx.ConnectError("connection reset"), httpx.Response(200, json=API_ISSUES)]
    )
    issues_of(prefect_http, "acme/web").respond(json=[])

    run = run_flow(issue_digest, ["acme/api", "acme/web"])

    assert_completed(run)
    assert_task_retried(run, "fetch_issues", times=1, where={"repo": "acme/api"})
    assert_task_retried(run, "fetch_issues", times=0, where={"repo": "acme/web"})
    assert isinstance(
        run.task("fetch_issues", where={"repo": "acme/api"}).attempt_exceptions[1], requests.ConnectionError
    )


def test_a_tracker_that_keeps_timing_out_fails_after_every_retry(run_flow, prefect_http):
    issues_of(prefect_http, "acme/api").mock(side_effect=httpx.ReadTimeout("no answer"))

    run = run_flow(issue_digest, ["acme/api"])

    assert_failed(run, requests.Timeout)
    assert_task_failed(run, "fetch_issues", exc=requests.Timeout)
    assert_retry_delays(run, "fetch_issues", [5, 30])
    assert_task_not_run(run, "publish_digest")


def test_a_missing_repository_fails_at_once_and_nothing_is_published(run_flow, prefect_http):
    issues_of(prefect_http, "acme/api").respond(json=API_ISSUES)
    issues_of(prefect_http, "acme/gone").respond(404, json={"message": "Not Found"})

    run = run_flow(issue_digest, ["acme/api", "acme/gone"])

    assert_failed(run, requests.HTTPError, match="404")
    assert_task_failed(run, "fetch_issues", exc=requests.HTTPError, where={"repo": "acme/gone"})
    assert_task_retried(run, "fetch_issues", times=0)  # neither repository was fetched twice
    assert run.artifacts == []
