"""docs/snapshots.md: a test whose runs differ from the recorded baseline (prefect-baseline.json)."""

from prefect import flow, task


@task
def load():
    raise ValueError("the orders table is gone")  # the baseline recorded a `load` that completed


@flow
def loaded():
    return load()


def test_loaded_baseline(run_flow):
    run_flow(loaded)
