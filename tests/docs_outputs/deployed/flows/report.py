"""A deployed flow that no test runs."""

from prefect import flow, task


@task
def summarize() -> str:
    return "all good"


# the deployment's entrypoint: flows/report.py:report_flow
@flow(name="report-flow")
def report_flow() -> str:
    return summarize()
