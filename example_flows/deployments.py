"""How the reference flows are deployed: the ETL pipeline every day at 2 AM, Berlin time.

`prefect.yaml` (next to this module) declares the same deployment for `prefect deploy`; its tests
check that both agree. Serve locally with `python -m example_flows.deployments`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect.schedules import Cron

from example_flows.etl import etl_pipeline

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

NIGHTLY_CRON = "0 2 * * *"
TIMEZONE = "Europe/Berlin"
DEFAULT_PARAMETERS = {
    "sources": ["shop", "marketplace", "partners"],
    "data_dir": "/srv/etl/incoming",
    "db_path": "/srv/etl/warehouse.db",
}


def nightly_etl() -> RunnerDeployment:
    """The ETL pipeline's deployment: daily at 02:00 Europe/Berlin."""
    return etl_pipeline.to_deployment(
        name="nightly-etl",
        schedules=[Cron(NIGHTLY_CRON, timezone=TIMEZONE)],
        parameters=DEFAULT_PARAMETERS,
        tags=["etl", "nightly"],
        description="Load yesterday's orders from every source into the warehouse.",
    )


if __name__ == "__main__":
    from prefect import serve

    serve(nightly_etl())
