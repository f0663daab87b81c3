"""Assertion helpers as users meet them: one passing and one failing test per helper, run through the
real plugin; each failure's output is checked for its message and the run's timeline."""

from __future__ import annotations

import pytest

RUN_STATES = """
from prefect import flow, task
from prefect.states import Cancelled
from pytest_prefect_flows import (
    assert_cancelled, assert_completed, assert_crashed, assert_failed, assert_state,
)

@task
def parse(text):
    return int(text)

@flow
def convert(text: str = "7"):
    return parse(text)

class Killed(BaseException):
    pass

@task
def stop():
    raise Killed("process killed")

@flow
def crashing():
    stop()

@flow
def cancelling():
    return Cancelled(message="operator stopped it")

def test_completed_passes(run_flow):
    assert_completed(run_flow(convert))

def test_completed_fails(run_flow):
    assert_completed(run_flow(convert, "seven"))

def test_failed_passes(run_flow):
    assert_failed(run_flow(convert, "seven"), exc=ValueError, match="invalid literal")

def test_failed_fails(run_flow):
    assert_failed(run_flow(convert, "seven"), exc=KeyError)

def test_crashed_passes(run_flow):
    assert_crashed(run_flow(crashing))

def test_crashed_fails(run_flow):
    assert_crashed(run_flow(convert))

def test_cancelled_passes(run_flow):
    assert_cancelled(run_flow(cancelling))

def test_cancelled_fails(run_flow):
    assert_cancelled(run_flow(crashing))

def test_state_of_a_returned_state_passes():
    assert_state(convert(return_state=True), "Completed")

def test_state_fails(run_flow):
    assert_state(run_flow(convert, "seven").task("parse"), "Completed")
"""

TASK_STATES = """
from collections import Counter
from prefect import flow, task
from prefect.cache_policies import INPUTS, RUN_ID
from pytest_prefect_flows import (
    assert_task_cached, assert_task_completed, assert_task_failed, assert_task_not_run,
    assert_task_retried, assert_task_states,
)

CALLS = Counter()

@task(retries=2, retry_delay_seconds=[2, 8])
def fetch(source):
    CALLS[source] += 1
    if source.startswith("flaky") and CALLS[source] < 3:
        raise ConnectionError(f"{source} is down")
    return [source]

@task
def validate(rows):
    if not rows:
        raise ValueError("no rows to validate")
    return rows

@task(cache_policy=INPUTS + RUN_ID, persist_result=True)
def lookup(key):
    return key * 2

@task
def alert(message):
    return message

@flow
def pipeline(source: str = "stable", rows: list | None = None, notify: bool = False):
    fetched = fetch(source)
    validate(fetched if rows is None else rows)
    lookup(1)
    lookup(1)
    if notify:
        alert("done")

def test_task_completed_passes(run_flow):
    assert_task_completed(run_flow(pipeline), fetch)

def test_task_completed_fails(run_flow):
    assert_task_completed(run_flow(pipeline, rows=[]), "validate")

def test_task_failed_passes(run_flow):
    assert_task_failed(run_flow(pipeline, rows=[]), validate, exc=ValueError, match="no rows")

def test_task_failed_fails(run_flow):
    assert_task_failed(run_flow(pipeline), "validate")

def test_task_retried_passes(run_flow):
    assert_task_retried(run_flow(pipeline, "flaky-a"), fetch, times=2)

def test_task_retried_fails(run_flow):
    assert_task_retried(run_flow(pipeline, "flaky-b"), fetch, times=1)

def test_task_not_run_passes(run_flow):
    assert_task_not_run(run_flow(pipeline), alert)

def test_task_not_run_fails(run_flow):
    assert_task_not_run(run_flow(pipeline, notify=True), "alert")

def test_task_states_passes(run_flow):
    assert_task_states(run_flow(pipeline, "flaky-c"), fetch, [
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "Completed",
    ])

def test_task_states_fails(run_flow):
    assert_task_states(run_flow(pipeline), fetch, ["Pending", "Running", "Failed"])

def test_task_cached_passes(run_flow):
    run = run_flow(pipeline)
    assert_task_cached(run, run.tasks(lookup)[1])

def test_task_cached_fails(run_flow):
    run = run_flow(pipeline)
    assert_task_cached(run, run.tasks(lookup)[0])

def test_unknown_task_name_is_an_error(run_flow):
    assert_task_completed(run_flow(pipeline), "fetch_data")
"""

ORDER_DELAYS_LOGS = """
import threading
from collections import Counter
from prefect import flow, get_run_logger, task
from pytest_prefect_flows import assert_logged, assert_retry_delays, assert_task_order

CALLS = Counter()

@task
def extract(n):
    return list(range(n))

@task
def transform(rows):
    get_run_logger().warning("dropped %d bad rows", 1)
    return rows[1:]

@task
def load(rows):
    LOADED.set()
    return len(rows)

LOADED = threading.Event()

@task
def pause():
    assert LOADED.wait(timeout=60)  # completes only once load has run: no sleep decides the order

@task(retries=2, retry_delay_seconds=[3, 10])
def upload(name):
    CALLS[name] += 1
    if CALLS[name] < 3:
        raise TimeoutError("bucket busy")

@flow
def etl():
    load(transform(extract(3)))

@flow
def side_by_side():
    LOADED.clear()
    slow = pause.submit()
    quick = load.submit([1])
    slow.wait()
    quick.wait()

@flow
def publish(name: str):
    upload(name)

def test_task_order_passes(run_flow):
    assert_task_order(run_flow(etl), [extract, transform, "load"])

def test_task_order_fails(run_flow):
    assert_task_order(run_flow(side_by_side), ["pause", "load"])

def test_retry_delays_passes(run_flow):
    assert_retry_delays(run_flow(publish, "a"), upload, [3, 10])

def test_retry_delays_fails(run_flow):
    assert_retry_delays(run_flow(publish, "b"), upload, [3, 3])

def test_logged_passes(run_flow):
    assert_logged(run_flow(etl), r"dropped \\d+ bad rows", level="WARNING")

def test_logged_fails(run_flow):
    assert_logged(run_flow(etl), r"dropped .* rows", level="ERROR")
"""


def failure_of(result: pytest.RunResult, test_name: str) -> pytest.LineMatcher:
    """The `E ...` lines of one failing test's report section."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.strip("_ ") == test_name)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("____")), len(lines))
    return pytest.LineMatcher([line for line in lines[start:end] if line.startswith("E ")])


def test_run_state_helpers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RUN_STATES)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--assert=plain")

    result.assert_outcomes(passed=5, failed=5)
    failure_of(result, "test_completed_fails").fnmatch_lines(
        [
            "E * AssertionError: Expected flow run '*' (convert) to be Completed; it is Failed.",
            "E *  expected:  Completed",
            "E *  actual:    Failed(*Flow run encountered an exception: ValueError: invalid literal*)",
            "E *  exception: ValueError: invalid literal for int() with base 10: 'seven'",
            "E * Task run 'parse-*' (parse): Failed(*Task run encountered an exception*) after 1 attempt(s)",
            "E *  exception: ValueError: invalid literal for int() with base 10: 'seven'",
            "E *  its log lines: in 'Captured Prefect flow-run logs' below",
            "E * Timeline of flow run '*' (convert): Failed",
            "E *  task * attempt  state * start * duration",
            "E *  [[]flow] convert  1 * Failed: Flow run encountered an exception: ValueError: * +0.*s  0.*s",
            "E *    parse-* 1 * Failed: Task run encountered an exception ValueError: * +0.*s  0.*s",
            "E * More: run.timeline(), *",
        ],
        consecutive=True,
    )
    failure_of(result, "test_failed_fails").fnmatch_lines(
        [
            "E * AssertionError: Expected flow run '*' (convert) to fail with KeyError; "
            "it failed with ValueError.",
            "E *  expected:  KeyError",
            "E *  actual:    ValueError: invalid literal for int() with base 10: 'seven'",
        ],
        consecutive=True,
    )
    failure_of(result, "test_crashed_fails").fnmatch_lines(
        [
            "E * AssertionError: Expected flow run '*' (convert) to be Crashed; it is Completed.",
            "E *  expected:  Crashed",
            "E *  actual:    Completed*",
            "E *  exception: (none)",
            "E * Timeline of flow run '*' (convert): Completed",
        ],
        consecutive=True,
    )
    failure_of(result, "test_cancelled_fails").fnmatch_lines(
        [
            "E * AssertionError: Expected flow run '*' (crashing) to be Cancelled; it is Crashed.",
            "E *  expected:  Cancelled",
            "E *  actual:    Crashed('Execution was interrupted by an unexpected exception: "
            "Killed: process killed')",
            "E *  exception: Killed: process killed",
            "E * Task run 'stop-*' (stop): Crashed(*) after 1 attempt(s)",
        ],
        consecutive=True,
    )
    failure_of(result, "test_state_fails").fnmatch_lines(
        [
            "E * AssertionError: Expected task run 'parse-*' (parse) to be in state 'Completed'; "
            "it is 'Failed'.",
            "E *  expected: Completed",
            "E *  actual:   Failed(*Task run encountered an exception ValueError: *)",
            "E * Task run 'parse-*' (parse): Failed(*) after 1 attempt(s)",
            "E *  exception: ValueError: *",
            "E *  its log lines: in 'Captured Prefect flow-run logs' below",
        ],
        consecutive=True,
    )
    failure_of(result, "test_state_fails").fnmatch_lines(["E * Timeline of flow run '*' (convert): Failed"])


def test_task_helpers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TASK_STATES)
    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=6, failed=7)
    failure_of(result, "test_task_completed_fails").fnmatch_lines(
        [
            "E * AssertionError: 1 of 1 run(s) of task 'validate' did not complete.",
            "E *  expected: Completed",
            "E *  actual:   validate-*: Failed('Task run encountered an exception ValueError: "
            "no rows to validate')",
            "E * Task run 'validate-*' (validate): Failed(*) after 1 attempt(s)",
            "E *  exception: ValueError: no rows to validate",
        ],
        consecutive=True,
    )
    failure_of(result, "test_task_failed_fails").fnmatch_lines(
        [
            "E * AssertionError: Expected task run 'validate-*' (validate) to be Failed; it is Completed.",
            "E *  expected: Failed",
            "E *  actual:   Completed*",
            "E * Task run 'validate-*' (validate): Completed* after 1 attempt(s)",
        ],
        consecutive=True,
    )
    failure_of(result, "test_task_retried_fails").fnmatch_lines(
        [
            "E * AssertionError: Task run 'fetch-*' (fetch) was retried 2 time(s).",
            "E *  expected: 1 retry(s) (2 attempt(s))",
            "E *  actual:   2 retry(s) (3 attempt(s))",
            "E *  states:   Pending -> Running -> AwaitingRetry -> Retrying -> AwaitingRetry -> Retrying "
            "-> Completed",
        ],
        consecutive=True,
    )
    failure_of(result, "test_task_retried_fails").fnmatch_lines(
        [
            "E *    fetch-*  1 * AwaitingRetry: ConnectionError: flaky-b is down *",
            "E *    fetch-*  2 * AwaitingRetry: ConnectionError: flaky-b is down *",
            "E *    fetch-*  3 * Completed *",
        ],
        consecutive=True,
    )
    failure_of(result, "test_task_not_run_fails").fnmatch_lines(
        [
            "E * AssertionError: Task 'alert' ran 1 time(s).",
            "E *  expected: no run",
            "E *  actual:   alert-*: Completed*",
        ],
        consecutive=True,
    )
    failure_of(result, "test_task_states_fails").fnmatch_lines(
        [
            "E * AssertionError: Task run 'fetch-*' (fetch) went through other states.",
            "E *  expected:   Pending -> Running -> Failed",
            "E *  actual:     Pending -> Running -> Completed",
            "E *  differs at: position 2: expected 'Failed', got 'Completed'",
        ],
        consecutive=True,
    )
    failure_of(result, "test_task_cached_fails").fnmatch_lines(
        [
            "E * AssertionError: Task run 'lookup-*' (lookup) did not come from the cache.",
            "E *  expected: Cached",
            "E *  actual:   Completed* (states: Pending -> Running -> Completed)",
        ],
        consecutive=True,
    )
    failure_of(result, "test_unknown_task_name_is_an_error").fnmatch_lines(
        [
            "E *.UnknownTaskError: Flow run '*' (pipeline) has no task run of 'fetch_data'.",
            "E * Tasks in this run: fetch, validate, lookup",
        ],
        consecutive=True,
    )


def test_order_delay_and_log_helpers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ORDER_DELAYS_LOGS)
    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=3, failed=3)
    failure_of(result, "test_task_order_fails").fnmatch_lines(
        [
            "E * AssertionError: Task 'load' started before 'pause' completed.",
            "E *  expected: load starts after pause completed",
            "E *  actual:   load started at +0.*s, pause completed at +0.*s",
            "E * Timeline of flow run '*' (side-by-side): Completed",
        ],
        consecutive=True,
    )
    failure_of(result, "test_retry_delays_fails").fnmatch_lines(
        [
            "E * AssertionError: Task run 'upload-*' (upload) asked for other retry delays.",
            "E *  expected: [[]3.0, 3.0] seconds (tolerance 0.05s)",
            "E *  actual:   [[]3.0, 10.0] seconds over 3 attempt(s)",
            "E * Task run 'upload-*' (upload): Completed* after 3 attempt(s)",
            "E *  its log lines: in 'Captured Prefect flow-run logs' below",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            "*- Captured Prefect flow-run logs -*",
            "INFO     upload-* | Task run failed with exception: TimeoutError('bucket busy') - Retry 1/2 *",
        ]
    )
    failure_of(result, "test_logged_fails").fnmatch_lines(
        [
            "E * AssertionError: No log line of flow run '*' (etl) at level ERROR matches 'dropped .* rows'.",
            "E *  expected: a line at level ERROR matching 'dropped .* rows'",
            "E *  actual:   0 line(s) at level ERROR of *, none matching; last lines:",
        ],
        consecutive=True,
    )
    failure_of(result, "test_logged_fails").fnmatch_lines(["E *WARNING  transform-* | dropped 1 bad rows"])


MAPPED = """
import pytest
from prefect import flow, task
from prefect.cache_policies import INPUTS
from prefect.runtime import task_run
from pytest_prefect_flows import (
    AmbiguousTaskError, UnknownTaskError, assert_state, assert_task_cached, assert_task_failed,
    assert_task_retried, assert_task_states,
)

@task(cache_policy=INPUTS)
def fetch_issue(number):
    return {"number": number}

@task(retries=1, retry_delay_seconds=0)
def flaky(number):
    if task_run.run_count == 1 and number != 3:
        raise ConnectionError(f"reset fetching {number}")
    return number

@task
def check(number):
    if number % 2:
        raise ValueError(f"odd: {number}")
    return number

@flow
def issues(numbers: list[int]):
    return fetch_issue.map(numbers).result()

@flow
def retried(numbers: list[int]):
    return flaky.map(numbers).result()

@flow
def checked(numbers: list[int]):
    futures = check.map(numbers)
    return [future.state.name for future in futures]

def test_cached_means_every_mapped_run(run_flow):
    run_flow(issues, [1, 2, 3])
    assert_task_cached(run_flow(issues, [1, 2, 3]), "fetch_issue")
    assert_state(run_flow(issues, [1, 2]), "Cached", task=fetch_issue)

def test_cached_names_the_runs_that_were_not(run_flow):
    run_flow(issues, [1])
    assert_task_cached(run_flow(issues, [1, 2, 3]), "fetch_issue")

def test_where_picks_one_run(run_flow):
    run_flow(issues, [1])
    second = run_flow(issues, [1, 2])
    assert_task_cached(second, "fetch_issue", where={"number": 1})
    assert_state(second, "Completed", task="fetch_issue", where=lambda t: t.parameters["number"] == 2)
    run = run_flow(retried, [1, 2, 3])
    assert_task_retried(run, "flaky", times=0, where={"number": 3})
    assert_task_states(run, flaky, ["Pending", "Running", "Completed"], where={"number": 3})

def test_retried_every_run(run_flow):
    assert_task_retried(run_flow(retried, [1, 2]), "flaky", times=1)

def test_failed_every_run(run_flow):
    run = run_flow(checked, [1, 3, 4])
    assert_task_failed(run, "check", exc=ValueError, where=lambda t: t.parameters["number"] % 2)
    assert_task_failed(run, "check", exc=ValueError, match="odd")

def test_the_ambiguity_says_what_to_do(run_flow):
    run = run_flow(issues, [1, 2])
    with pytest.raises(AmbiguousTaskError) as error:
        run.task("fetch_issue")
    assert isinstance(error.value, UnknownTaskError)
    assert "name one run with `where=`" in str(error.value)
    assert run.task("fetch_issue", where={"number": 2}).parameters == {"number": 2}
    with pytest.raises(UnknownTaskError, match="where=5: task 'fetch_issue' ran 2 time"):
        run.task("fetch_issue", where=5)
"""


def test_task_names_mean_every_run_of_a_mapped_task(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MAPPED)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--assert=plain")
    result.assert_outcomes(passed=4, failed=2)
    failure_of(result, "test_cached_names_the_runs_that_were_not").fnmatch_lines(
        [
            "E * AssertionError: 2 of 3 run(s) of task 'fetch_issue' did not come from the cache.",
            "E *  expected: Cached",
            "E *  actual:   fetch_issue-*: Completed (states: Pending -> Running -> Completed)",
            "E *    fetch_issue-*: Completed (states: Pending -> Running -> Completed)",
            "E *  note:     a run is Cached when an earlier run stored a result *",
        ],
        consecutive=True,
    )
    failure_of(result, "test_failed_every_run").fnmatch_lines(
        [
            "E * AssertionError: 1 of 3 run(s) of task 'check' are not Failed.",
            "E *  expected: Failed",
            "E *  actual:   check-*: Completed*",
        ],
        consecutive=True,
    )
