"""`hang_guard` without pytest's wiring: a hand-made run log whose flow run never ends."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from pytest_prefect_flows.exceptions import FlowRunTimeoutError, UsageError
from pytest_prefect_flows.guard import FlowRunInterrupted, hang_guard
from pytest_prefect_flows.recording import FlowRunRecord, RunLog, StateEntry


def running_log(name: str = "slow-run") -> RunLog:
    run_log = RunLog()
    record = FlowRunRecord(id="1", name=name, flow_name="slow")
    record.history.append(StateEntry("Running", "RUNNING", dt.datetime.now(dt.timezone.utc), 1))
    run_log._flow_runs[record.id] = record
    return run_log


def test_stuck_run_in_main_thread_is_interrupted_with_its_timeline() -> None:
    with pytest.raises(FlowRunTimeoutError) as info, hang_guard(0.3, running_log()):
        time.sleep(30)  # interrupted: the 30 s never pass
    message = str(info.value)
    assert message.startswith("hang guard: flow run 'slow-run' (flow 'slow') did not finish within 0.3 s")
    assert "Timeline of flow run 'slow-run' (slow)" in message
    assert isinstance(info.value.__cause__, FlowRunInterrupted)


def test_stuck_run_in_another_thread_is_interrupted() -> None:
    outcome: list[BaseException] = []

    def body() -> None:
        try:
            with hang_guard(0.3, running_log("worker-run")):
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:  # Python bytecode: the async exception lands
                    time.sleep(0.01)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=body)
    worker.start()
    worker.join(20)
    assert not worker.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], FlowRunTimeoutError)
    assert "flow run 'worker-run'" in str(outcome[0])


def test_finished_runs_and_quick_blocks_are_left_alone() -> None:
    run_log = running_log()
    run_log.flow_runs[0].history.append(
        StateEntry("Completed", "COMPLETED", dt.datetime.now(dt.timezone.utc), 1)
    )
    with hang_guard(0.2, run_log):
        time.sleep(0.6)


@pytest.mark.parametrize("timeout", [0, -1, "5", True])
def test_timeout_must_be_a_positive_number(timeout: object) -> None:
    with (
        pytest.raises(UsageError, match=r"hang_guard\(timeout=.*positive number of seconds"),
        hang_guard(timeout, RunLog()),  # type: ignore[arg-type]
    ):
        pass


def test_guard_measures_real_time_while_the_clock_is_frozen() -> None:
    import prefect  # noqa: F401  (as in a flow test; imported under a frozen clock it would break)
    from freezegun import freeze_time

    with (
        freeze_time("2026-01-01T02:00:00Z"),
        pytest.raises(FlowRunTimeoutError, match=r"within 0\.3 s"),
        hang_guard(0.3, running_log()),
    ):
        time.sleep(30)
