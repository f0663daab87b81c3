"""FaultInjector and fast retries on real flow runs (isolated backend): before/after/crash faults,
retry delays recorded but not slept, argument checks, and the end-of-block check of unused faults."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prefect import flow, task
from prefect.task_engine import AsyncTaskRunEngine, SyncTaskRunEngine

from pytest_prefect_flows import RunFlow, UsageError
from pytest_prefect_flows.exceptions import InjectedCrash, InjectedFault, UnusedFaultError
from pytest_prefect_flows.faults import FaultInjector

writes: list[Any] = []


@task(retries=2, retry_delay_seconds=[60, 300])
def extract(source: str) -> str:
    writes.append(("extract", source))
    return f"rows from {source}"


@task
def load(rows: str) -> int:
    writes.append(("load", rows))
    return len(rows)


@task
async def enrich(x: int) -> int:
    writes.append(("enrich", x))
    return x + 1


@flow
def etl(source: str = "db") -> int:
    return load(extract(source))


@flow
def fan_out(values: list[int]) -> list[int]:
    return [future.result() for future in enrich.map(values)]


@flow
async def async_etl() -> int:
    return await enrich(1)


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry connection problems, never bad data (the seed's `robust_data_processing` pattern)."""
    try:
        state.result()
    except ConnectionError:
        return True
    except Exception:
        return False
    return False


@task(retries=3, retry_delay_seconds=10, retry_condition_fn=is_transient)
def process(record: dict[str, int]) -> int:
    writes.append(("process", record["value"]))
    return record["value"] * 2


@flow
def robust_data_processing(value: int = 21) -> int:
    return process({"value": value})


@flow(retries=1, retry_delay_seconds=30)
def flaky_flow() -> str:
    writes.append("flow attempt")
    if writes.count("flow attempt") == 1:
        raise ConnectionError("warehouse unreachable")
    return "done"


@pytest.fixture(autouse=True)
def _clear_writes() -> None:
    writes.clear()


@pytest.fixture
def injector() -> Any:
    with FaultInjector() as active:
        yield active


def test_task_fails_twice_then_succeeds_without_waiting(
    run_flow: RunFlow, injector: FaultInjector, long_sleeps: list[float]
) -> None:
    injector(extract, times=2, exc=ConnectionError("source down"))

    run = run_flow(etl)

    assert run.state_name == "Completed"
    record = run.task("extract")
    assert record.attempts == 3
    assert record.retry_delays == [60, 300]
    assert record.states == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "Completed",
    ]  # fmt: skip
    assert writes.count(("extract", "db")) == 1, "the body runs only on the attempt that was not failed"
    assert long_sleeps == [], "no retry delay was slept"


@pytest.mark.prefect(fast_retries=False)
def test_task_fails_twice_then_succeeds_waiting_for_real(
    run_flow: RunFlow, injector: FaultInjector, long_sleeps: list[float]
) -> None:
    injector(extract, times=2, exc=ConnectionError("source down"))

    run = run_flow(etl)

    assert run.state_name == "Completed"
    assert run.task("extract").retry_delays == [60, 300]
    assert long_sleeps == [60, 300], "the engine slept each delay (recorded here instead)"


def test_retry_condition_retries_connection_errors(run_flow: RunFlow, injector: FaultInjector) -> None:
    injector(process, times=2, exc=ConnectionError("broker away"))

    run = run_flow(robust_data_processing)

    assert run.state_name == "Completed"
    assert run.task("process").attempts == 3
    assert run.task("process").retry_delays == [10, 10]


def test_retry_condition_does_not_retry_value_errors(run_flow: RunFlow, injector: FaultInjector) -> None:
    injector(process, exc=ValueError("corrupt record"))

    run = run_flow(robust_data_processing)

    assert run.state_name == "Failed"
    assert run.task("process").attempts == 1
    assert run.task("process").retry_delays == []
    assert isinstance(run.task("process").exception, ValueError)
    assert writes == []


def test_after_runs_the_body_then_raises(run_flow: RunFlow, injector: FaultInjector) -> None:
    spec = injector.after("load", exc=OSError("ack lost"))

    run = run_flow(etl)

    assert run.state_name == "Failed"
    assert writes == [("extract", "db"), ("load", "rows from db")], "load's side effect happened"
    assert isinstance(run.task("load").exception, OSError)
    assert spec.fired == 1


def test_after_with_retries_runs_the_body_on_every_attempt(
    run_flow: RunFlow, injector: FaultInjector
) -> None:
    injector.after(extract)

    run = run_flow(etl)

    assert run.state_name == "Completed"
    assert writes.count(("extract", "db")) == 2
    assert isinstance(run.task("extract").attempt_exceptions[1], InjectedFault)


def test_default_exception_names_the_fault(run_flow: RunFlow, injector: FaultInjector) -> None:
    injector(load)

    run = run_flow(etl)

    error = run.task("load").exception
    assert isinstance(error, InjectedFault)
    assert str(error) == f"task run {run.task('load').name!r}, attempt 1: injected by fail_task('load')"


def test_times_none_fails_every_attempt(run_flow: RunFlow, injector: FaultInjector) -> None:
    spec = injector(extract, times=None, exc=ConnectionError)

    run = run_flow(etl)

    assert run.state_name == "Failed"
    assert run.task("extract").attempts == 3
    assert spec.fired == 3
    assert isinstance(run.task("extract").exception, ConnectionError)


def test_crash_marks_task_and_flow_crashed(run_flow: RunFlow, injector: FaultInjector) -> None:
    injector.crash(load)

    run = run_flow(etl)

    assert run.state_name == "Crashed"
    assert run.task("load").state_name == "Crashed"
    assert run.task("extract").state_name == "Completed"
    assert ("load", "rows from db") not in writes


def test_crash_of_a_mapped_task_on_the_thread_pool(run_flow: RunFlow, injector: FaultInjector) -> None:
    injector.crash(enrich, when=lambda params: params["x"] == 2)

    run = run_flow(fan_out, [1, 2, 3])

    assert run.state_name == "Crashed"
    records = {record.parameters["x"]: record for record in run.tasks("enrich")}
    assert records[2].state_name == "Crashed"
    assert isinstance(records[2].exception, InjectedCrash)
    # The crash stops the flow, and Prefect cancels sibling runs that had not finished yet (they
    # end Crashed, "cancelled by the runtime environment"): which ones is a race, but none of
    # them carries the injected crash.
    assert [x for x, record in records.items() if isinstance(record.exception, InjectedCrash)] == [2]
    assert all(record.state_name in {"Completed", "Crashed"} for record in records.values())


def test_crash_in_a_direct_flow_call_says_how_to_get_the_record(injector: FaultInjector) -> None:
    injector.crash("load")

    with pytest.raises(InjectedCrash, match=r"fail_task\.crash\('load'\).*run_flow\(flow\)"):
        etl()


def test_when_restricts_faults_to_matching_mapped_runs(run_flow: RunFlow, injector: FaultInjector) -> None:
    injector(enrich, exc=ValueError("bad row"), when=lambda params: params["x"] == 2)

    run = run_flow(fan_out, [1, 2, 3])

    states = {record.parameters["x"]: record.state_name for record in run.tasks("enrich")}
    assert states == {1: "Completed", 2: "Failed", 3: "Completed"}
    assert sorted(value for name, value in writes if name == "enrich") == [1, 3]


def test_async_task(run_flow: RunFlow, injector: FaultInjector) -> None:
    injector(enrich, exc=ConnectionError("x"))

    run = run_flow(async_etl)

    assert run.state_name == "Failed"
    assert isinstance(run.task("enrich").exception, ConnectionError)
    assert writes == []


def test_flow_retry_is_instant_and_its_delay_recorded(run_flow: RunFlow, long_sleeps: list[float]) -> None:
    run = run_flow(flaky_flow)

    assert run.state_name == "Completed"
    assert run.retry_delays == [30]
    assert run.attempts == 2
    assert long_sleeps == [], "the 30 s flow retry delay was not slept"


def test_engine_is_restored_when_the_block_ends() -> None:
    originals = (SyncTaskRunEngine.call_task_fn, AsyncTaskRunEngine.call_task_fn)
    with FaultInjector(check_unused=False):
        assert SyncTaskRunEngine.call_task_fn is not originals[0]
        with FaultInjector(check_unused=False):
            pass
        assert SyncTaskRunEngine.call_task_fn is not originals[0], "still patched for the outer injector"
    assert (SyncTaskRunEngine.call_task_fn, AsyncTaskRunEngine.call_task_fn) == originals


def test_unused_fault_names_the_spec_and_the_tasks_that_ran() -> None:
    injector = FaultInjector()
    injector("extrakt", times=2)
    with pytest.raises(UnusedFaultError) as info, injector:
        etl()

    message = str(info.value)
    assert "fail_task('extrakt', times=2)" in message
    assert "did you mean 'extract'?" in message
    assert "Tasks that ran: extract, load" in message
    assert "check_unused_faults=False" in message


def test_unused_check_can_be_turned_off() -> None:
    with FaultInjector(check_unused=False) as injector:
        spec = injector("never_runs")
    assert spec.fired == 0


def test_no_unused_check_when_the_block_raised() -> None:
    injector = FaultInjector()
    injector("never_runs")
    with pytest.raises(KeyError), injector:
        {}["the real failure"]


def test_spec_repr_and_fields(injector: FaultInjector) -> None:
    spec = injector.after(extract, times=None, exc=ConnectionError("down"))
    injector.check_unused = False

    assert (spec.task_name, spec.kind, spec.times, spec.fired) == ("extract", "after", None, 0)
    assert repr(spec) == "<FaultSpec after 'extract' always fired=0>"
    assert spec.call == "fail_task.after('extract', times=None, exc=ConnectionError('down'))"
    assert injector.specs == [spec]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"times": -1},
            r"fail_task\(times=-1\): times is how many matching attempts fail, a positive integer",
        ),
        ({"times": 0}, r"times=0"),
        ({"times": True}, r"times=True"),
        ({"times": "2"}, r"times='2'"),
        ({"exc": "boom"}, r"fail_task\(exc='boom'\) takes an exception instance or class"),
        ({"when": "x > 1"}, r"fail_task\(when='x > 1'\) takes a callable"),
        ({"exc": UnicodeDecodeError}, r"fail_task\(exc=UnicodeDecodeError\): the class cannot be built"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    injector = FaultInjector()
    with pytest.raises(UsageError, match=message):
        injector("extract", **kwargs)
    assert injector.specs == []


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (etl, r"injects faults into tasks, got the flow 'etl'"),
        (extract.fn, r"got function 'extract'.*Decorate the function with @task"),
        (42, r"takes a @task object or a task name, got int: 42"),
        ("", r"needs a task name"),
    ],
)
def test_bad_task(target: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        FaultInjector().crash(target)


def test_when_that_raises_is_a_usage_error_at_once(run_flow: RunFlow, injector: FaultInjector) -> None:
    injector(extract, when=lambda params: params["missing"])

    with pytest.raises(UsageError) as info:
        run_flow(etl)

    assert str(info.value).startswith(
        "The `when=` of fail_task('extract', when=<lambda>) raised KeyError('missing') for task 'extract'"
    )
    assert [run.attempts for run in run_flow._run_log.task_runs] == [1]  # not retried
    assert injector.errors == [info.value]
    injector.errors.clear()  # reported: leaving the block raises it again otherwise
    injector.check_unused = False


def test_works_with_asyncio_run_of_an_async_flow(injector: FaultInjector) -> None:
    injector(enrich, times=1, exc=ConnectionError)

    state = asyncio.run(async_etl(return_state=True))  # type: ignore[call-overload]

    assert state.is_failed()
