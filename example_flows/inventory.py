"""A flow that announces what it found, for automations to act on.

`check_stock` compares each SKU's stock with its reorder point and emits one `inventory.stock.low`
event per SKU that ran low, about the SKU (`inventory.sku.<sku>`) with the numbers in the payload.
The `reorder-stock` deployment in prefect.yaml has an automation on that event: one reorder run per
SKU, with the SKU taken from the event.
"""

from prefect import flow, task
from prefect.events import emit_event

LOW_STOCK_EVENT = "inventory.stock.low"


@task(name="find_low_stock")
def find_low_stock(stock: dict[str, int], reorder_points: dict[str, int]) -> dict[str, int]:
    """The SKUs whose stock is at or below their reorder point (SKUs without one never are)."""
    return {
        sku: count for sku, count in stock.items() if sku in reorder_points and count <= reorder_points[sku]
    }


@flow(name="check-stock")
def check_stock(stock: dict[str, int], reorder_points: dict[str, int]) -> list[str]:
    """Emit `inventory.stock.low` for every SKU that needs reordering; return those SKUs."""
    low = find_low_stock(stock, reorder_points)
    for sku, count in sorted(low.items()):
        emit_event(
            LOW_STOCK_EVENT,
            resource={"prefect.resource.id": f"inventory.sku.{sku}", "sku": sku},
            payload={"on_hand": count, "reorder_point": reorder_points[sku]},
        )
    return sorted(low)


@flow(name="reorder-stock")
def reorder_stock(sku: str | None = None, quantity: int = 100) -> str:
    """Place a reorder (the purchasing system's call would go here).

    Run by the `reorder-when-low` automation, which passes the SKU of the event; `sku` has a default
    only so that the deployment validates without one.
    """
    if not sku:
        raise ValueError("reorder-stock needs a sku; the reorder-when-low automation passes the event's.")
    return f"ordered {quantity} x {sku}"
