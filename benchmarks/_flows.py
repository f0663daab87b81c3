"""The flows the in-process benchmarks run; import after `_env.isolate_prefect()`."""

from __future__ import annotations

from prefect import flow, task


@task
def step(x: int) -> int:
    return x + 1


@flow
def three_tasks() -> int:
    return sum(step(i) for i in range(3))


@flow
def thirty_tasks() -> int:
    return sum(step(i) for i in range(30))
