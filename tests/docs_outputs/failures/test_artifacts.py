"""docs/assertions.md: an artifact of another type than expected."""

from example_flows.issue_digest import TRACKER, issue_digest
from pytest_prefect_flows import assert_artifact


def test_the_digest_is_a_table(run_flow, prefect_http):
    prefect_http.get(f"{TRACKER}/repos/acme/api/issues").respond(json=[{"number": 7, "title": "Crash"}])

    run = run_flow(issue_digest, ["acme/api"])

    assert_artifact(run, key="issue-digest", type="table")
