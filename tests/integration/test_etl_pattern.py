"""The seed's ETL pattern through the real plugin: concurrent extracts with `.submit`, a transform that
skips bad records with a warning, a load; asserted with the helpers on order, states and logs."""

from __future__ import annotations

import pytest

ETL_TESTS = """
from prefect import flow, get_run_logger, task
from pytest_prefect_flows import (
    assert_completed, assert_failed, assert_logged, assert_task_not_run, assert_task_order,
    assert_task_retried, assert_task_states,
)

SOURCES = {
    "orders": [{"id": 1, "amount": "10.5"}, {"id": 2, "amount": "oops"}],
    "refunds": [{"id": 3, "amount": "-4"}],
}
DESTINATION = []

@task(retries=1)
def extract(source):
    return list(SOURCES[source])

@task
def transform(records):
    clean = []
    for record in records:
        try:
            clean.append({"id": record["id"], "amount": float(record["amount"])})
        except ValueError:
            get_run_logger().warning("skipping bad record %s: amount %r", record["id"], record["amount"])
    return clean

@task
def load(rows):
    DESTINATION.extend(rows)
    get_run_logger().info("loaded %d rows", len(rows))
    return len(rows)

@flow
def etl(sources: list = ["orders", "refunds"]):
    futures = [extract.submit(source) for source in sources]
    records = [record for future in futures for record in future.result()]
    return load(transform(records))

def test_good_rows_are_loaded(run_flow):
    DESTINATION.clear()
    run = run_flow(etl)
    assert_completed(run)
    assert run.result() == 2
    assert [row["id"] for row in DESTINATION] == [1, 3]

def test_both_extracts_finish_before_transform_then_load(run_flow):
    run = run_flow(etl)
    assert sorted(t.parameters["source"] for t in run.tasks(extract)) == ["orders", "refunds"]
    assert_task_order(run, [extract, transform, load])

def test_every_task_run_goes_pending_running_completed(run_flow):
    run = run_flow(etl)
    assert [t.task_name for t in run.task_runs] == ["extract", "extract", "transform", "load"]
    for task_run in run.task_runs:
        assert_task_states(run, task_run, ["Pending", "Running", "Completed"])

def test_bad_record_is_skipped_with_a_warning(run_flow):
    run = run_flow(etl)
    assert_logged(run, r"skipping bad record 2: amount 'oops'", level="WARNING")
    assert run.task(transform).result() == [{"id": 1, "amount": 10.5}, {"id": 3, "amount": -4.0}]

def test_unknown_source_fails_extract_after_its_retry_and_nothing_loads(run_flow):
    run = run_flow(etl, ["orders", "archive"])
    failing = [t for t in run.tasks(extract) if t.parameters["source"] == "archive"][0]
    assert_failed(run, exc=KeyError, match="archive")
    assert_task_retried(run, failing, times=1)
    assert_task_not_run(run, load)
"""


def test_etl_pattern(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_etl=ETL_TESTS)
    result = pytester.runpytest_subprocess("-v")

    result.assert_outcomes(passed=5)
