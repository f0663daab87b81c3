"""Run trees, flow structure and baselines on hand-built records: order, labels, include, matcher, errors."""

from __future__ import annotations

import datetime as dt
import random
import types
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task

from pytest_prefect_flows.exceptions import UsageError
from pytest_prefect_flows.recording import FlowRunRecord, StateEntry, TaskRunRecord
from pytest_prefect_flows.snapshots.baseline import describe_difference, read_baseline
from pytest_prefect_flows.snapshots.structure import flow_structure
from pytest_prefect_flows.snapshots.tree import render_run, run_tree, stable_repr

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
FLOW_THREAD, WORKER = 1, 2


class FakeState:
    def __init__(self, name: str, data: Any = None) -> None:
        self.name = name
        self.type = types.SimpleNamespace(value="FAILED" if name == "Failed" else "COMPLETED")
        self.data = data

    def is_failed(self) -> bool:
        return self.name == "Failed"

    def is_crashed(self) -> bool:
        return False

    def is_cancelled(self) -> bool:
        return False

    def result(self, raise_on_failure: bool = True, _sync: bool = True) -> Any:
        return self.data


def task_run(name: str, start: float, end: float, thread: int = FLOW_THREAD, **kw: Any) -> TaskRunRecord:
    state = FakeState(kw.pop("state", "Completed"), kw.pop("data", None))
    return TaskRunRecord(
        id=f"{name}-{start}",
        name=f"{name}-{random.randint(0, 999)}",
        task_name=name,
        history=[
            StateEntry("Pending", "PENDING", T0 + dt.timedelta(seconds=start), 0),
            StateEntry(state.name, state.type.value, T0 + dt.timedelta(seconds=end), 1),
        ],
        state=state,  # type: ignore[arg-type]
        attempts=kw.pop("attempts", 1),
        thread=thread,
        **kw,
    )


def flow_run(children: list[TaskRunRecord], **kw: Any) -> FlowRunRecord:
    return FlowRunRecord(
        id="f",
        name="brave-fox",
        flow_name="etl",
        state=FakeState("Completed", kw.pop("data", None)),  # type: ignore[arg-type]
        history=[StateEntry("Running", "RUNNING", T0, 1), StateEntry("Completed", "COMPLETED", T0, 1)],
        task_runs=children,
        thread=FLOW_THREAD,
        **kw,
    )


def test_direct_runs_keep_their_order_and_submitted_runs_are_sorted_whatever_the_timing() -> None:
    def one_run(timings: list[tuple[float, float]]) -> str:
        submitted = [
            task_run("square", *timing, thread=WORKER, parameters={"x": x})
            for x, timing in zip([10, 9, 0], timings, strict=True)
        ]
        direct = [
            task_run("load", 5, 6, attempts=3, retry_delays=[1.0, 2.0]),
            task_run("extract", 0, 1),
        ]
        return render_run(flow_run([*submitted, *direct, task_run("note", 2, 3, thread=WORKER)]))

    assert one_run([(1, 2), (2, 3), (3, 4)]) == one_run([(3, 4), (1, 9), (2, 2.5)])
    assert one_run([(1, 2), (2, 3), (3, 4)]) == (
        "flow etl: Completed (attempts 1)\n"
        "  task extract: Completed (attempts 1)\n"
        "  task load: Completed (attempts 3, retry delays 1.0s 2.0s)\n"
        "  task note: Completed (attempts 1, submitted)\n"
        "  task square[0]: Completed (attempts 1, submitted)\n"
        "  task square[1]: Completed (attempts 1, submitted)\n"
        "  task square[2]: Completed (attempts 1, submitted)"
    )
    assert (
        "square[2]"
        in run_tree(flow_run([task_run("square", 0, 1, parameters={"x": 10})] * 3))["children"][2]["name"]
    )


def test_direct_runs_that_overlap_in_time_are_sorted_and_a_loop_is_numbered_in_order() -> None:
    runs = [
        task_run("b", 0, 5),
        task_run("a", 1, 2),  # started while b ran: async concurrency in the flow's own thread
        task_run("fetch", 6, 7, parameters={"page": 2}),
        task_run("fetch", 8, 9, parameters={"page": 1}, state="Failed", data=ValueError("x")),
    ]
    assert render_run(flow_run(runs)).splitlines()[1:] == [
        "  task a: Completed (attempts 1)",
        "  task b: Completed (attempts 1)",
        "  task fetch[0]: Completed (attempts 1)",
        "  task fetch[1]: Failed (attempts 1, raised ValueError)",
    ]


def test_include_adds_parameters_and_results_through_the_matcher() -> None:
    seen: list[str] = []

    def matcher(*, data: Any, path: tuple[tuple[str, type], ...]) -> Any:
        seen.append(".".join(name for name, _ in path))
        return "<float>" if isinstance(data, float) else data

    run = flow_run([task_run("load", 0, 1, parameters={"rate": 0.5, "tags": {"b", "a"}}, data=3)], data=[3])
    text = render_run(run, include=("parameters", "results"), matcher=matcher)

    assert text.splitlines() == [
        "flow etl: Completed (attempts 1)",
        "    parameters: {}",
        "    result: [3]",
        "  task load: Completed (attempts 1)",
        "      parameters: {'rate': '<float>', 'tags': {'a', 'b'}}",
        "      result: 3",
    ]
    assert seen == ["etl.result", "etl.load.parameters.rate", "etl.load.parameters.tags", "etl.load.result"]


def test_include_names_the_sections_it_accepts() -> None:
    accepted = r"include=\('params',\) names 'params'.*'parameters', 'results', 'artifacts'"
    with pytest.raises(UsageError, match=accepted):
        render_run(flow_run([]), include=("params",))


def test_stable_repr_sorts_sets_and_dict_keys() -> None:
    assert stable_repr({"b": {3, 1}, "a": (1,), "c": frozenset()}) == "{'a': (1,), 'b': {1, 3}, 'c': set()}"


@task(retries=3, retry_delay_seconds=[1, 10, 60], timeout_seconds=30, tags={"io"})
def extract() -> int:
    return 1


@task(cache_key_fn=lambda *_: "k")
def transform(x: int) -> int:
    return x


@flow
def publish(x: int) -> int:
    return transform(x)


def test_flow_structure_finds_tasks_in_globals_closures_and_nested_code() -> None:
    helpers = types.ModuleType("helpers")
    helpers.publish = publish  # type: ignore[attr-defined]
    local_task = task(name="local")(lambda: 0)

    @flow(retries=1, timeout_seconds=600)
    def pipeline(day: str, limit: int = 10) -> list[int]:
        rows = [extract()]
        values = [transform(v) for v in rows]
        local_task()
        return [*values, helpers.publish(1)]

    structure = flow_structure(pipeline)

    assert [t.name for t in structure.tasks] == ["extract", "transform", "local"]
    assert (structure.retries, structure.timeout_seconds) == (1, 600)
    assert structure.parameters["required"] == ["day"]
    assert [s.name for s in structure.subflows] == ["publish"]
    assert [t.name for t in structure.subflows[0].tasks] == ["transform"]
    extract_structure = structure.tasks[0]
    assert (extract_structure.retries, extract_structure.retry_delay_seconds) == (3, [1, 10, 60])
    assert (extract_structure.timeout_seconds, extract_structure.tags) == (30, ["io"])
    assert structure.tasks[1].cache_policy.startswith("cache_key_fn=")
    assert "  task extract\n    retries: 3\n" in str(structure)


def test_flow_structure_of_something_else_says_what_to_pass() -> None:
    with pytest.raises(UsageError, match=r"flow_structure\(\) takes a @flow object, got <function"):
        flow_structure(extract.fn)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file; record one first with --prefect-record="),
        ("{not json", "cannot read it as a baseline"),
        ('{"runs": {}}', "is not a baseline written by --prefect-record"),
    ],
)
def test_a_baseline_that_cannot_be_read_says_how_to_record_one(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(pytest.UsageError, match=message):
        read_baseline(path)


def test_the_difference_with_a_baseline_is_a_diff_of_the_trees() -> None:
    before = run_tree(flow_run([task_run("load", 0, 1)]))
    after = run_tree(flow_run([task_run("load", 0, 1, attempts=2)]))
    text = describe_difference([before], [after], Path("base.json"))
    assert "-  task load: Completed (attempts 1)\n+  task load: Completed (attempts 2)" in text


def test_prefect_snapshot_without_syrupy_installed_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config
) -> None:
    import importlib.util

    from pytest_prefect_flows.exceptions import MissingExtraError
    from pytest_prefect_flows.snapshots import require_syrupy

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "syrupy" else real_find_spec(name, *a)
    )
    with pytest.raises(MissingExtraError, match=r"pip install 'pytest-prefect-flows\[snapshot\]'"):
        require_syrupy(pytestconfig)
