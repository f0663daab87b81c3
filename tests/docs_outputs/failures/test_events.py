"""docs/events.md: an event whose payload differs."""

from example_flows.inventory import LOW_STOCK_EVENT, check_stock
from pytest_prefect_flows import assert_event_emitted


def test_apple_is_announced(run_flow, prefect_events):
    run_flow(check_stock, {"apple": 3}, {"apple": 10})

    assert_event_emitted(prefect_events, LOW_STOCK_EVENT, payload={"on_hand": 4})
