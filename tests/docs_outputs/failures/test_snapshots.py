"""docs/snapshots.md: a run that differs from its stored snapshot."""

from prefect import flow, task


@task(retries=1)
def transform():
    return 1


@flow
def retried():
    return transform()


def test_transform_is_retried(run_flow, fail_task, prefect_snapshot):
    fail_task("transform", times=2)  # the stored snapshot has times=1: the retry succeeded

    assert run_flow(retried) == prefect_snapshot
