"""A flow of deployments: the nightly ETL, then the daily report on what it loaded.

Each step runs as its own deployment (`prefect.yaml`: `etl-pipeline/nightly-etl` and
`daily-report/daily-report`), on whatever infrastructure its work pool gives it; this flow only
orders them and stops when one of them does not complete.
"""

# No `from __future__ import annotations`: Prefect 3.4 cannot validate flow parameters whose
# annotations are strings naming imported classes (`Path`); see docs/supported-versions.md.
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment

from example_flows.etl import read_orders

ETL = "etl-pipeline/nightly-etl"
REPORT = "daily-report/daily-report"
ONE_HOUR = 3600


@flow(name="nightly-orchestrator")
def nightly_orchestrator(data_dir: Path, db_path: Path) -> str:
    """Run the ETL deployment, then the report deployment on the loaded amounts; returns a summary."""
    etl = run_deployment(
        ETL, parameters={"data_dir": str(data_dir), "db_path": str(db_path)}, timeout=ONE_HOUR
    )
    if etl.state is None or not etl.state.is_completed():
        raise RuntimeError(f"{ETL} ended {etl.state_name}; the report was not run")
    amounts = [row[3] for row in read_orders(db_path)]
    report = run_deployment(REPORT, parameters={"amounts": amounts}, timeout=ONE_HOUR)
    if report.state is None or not report.state.is_completed():
        raise RuntimeError(f"{REPORT} ended {report.state_name}")
    get_run_logger().info("Reported on %d orders", len(amounts))
    return f"{ETL}: {etl.state_name}, {REPORT}: {report.state_name}"
