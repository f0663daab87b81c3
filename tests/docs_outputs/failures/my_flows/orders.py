# docs/getting-started.md's flow
from prefect import flow, get_run_logger, task


@task(retries=2, retry_delay_seconds=10)
def fetch_orders(day: str) -> list[dict]:
    return [{"id": 1, "amount": 12.5}, {"id": 2, "amount": -1}]


@task
def keep_valid(orders: list[dict]) -> list[dict]:
    valid = [order for order in orders if order["amount"] >= 0]
    if len(valid) < len(orders):
        get_run_logger().warning("Dropped %d invalid orders", len(orders) - len(valid))
    return valid


@flow
def daily_orders(day: str) -> int:
    return len(keep_valid(fetch_orders(day)))
