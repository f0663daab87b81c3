from prefect import flow


@flow
def hello(name: str, times: int = 1) -> str:
    return ", ".join([f"hello {name}"] * times)
