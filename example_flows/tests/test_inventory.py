"""check-stock's events, and the prefect.yaml automation that reorders on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from example_flows.inventory import LOW_STOCK_EVENT, check_stock, reorder_stock
from pytest_prefect_flows import (
    assert_completed,
    assert_event_emitted,
    assert_failed,
    assert_no_event,
    automation_fires,
    deployment_triggers,
)

PREFECT_YAML = Path(__file__).parents[1] / "prefect.yaml"
REORDER_POINTS = {"apple": 10, "pear": 5, "plum": 20}


@pytest.fixture
def reorder_when_low():
    [automation] = deployment_triggers(PREFECT_YAML, "reorder-stock")
    return automation


def test_each_low_sku_is_announced_with_its_numbers(run_flow, prefect_events):
    run = run_flow(check_stock, {"apple": 3, "pear": 9, "plum": 20}, REORDER_POINTS)

    assert run.result() == ["apple", "plum"]
    assert_event_emitted(prefect_events, LOW_STOCK_EVENT, count=2)
    assert_event_emitted(
        prefect_events,
        LOW_STOCK_EVENT,
        resource={"prefect.resource.id": "inventory.sku.apple", "sku": "apple"},
        payload={"on_hand": 3, "reorder_point": 10},
    )
    assert_no_event(prefect_events, LOW_STOCK_EVENT, resource={"sku": "pear"})


def test_full_shelves_announce_nothing(run_flow, prefect_events):
    run = run_flow(check_stock, {"apple": 50, "pear": 50}, REORDER_POINTS)

    assert_completed(run)
    assert_no_event(prefect_events, "inventory.*")
    assert_event_emitted(prefect_events.for_run(run), "prefect.flow-run.Completed")


def test_the_automation_reorders_once_per_low_sku(run_flow, prefect_events, reorder_when_low):
    run_flow(check_stock, {"apple": 3, "pear": 1, "plum": 99}, REORDER_POINTS)

    firings = automation_fires(reorder_when_low, prefect_events)

    assert [firing.actions for firing in firings] == [
        ["run-deployment 'reorder-stock' with parameters {'sku': 'apple'}"],
        ["run-deployment 'reorder-stock' with parameters {'sku': 'pear'}"],
    ]


def test_the_automation_stays_quiet_when_nothing_is_low(run_flow, prefect_events, reorder_when_low):
    run_flow(check_stock, {"apple": 11}, REORDER_POINTS)

    assert automation_fires(reorder_when_low, prefect_events) == []


def test_reorder_needs_the_sku_the_automation_passes(run_flow):
    assert run_flow(reorder_stock, "apple", quantity=5).result() == "ordered 5 x apple"
    assert_failed(run_flow(reorder_stock), ValueError, match="needs a sku")
