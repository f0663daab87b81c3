from prefect import flow


@flow
def my_flow() -> int:
    return 42
