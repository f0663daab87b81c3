"""A flow that tells someone when it fails.

The `on_failure` hook loads the `alerts` notification block (a Slack webhook in production) and sends
the failed run's name and error. Hooks run after the final state is set, so a failure while notifying
never hides the flow's own error.
"""

from __future__ import annotations

from typing import Any

from prefect import Flow, flow, get_run_logger, task
from prefect.blocks.notifications import SlackWebhook
from prefect.client.schemas.objects import FlowRun
from prefect.states import State

ALERTS_BLOCK = "alerts"


def notify_failure(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Send the run's name and failure message to the `alerts` notification block."""
    SlackWebhook.load(ALERTS_BLOCK).notify(
        body=f"Flow run {flow_run.name!r} of {flow.name!r} ended {state.name}: {state.message}",
        subject=f"Prefect flow {flow.name} failed",
    )


@task(name="compute_totals")
def compute_totals(amounts: list[float]) -> dict[str, float]:
    if not amounts:
        raise ValueError("no amounts to report on")
    return {"count": len(amounts), "total": round(sum(amounts), 2), "max": max(amounts)}


@task(name="publish_report", retries=2, retry_delay_seconds=60)
def publish_report(totals: dict[str, float]) -> str:
    """Render the report (publishing to a real destination would go here)."""
    report = f"{totals['count']:g} orders, total {totals['total']:.2f}, largest {totals['max']:.2f}"
    get_run_logger().info("Report: %s", report)
    return report


@flow(name="daily-report", on_failure=[notify_failure])
def daily_report(amounts: list[float]) -> str:
    """Compute and publish the daily totals; any failure is reported to `alerts`."""
    return publish_report(compute_totals(amounts))
