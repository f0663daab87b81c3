"""Records keep the rendered task-run name and attach every subflow to its parent."""

from __future__ import annotations

from prefect import flow, task

from pytest_prefect_flows import RunFlow


@task(task_run_name="fetch-{page}")
def fetch(page: int) -> int:
    return page


@flow
def pages() -> list[int]:
    return [fetch(p) for p in range(3)]


@flow
def region(name: str) -> str:
    return name.upper()


@flow
def all_regions() -> list[str]:
    return [region(name) for name in ("eu", "us", "apac")]


def test_task_run_name_template_is_the_record_name(run_flow: RunFlow) -> None:
    run = run_flow(pages)
    assert [t.name for t in run.task_runs] == ["fetch-0", "fetch-1", "fetch-2"]
    assert run.task("fetch-1").parameters == {"page": 1}


def test_every_subflow_attaches_to_its_parent(run_flow: RunFlow) -> None:
    run = run_flow(all_regions)
    assert [sub.parameters["name"] for sub in run.subflows] == ["eu", "us", "apac"]
    assert all(sub.parent_id == run.id for sub in run.subflows)
    assert run.result() == ["EU", "US", "APAC"]
