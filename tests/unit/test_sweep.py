"""The fault sweep's pure parts: points and their labels, the report's wording, bad arguments."""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow, task

from pytest_prefect_flows.exceptions import FaultSweepError, UsageError
from pytest_prefect_flows.sweep import Fault, FaultPoint, FaultSweep, SweepPoint, SweepReport
from pytest_prefect_flows.sweep.points import parameters_key
from pytest_prefect_flows.sweep.report import describe_difference


class Connection:
    pass


def test_parameters_key_leaves_memory_addresses_out() -> None:
    assert parameters_key({"db": Connection(), "n": 1}) == parameters_key({"n": 1, "db": Connection()})


def test_a_task_that_ran_once_is_labelled_by_its_name_and_a_repeated_one_by_its_index() -> None:
    assert FaultPoint("load", 0).label == "load"
    assert str(Fault(FaultPoint("extract", 2, runs_of_task=3), "after")) == "extract[2] [after]"
    assert str(Fault(FaultPoint("load", 0), "before", times=2)) == "load [before x2]"


def test_rows_are_described_by_count_and_the_duplicates() -> None:
    clean = [(0, "ROW-0"), (1, "ROW-1")]
    summary, details = describe_difference(clean, [*clean, (0, "ROW-0")])
    assert summary == "3 rows, clean run 2 rows: duplicates (0, 'ROW-0')"
    assert "duplicated: (0, 'ROW-0')  (2 copies, clean run has 1)" in details


def test_other_observations_are_described_by_their_values() -> None:
    summary, _ = describe_difference({"sent": 1}, {"sent": 2})
    assert summary == "observed {'sent': 2}, clean run {'sent': 1}"


def point(label: str, problem: str | None) -> SweepPoint:
    return SweepPoint(
        (Fault(FaultPoint(label, 0), "after"),), "Failed", "Completed", None, problem is None, problem
    )


def test_assert_recovered_lists_every_failing_point() -> None:
    report = SweepReport(
        "etl", [], [point("extract", None), point("load", "6 rows, clean run 3 rows")], 1.25, 5
    )
    with pytest.raises(FaultSweepError) as raised:
        report.assert_recovered()
    lines = str(raised.value).splitlines()
    assert lines[:2] == [
        "fault sweep of 'etl': 2 points, 5 flow runs in 1.2 s, 1 failed:",
        "  load [after]: 6 rows, clean run 3 rows",
    ]
    assert raised.value.problems == ["load [after]: 6 rows, clean run 3 rows"]
    assert "extract [after]  Failed     Completed  ok" in report.table()


@task
def noop() -> None:
    pass


@flow
def tiny() -> None:
    noop()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"modes": ("later",)}, r"modes=\('later',\)\) takes some of \('before', 'after', 'crash'\)"),
        ({"max_points": 0}, r"max_points=0\) takes how many points"),
        ({"setup": "reset"}, r"setup='reset'\) takes a function with no arguments"),
        ({"check": 3}, r"check=3\) takes a function of \(baseline, observed\)"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        FaultSweep()(tiny, **arguments)


def plain() -> None:
    pass


def test_a_function_that_is_not_a_flow_is_refused() -> None:
    with pytest.raises(UsageError, match=r"fault_sweep\(\) takes a @flow or a @task, got function 'plain'"):
        FaultSweep()(plain)
