from prefect import flow, task


@task
def extract() -> list[int]:
    return [1, 2, 3]


@task
def load(rows: list[int]) -> int:
    return len(rows)


@flow
def etl_flow() -> int:
    return load(extract())
