"""Run records built in the test process: states, attempts, parameters, subflows, caching, logs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, RUN_ID
from prefect.states import Cancelled

from pytest_prefect_flows import FlowRunRecord, LogView, RunFlow, RunLog, UnknownTaskError, UsageError
from pytest_prefect_flows.recording import record_runs
from pytest_prefect_flows.runner import level_number


@task
def square(x: int) -> int:
    return x * x


@task(retries=2, retry_delay_seconds=[1, 5])
def flaky(calls: list[int]) -> str:
    calls.append(1)
    if len(calls) < 3:
        raise ConnectionError(f"down {len(calls)}")
    return "up"


@task(cache_policy=INPUTS + RUN_ID, persist_result=True)
def add_one(x: int) -> int:
    return x + 1


@flow
def child(x: int) -> int:
    return square(x)


@task
def cube(x: int) -> int:
    return x**3


@flow
def child_cubes(x: int) -> int:
    return cube(x)


@flow
def nested() -> int:
    return square(2) + child_cubes(3)


def _cubes_when(enabled: bool, x: int) -> int:
    return cube(x) if enabled else x


@flow
def optional_work(x: int, square_it: bool = False, cube_it: bool = False) -> int:
    x = square(x) if square_it else x
    return _cubes_when(cube_it, x)


@flow
def fan_out() -> list[int]:
    mapped = square.map([1, 2, 3])
    submitted = square.submit(10)
    return [future.result() for future in mapped] + [submitted.result(), child(4)]


@flow
def retrying() -> str:
    return flaky([])


@flow
def broken() -> None:
    square(2)
    raise ValueError("bad input")


@flow
async def broken_async() -> None:
    await asyncio.sleep(0)
    raise KeyError("missing")


class ProcessKilled(BaseException):
    """Stands in for a signal that kills the process mid-task."""


@task
def killed() -> None:
    raise ProcessKilled("SIGKILL")


@flow
def crashing() -> None:
    killed()


@flow
def cancelling() -> Cancelled:
    return Cancelled(message="operator stopped it")


@flow
def chatty() -> None:
    get_run_logger().warning("skipped %d records", 2)
    square(3)


def test_mapped_and_submitted_runs_are_recorded_with_parameters(run_flow: RunFlow) -> None:
    run = run_flow(fan_out)

    direct = [task_run.parameters["x"] for task_run in run.task_runs]
    assert sorted(direct) == [1, 2, 3, 10]
    assert all(task_run.states == ["Pending", "Running", "Completed"] for task_run in run.task_runs)
    assert run.result() == [1, 4, 9, 100, 16]


def test_subflow_record_attaches_to_its_parent(run_flow: RunFlow, prefect_runs: RunLog) -> None:
    run = run_flow(fan_out)

    assert [subflow.flow_name for subflow in run.subflows] == ["child"]
    assert run.subflows[0].parent_id == run.id
    assert [task_run.parameters for task_run in run.subflows[0].task_runs] == [{"x": 4}]
    assert len(run.tasks(square)) == 5  # four direct runs and the subflow's
    assert prefect_runs.last is run


@task
async def echo(x: int) -> int:
    return x


@flow
async def async_child(x: int) -> int:
    return await echo(x)


@flow
async def async_parent() -> int:
    first, second = await asyncio.gather(async_child(1), async_child(2))
    return first + second


@task
def starts_a_subflow() -> int:
    return child(5)


@flow
def subflow_from_a_task() -> int:
    return starts_a_subflow.submit().result()


def test_concurrent_async_subflows_attach_to_their_parent(run_flow: RunFlow) -> None:
    run = run_flow(async_parent)

    assert [subflow.flow_name for subflow in run.subflows] == ["async-child", "async-child"]
    assert sorted(task_run.parameters["x"] for task_run in run.all_task_runs) == [1, 2]
    assert run.result() == 3


def test_subflow_started_inside_a_submitted_task_attaches_to_the_flow(run_flow: RunFlow) -> None:
    run = run_flow(subflow_from_a_task)

    assert [subflow.flow_name for subflow in run.subflows] == ["child"]
    assert run.task_names == ["starts_a_subflow", "square"]


def test_flow_called_directly_is_recorded(prefect_runs: RunLog) -> None:
    fan_out()

    assert prefect_runs.last.flow_name == "fan-out"
    assert prefect_runs.last.state_name == "Completed"
    assert len(prefect_runs.task_runs) == 5
    assert [run.flow_name for run in prefect_runs.find("child")] == ["child"]


def test_retried_task_keeps_states_attempts_delays_and_errors(run_flow: RunFlow) -> None:
    task_run = run_flow(retrying).task("flaky")

    assert task_run.states == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "Completed",
    ]  # fmt: skip
    assert (task_run.attempts, task_run.retries) == (3, 2)
    assert task_run.retry_delays == [1.0, 5.0]
    assert {attempt: str(error) for attempt, error in task_run.attempt_exceptions.items()} == {
        1: "down 1",
        2: "down 2",
    }
    assert task_run.result() == "up"


def test_retry_delays_are_the_ones_asked_for_when_the_engine_is_slow_to_stamp_the_state(
    run_flow: RunFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine reads the clock for the scheduled time and again for the state's timestamp; a
    busy process (the in-process server's thread) can put many ms between the two reads."""
    import datetime as dt

    import prefect.task_engine

    awaiting_retry = prefect.task_engine.AwaitingRetry

    def stamped_late(*args: Any, **kwargs: Any) -> Any:
        state = awaiting_retry(*args, **kwargs)
        state.timestamp += dt.timedelta(milliseconds=250)
        return state

    monkeypatch.setattr(prefect.task_engine, "AwaitingRetry", stamped_late)

    assert run_flow(retrying).task("flaky").retry_delays == [1.0, 5.0]


def test_second_run_with_same_cache_key_is_cached(run_flow: RunFlow) -> None:
    @flow
    def twice() -> None:
        add_one(41)
        add_one(41)

    first, second = run_flow(twice).tasks(add_one)

    assert (first.cached, second.cached) == (False, True)
    assert second.state_name == "Cached"
    assert second.result() == 42


def test_failed_flow_returns_a_failed_record(run_flow: RunFlow) -> None:
    run = run_flow(broken)

    assert run.state_name == "Failed"
    assert isinstance(run.exception, ValueError)
    assert run.task("square").state_name == "Completed"
    with pytest.raises(ValueError, match="bad input"):
        run.result()


def test_failed_async_flow_returns_a_failed_record(run_flow: RunFlow) -> None:
    run = run_flow(broken_async)

    assert run.state_name == "Failed"
    assert isinstance(run.exception, KeyError)


def test_task_crash_returns_a_crashed_record(run_flow: RunFlow) -> None:
    run = run_flow(crashing)

    assert (run.state_name, run.task("killed").state_name) == ("Crashed", "Crashed")
    assert "SIGKILL" in str(run.exception)


def test_cancelled_flow_returns_a_cancelled_record(run_flow: RunFlow) -> None:
    run = run_flow(cancelling)

    assert run.state_name == "Cancelled"
    assert run.states == ["Pending", "Running", "Cancelled"]


def test_run_flow_refuses_a_task_and_a_plain_function(run_flow: RunFlow) -> None:
    with pytest.raises(UsageError, match=r"got the task 'square'.*task\.fn"):
        run_flow(square, 2)
    with pytest.raises(UsageError, match="Decorate it with `@flow`"):
        run_flow(lambda: None)


def test_unknown_task_name_lists_the_names_in_the_run(run_flow: RunFlow) -> None:
    run = run_flow(fan_out)

    with pytest.raises(UnknownTaskError, match=r"no task run of 'sqare'\.\nTasks in this run: square$"):
        run.task("sqare")


def test_mapped_task_by_name_is_ambiguous(run_flow: RunFlow) -> None:
    run = run_flow(fan_out)

    with pytest.raises(UnknownTaskError, match=r"Task 'square' ran 5 times.*\.tasks\('square'\)"):
        run.task(square)


def test_timeline_has_a_row_per_attempt_with_its_error(run_flow: RunFlow) -> None:
    timeline = run_flow(retrying).timeline().splitlines()

    assert timeline[0].startswith("Timeline of flow run ")
    assert timeline[0].endswith("(retrying): Completed")
    assert timeline[1].split() == ["task", "attempt", "state", "start", "duration"]
    rows = [line.split(maxsplit=3)[:3] for line in timeline[3:]]
    assert [row[1:] for row in rows] == [
        ["1", "AwaitingRetry:"],
        ["2", "AwaitingRetry:"],
        ["3", "Completed"],
    ]
    assert "ConnectionError: down 2" in timeline[4]


def test_logs_are_kept_per_flow_run_and_per_task_run(run_flow: RunFlow) -> None:
    run = run_flow(chatty)

    assert "skipped 2 records" in run.messages
    assert run.task("square").messages == ["Finished in state Completed()"]


def test_log_view_filters_by_run_and_level(run_flow: RunFlow, prefect_logs: LogView) -> None:
    run = run_flow(chatty)
    run_flow(fan_out)

    assert prefect_logs.for_run(run).at_level("warning").messages == ["skipped 2 records"]
    assert prefect_logs.for_run(run.task("square")).messages == ["Finished in state Completed()"]
    assert len(prefect_logs.for_run(run)) < len(prefect_logs)


def test_unknown_log_level_is_a_usage_error() -> None:
    assert level_number("warning") == logging.WARNING
    with pytest.raises(UsageError, match=r"logging level .* got 'LOUD'"):
        level_number("LOUD")


def test_nested_record_runs_both_see_the_run(prefect_runs: RunLog) -> None:
    with record_runs() as inner:
        fan_out()

    assert [run.id for run in inner.top_level] == [prefect_runs.last.id]
    assert isinstance(inner.last, FlowRunRecord)
    assert inner.last is not prefect_runs.last  # separate records of the same run


def test_empty_run_log_says_no_flow_ran() -> None:
    with record_runs() as runs, pytest.raises(LookupError, match="No flow run was recorded"):
        _ = runs.last


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_run_async_from_an_async_test(run_flow: RunFlow, anyio_backend: str) -> None:
    run = await run_flow.run_async(broken_async)

    assert run.state_name == "Failed"
    assert isinstance(run.exception, KeyError)


# Assertion helpers: bad input is a usage error that names what was passed.


def test_helpers_name_a_wrong_run_argument() -> None:
    from pytest_prefect_flows import assert_completed

    with pytest.raises(UsageError, match=r"takes a FlowRunRecord .* got str 'fan_out'"):
        assert_completed("fan_out")  # type: ignore[arg-type]


def test_task_helpers_need_the_flow_runs_record(run_flow: RunFlow) -> None:
    from pytest_prefect_flows import assert_task_completed

    task_run = run_flow(retrying).task(flaky)
    with pytest.raises(UsageError, match=r"needs the flow run's record .* Pass the FlowRunRecord"):
        assert_task_completed(task_run, flaky)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a, run: a.assert_failed(run, exc="ValueError"), r"exc=\.\.\.\) takes an exception class"),
        (lambda a, run: a.assert_task_retried(run, flaky, times=-1), r"retries >= 0, got -1"),
        (lambda a, run: a.assert_task_states(run, flaky, "Completed"), r"list of state names"),
        (lambda a, run: a.assert_task_order(run, [flaky]), r"at least two tasks"),
        (lambda a, run: a.assert_retry_delays(run, flaky, "1"), r"list of seconds"),
        (lambda a, run: a.assert_logged(run, "(", level="INFO"), r"'\(' is not a valid regular expression"),
        (lambda a, run: a.assert_logged(run, "x", level="LOUD"), r"logging level .* got 'LOUD'"),
        (lambda a, run: a.assert_state(run, 3), r"takes a state name"),
    ],
    ids=["exc", "times", "states", "order", "delays", "pattern", "level", "state"],
)
def test_bad_helper_arguments_are_usage_errors(run_flow: RunFlow, call: Any, message: str) -> None:
    import pytest_prefect_flows.assertions as helpers

    run = run_flow(retrying)
    with pytest.raises(UsageError, match=message):
        call(helpers, run)


def test_task_not_run_passes_only_for_tasks_the_flow_can_call(run_flow: RunFlow) -> None:
    from pytest_prefect_flows import assert_task_not_run

    run = run_flow(optional_work, 3)
    assert_task_not_run(run, "square")  # the flow calls it when square_it=True
    assert_task_not_run(run, cube)  # through a helper function
    for task_or_name in ("sqaure", flaky):  # a typo; a task of this module the flow never calls
        with pytest.raises(
            UnknownTaskError,
            match=r"no task named '(sqaure|flaky)'.*\n.*\nTasks the flow can call: cube, square\n",
        ):
            assert_task_not_run(run, task_or_name)


def test_task_helpers_find_task_runs_in_subflows(run_flow: RunFlow) -> None:
    from pytest_prefect_flows import assert_task_states

    run = run_flow(nested)
    assert [task_run.task_name for task_run in run.task_runs] == ["square"]  # cube ran in the subflow only
    assert_task_states(run, "cube", ["Pending", "Running", "Completed"])
    assert_task_states(run, cube, ["Pending", "Running", "Completed"])
    assert run.task("cube") is run.subflows[0].task("cube")


def test_logged_level_means_exactly_that_level(run_flow: RunFlow) -> None:
    from pytest_prefect_flows import assert_logged

    run = run_flow(chatty)
    assert_logged(run, r"skipped \d records", level=logging.WARNING)
    with pytest.raises(AssertionError, match=r"at level INFO matches 'skipped"):
        assert_logged(run, r"skipped \d records", level="info")
