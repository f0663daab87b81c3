"""Subflows (one flow run per region under the parent) and an async flow."""

from __future__ import annotations

import pytest

from example_flows.composition import company_report, probe_services, region_report
from pytest_prefect_flows import (
    assert_completed,
    assert_failed,
    assert_task_failed,
    assert_task_retried,
)


def test_one_subflow_per_region(run_flow):
    run = run_flow(company_report, ["emea", "amer", "apac"])

    assert_completed(run)
    assert run.result() == {"emea": 242.75, "amer": 312.0, "apac": 55.5, "total": 610.25}
    assert [subflow.flow_name for subflow in run.subflows] == ["region-report"] * 3
    assert [subflow.parameters["region"] for subflow in run.subflows] == ["emea", "amer", "apac"]
    assert len(run.tasks("fetch_region_sales")) == 3  # task runs of subflows count too
    assert run.task_runs == []  # the parent itself runs no task


def test_a_subflow_retries_its_own_task(run_flow, fail_task):
    fail_task("fetch_region_sales", times=1, exc=TimeoutError("slow"), when=lambda p: p["region"] == "amer")

    run = run_flow(company_report, ["emea", "amer"])

    assert_completed(run)
    amer = next(subflow for subflow in run.subflows if subflow.parameters["region"] == "amer")
    assert_task_retried(amer, "fetch_region_sales", times=1)


def test_a_failing_subflow_fails_the_parent(run_flow):
    run = run_flow(company_report, ["emea", "mars"])

    assert_failed(run, KeyError, match="unknown region 'mars'")
    failed = run.subflows[-1]
    assert failed.parameters == {"region": "mars"}
    assert_task_failed(failed, "fetch_region_sales", exc=KeyError)
    assert failed.task("fetch_region_sales").attempts == 3


def test_a_subflow_runs_alone_too(run_flow):
    run = run_flow(region_report, "apac")

    assert run.result() == {"region_total": 55.5, "orders": 1}


def test_async_flow_runs_its_tasks_concurrently(run_flow):
    run = run_flow(probe_services, ["db", "cache", "search"])

    assert_completed(run)
    assert run.result() == {"db": 20.0, "cache": 50.0, "search": 60.0}
    probes = run.tasks("measure_latency")
    assert len(probes) == 3
    # concurrent: every probe started before the first one finished
    assert max(probe.started for probe in probes) < min(probe.ended for probe in probes)


def test_an_async_task_is_retried(run_flow, fail_task):
    fail_task("measure_latency", times=1, exc=ConnectionError("reset"), when=lambda p: p["service"] == "db")

    run = run_flow(probe_services, ["db", "cache"])

    assert_completed(run)
    db = next(probe for probe in run.tasks("measure_latency") if probe.parameters["service"] == "db")
    assert_task_retried(run, db, times=1)
    assert run.result()["db"] == 20.0


@pytest.mark.anyio
async def test_async_flow_from_an_async_test(run_flow):
    run = await run_flow.run_async(probe_services, ["db"])

    assert_completed(run)
    assert run.result() == {"db": 20.0}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
