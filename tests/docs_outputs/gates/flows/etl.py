"""An ETL flow whose `archive` task no test runs and whose `load` retries no test exercises."""

from prefect import flow, task


@task(retries=2)
def extract(day: str) -> list[int]:
    return [1, 2, 3]


@task(retries=1)
def load(rows: list[int]) -> int:
    return len(rows)


@task
def archive(day: str) -> None:
    """Run by the monthly flow only (not under test)."""


@flow
def etl(day: str) -> int:
    return load(extract(day))
