"""Snapshots through the real plugin and syrupy: written, matched, changed; baselines recorded, compared."""

from __future__ import annotations

import json

import pytest

FLOWS = """
from prefect import flow, task
from syrupy.matchers import path_type

from pytest_prefect_flows import PrefectRunSnapshot, flow_structure
from pytest_prefect_flows.snapshots.extension import as_text

VARIANT = "{variant}"

@task
def first():
    return 1

@task
def second():
    return 2

@flow
def ordered():
    if VARIANT == "changed":
        return second(), first()
    return first(), second()

@task(retries=0 if VARIANT == "changed" else 2, retry_delay_seconds=[1, 5])
def transform(rows):
    return sorted(rows)

@flow
def retried():
    return transform([3, 1, 2])

@task
def load(rows):
    if VARIANT == "changed":
        raise ValueError("destination refused the rows")
    return len(rows)

@flow
def loaded():
    return load([1, 2])

@task
def square(x):
    return x * x

@task
def note(label):
    return label

@flow
def fan_out(n: int = 4):
    squares = square.map(range(n))
    notes = [note.submit(label) for label in ("a", "b")]
    return [f.result() for f in squares], [f.result() for f in notes]

def test_ordered(run_flow, prefect_snapshot):
    assert run_flow(ordered) == prefect_snapshot

def test_retried(run_flow, fail_task, prefect_snapshot):
    fail_task("transform", times=1)
    assert run_flow(retried) == prefect_snapshot

def test_loaded(run_flow, prefect_snapshot):
    assert run_flow(loaded) == prefect_snapshot

def test_loaded_baseline(run_flow):  # no snapshot: only --prefect-compare checks its runs
    run_flow(loaded)

def test_retried_structure(snapshot):
    assert flow_structure(retried) == snapshot

def test_fan_out_is_stable(run_flow):
    texts = {{as_text(run_flow(fan_out)) for _ in range(20)}}
    assert len(texts) == 1, texts

def test_fan_out(run_flow, snapshot):
    run = run_flow(fan_out, n=3)
    assert run == snapshot(
        extension_class=PrefectRunSnapshot,
        include=("parameters", "results"),
        matcher=path_type({{r"fan-out\\.square\\[\\d\\]\\.result": (int,)}}, regex=True),
    )
"""


def test_snapshots_and_baselines_written_matched_and_failing_on_changes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_flows=FLOWS.format(variant="base"))
    xdist = ("-p", "xdist", "-n", "2")

    # written under xdist: syrupy's snapshots, and one baseline merged from both workers' tests
    result = pytester.runpytest_subprocess(*xdist, "--snapshot-update", "--prefect-record=base.json")
    result.assert_outcomes(passed=7)
    stored = (pytester.path / "__snapshots__" / "test_flows.ambr").read_text()
    assert "  task transform: Completed (attempts 2, retry delays 1.0s)\n" in stored
    assert "    task square[2]: Completed (attempts 1, submitted)\n" in stored
    assert "      result: int\n" in stored  # the matcher replaced the squares
    assert "      parameters: {'label': 'b'}\n" in stored
    assert "retries=2" in stored  # flow_structure through syrupy's own serializer
    baseline = json.loads((pytester.path / "base.json").read_text())["tests"]
    assert sorted(baseline) == [
        f"test_flows.py::test_{name}"
        for name in ("fan_out", "fan_out_is_stable", "loaded", "loaded_baseline", "ordered", "retried")
    ] + ["test_flows.py::test_retried_structure"]
    assert [len(trees) for trees in baseline.values()] == [1, 20, 1, 1, 1, 1, 0]

    # unchanged: matched (the 20 runs of the mapped flow are checked once, above)
    result = pytester.runpytest_subprocess("-k", "not stable", "--prefect-compare=base.json")
    result.assert_outcomes(passed=6, deselected=1)

    pytester.makepyfile(test_flows=FLOWS.format(variant="changed"))
    result = pytester.runpytest_subprocess("-k", "not stable", "--prefect-compare=base.json")
    result.assert_outcomes(passed=1, failed=5, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "*test_loaded_baseline*",
            "The flow runs of this test differ from the baseline base.json:",
            "-  task load: Completed (attempts 1)",
            "+  task load: Failed (attempts 1, raised ValueError)",
            "If the change is intended, record the baseline again with --prefect-record=base.json",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(  # the reordered tasks
        [
            "*+   task second: Completed (attempts 1)",
            "*    task first: Completed (attempts 1)",
            "*-   task second: Completed (attempts 1)",
        ],
        consecutive=True,
    )
    for changed in (
        ["*-   task transform: Completed (attempts 2, retry delays 1.0s)", "*+   task transform: Failed*"],
        ["*-   task load: Completed (attempts 1)", "*+   task load: Failed (attempts 1, raised ValueError)"],
        ["*-       retries=2,", "*+       retries=0,"],  # configuration drift, seen without a run
    ):
        result.stdout.fnmatch_lines(changed)


def test_prefect_snapshot_without_syrupy_says_how_to_get_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_run(prefect_snapshot):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:syrupy")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*MissingExtraError: prefect_snapshot needs syrupy's pytest plugin*"])


def test_compare_with_a_missing_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--prefect-compare=yesterday.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--prefect-compare=yesterday.json: no such file; record one first with --prefect-record=*"]
    )
