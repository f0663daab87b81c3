"""`records(schema)` and `failure_plans(task_names)`: what they draw, how they shrink, bad arguments."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import enum
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import find, given, settings, strategies as st
from prefect import flow, task

from pytest_prefect_flows.exceptions import UsageError
from pytest_prefect_flows.runner import RunFlow
from pytest_prefect_flows.strategies import FailurePlan, PlannedFault, failure_plans, records

SCHEMA = {"id": int, "name": str, "amount": float}
QUICK = settings(max_examples=60, derandomize=True, database=None)


class Status(enum.Enum):
    NEW = "new"
    PAID = "paid"


@QUICK
@given(records(SCHEMA))
def test_rows_have_the_schema_fields_with_realistic_values(rows: list[dict[str, Any]]) -> None:
    assert len(rows) <= 20
    for row in rows:
        assert list(row) == ["id", "name", "amount"]
        assert isinstance(row["id"], int)
        assert 0 <= row["id"] < 2**31
        assert isinstance(row["name"], str)
        assert all(ch.isprintable() or ch.isspace() for ch in row["name"] if ord(ch) < 128)
        assert math.isfinite(row["amount"])


@QUICK
@given(
    records(
        {
            "id": int,
            "day": dt.date,
            "at": dt.datetime,
            "price": decimal.Decimal,
            "key": uuid.UUID,
            "status": Status,
            "paid": bool,
            "note": str | None,
            "tag": st.sampled_from(["a", "b"]),
        }
    )
)
def test_each_declared_type_draws_its_kind(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        assert isinstance(row["day"], dt.date)
        assert row["at"].tzinfo is dt.timezone.utc
        assert row["price"] == row["price"].quantize(decimal.Decimal("0.01"))
        assert isinstance(row["key"], uuid.UUID)
        assert isinstance(row["status"], Status)
        assert isinstance(row["paid"], bool)
        assert row["note"] is None or isinstance(row["note"], str)
        assert row["tag"] in ("a", "b")


@QUICK
@given(records(SCHEMA, unique_by="id", min_size=2, max_size=30))
def test_unique_by_keeps_ids_unique_within_a_batch(rows: list[dict[str, Any]]) -> None:
    assert 2 <= len(rows) <= 30
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids))


def test_without_unique_by_a_batch_can_repeat_an_id() -> None:
    rows = find(records(SCHEMA), lambda rows: len({row["id"] for row in rows}) < len(rows))
    assert rows == [{"id": 0, "name": "", "amount": 0.0}] * 2


def test_nullable_fields_draw_none_and_only_those() -> None:
    rows = find(records(SCHEMA, nullable=["amount"]), lambda rows: any(r["amount"] is None for r in rows))
    assert rows == [{"id": 0, "name": "", "amount": None}]


@QUICK
@given(records(SCHEMA, nullable=["amount"]))
def test_fields_not_nullable_are_never_none(rows: list[dict[str, Any]]) -> None:
    assert all(row["id"] is not None and row["name"] is not None for row in rows)


@pytest.mark.parametrize(
    ("kind", "is_bad"),
    [
        (int, lambda v: v == "n/a"),
        (float, lambda v: isinstance(v, float) and math.isnan(v)),
        (dt.date, lambda v: v == "2024-02-30"),
        (bool, lambda v: v == "yes"),
        (str, lambda v: isinstance(v, str) and v.startswith("\x00")),
    ],
)
def test_bad_values_include_what_dirty_feeds_carry(kind: Any, is_bad: Any) -> None:
    rows = find(records({"value": kind}, bad_values=True), lambda rows: any(is_bad(r["value"]) for r in rows))
    assert len(rows) == 1


def test_failure_plans_shrink_to_one_fault_before_the_first_task() -> None:
    plan = find(failure_plans(["extract", "load"]), lambda plan: True)
    assert plan == FailurePlan((PlannedFault("extract", "before", 1),))
    assert str(plan) == "extract fails before its body once"


@QUICK
@given(failure_plans(["extract", "transform", "load"], where=["after", "crash"], max_times=3, max_faults=2))
def test_failure_plans_stay_within_their_bounds(plan: FailurePlan) -> None:
    assert 1 <= len(plan) <= 2
    assert len(set(plan.tasks)) == len(plan.tasks)
    for fault in plan:
        assert fault.task in ("extract", "transform", "load")
        assert fault.where in ("after", "crash")
        assert 1 <= fault.times <= 3


def test_failure_plans_reach_every_task_and_place() -> None:
    strategy = failure_plans(["extract", "load"], max_times=2)
    assert find(strategy, lambda plan: plan.faults[0] == PlannedFault("load", "crash", 2))


# --- plans applied to a FaultInjector, in a real flow

RAN: list[str] = []


@task(retries=2)
def extract() -> list[int]:
    RAN.append("extract")
    return [1, 2, 3]


@task
def load(rows: list[int]) -> int:
    RAN.append("load")
    return len(rows)


@flow
def pipeline() -> int:
    return load(extract())


@contextlib.contextmanager
def fresh_run_trace() -> Iterator[list[str]]:
    """What the tasks' bodies ran, from an empty trace (kept after the block for the asserts)."""
    RAN.clear()
    yield RAN


def test_a_plan_applied_to_an_injector_fails_those_tasks(prefect_runs: Any) -> None:
    plan = FailurePlan((PlannedFault("extract", "after", 2), PlannedFault("load", "before", 1)))
    with fresh_run_trace() as ran, plan.inject() as injector:
        run = RunFlow(prefect_runs)(pipeline)
    assert [spec.fired for spec in injector.specs] == [2, 1]
    assert run.task("extract").attempts == 3
    assert run.task("load").state_name == "Failed"
    assert ran == ["extract", "extract", "extract"]


@settings(max_examples=6, derandomize=True, database=None, deadline=None)
@given(plan=failure_plans([extract, load], where=["before", "after"]))
def test_property_over_plans_with_fresh_state_per_example(plan: FailurePlan) -> None:
    from pytest_prefect_flows.recording import record_runs

    (fault,) = plan.faults
    with fresh_run_trace() as ran, record_runs() as runs, plan.inject():
        run = RunFlow(runs)(pipeline)
    bodies_run = {"before": 0, "after": fault.times}[fault.where]
    if fault.task == "extract":  # retries=2 absorb one or two failures
        assert run.state_name == "Completed"
        assert run.task("extract").attempts == fault.times + 1
        assert ran == ["extract"] * (bodies_run + 1) + ["load"]
    else:
        assert run.state_name == "Failed"
        assert ran == ["extract"] + ["load"] * min(bodies_run, 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: records({}),
            r"records\(\) takes a non-empty dict of field name -> type or strategy, got \{\}",
        ),
        (lambda: records({"id": "int"}), r"field 'id' is declared as 'int'; declare each field as a type"),
        (
            lambda: records(SCHEMA, unique_by="key"),
            r"unique_by='key'\) names fields that are not in the schema",
        ),
        (lambda: records(SCHEMA, nullable=["nme"]), r"'nme'. Fields: 'id', 'name', 'amount'"),
        (lambda: records(SCHEMA, min_size=5, max_size=2), r"needs 0 <= min_size <= max_size"),
        (lambda: failure_plans([]), r"needs at least one task name"),
        (lambda: failure_plans(["load"], where=["during"]), r"where=\['during'\]\) takes some of"),
        (lambda: failure_plans(["load"], max_times=0), r"max_times=0\) takes a positive integer"),
        (
            lambda: failure_plans(["load"], min_faults=2, max_faults=2),
            r"min_faults=2\) needs that many distinct",
        ),
        (lambda: failure_plans([42]), r"Expected a task name or a @task object, got 42"),
    ],
)
def test_bad_arguments_are_usage_errors(call: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call()
