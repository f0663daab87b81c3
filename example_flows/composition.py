"""Compose flows: a parent flow that runs one subflow per region, and an async flow.

Each subflow is a flow run of its own (own state, own retries, visible in the UI under the parent).
The async flow awaits its async tasks concurrently with `asyncio.gather`.
"""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger, task

SALES: dict[str, list[float]] = {
    "emea": [120.0, 80.5, 42.25],
    "amer": [300.0, 12.0],
    "apac": [55.5],
}


@task(name="fetch_region_sales", retries=2, retry_delay_seconds=5)
def fetch_region_sales(region: str) -> list[float]:
    if region not in SALES:
        raise KeyError(f"unknown region {region!r}; known: {', '.join(sorted(SALES))}")
    return SALES[region]


@flow(name="region-report")
def region_report(region: str) -> dict[str, float]:
    """Total sales of one region (runs as a subflow of `company-report`)."""
    sales = fetch_region_sales(region)
    return {"region_total": round(sum(sales), 2), "orders": len(sales)}


@flow(name="company-report", log_prints=True)
def company_report(regions: list[str]) -> dict[str, float]:
    """One `region-report` subflow per region, then the grand total."""
    totals = {region: region_report(region)["region_total"] for region in regions}
    grand_total = round(sum(totals.values()), 2)
    print(f"Company total over {len(regions)} regions: {grand_total}")
    return {**totals, "total": grand_total}


@task(name="measure_latency", retries=1, retry_delay_seconds=1)
async def measure_latency(service: str) -> float:
    """A stand-in for an async probe (an HTTP health check, a database ping)."""
    await asyncio.sleep(0.01)
    return float(len(service) * 10)


@flow(name="probe-services")
async def probe_services(services: list[str]) -> dict[str, float]:
    """Probe every service concurrently; returns latency in ms per service."""
    latencies = await asyncio.gather(*(measure_latency(service) for service in services))
    slowest = max(latencies, default=0.0)
    get_run_logger().info("Probed %d services, slowest %.0f ms", len(services), slowest)
    return dict(zip(services, latencies, strict=True))
