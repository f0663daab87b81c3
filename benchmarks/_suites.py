"""What the benchmarks that generate a test suite share: its flows module."""

THREE_TASK_FLOWS = """
from prefect import flow, task


@task
def step(x):
    return x + 1


@flow
def three_tasks():
    return sum(step(i) for i in range(3))
"""
