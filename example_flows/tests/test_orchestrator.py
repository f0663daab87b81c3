"""The flow of deployments, end to end (each deployment run in-process as a worker would) and with a stub."""

from __future__ import annotations

from example_flows.etl import read_orders
from example_flows.orchestrator import ETL, REPORT, nightly_orchestrator
from pytest_prefect_flows import assert_completed, assert_failed, assert_task_failed


def test_runs_the_etl_deployment_then_the_report_on_what_it_loaded(
    run_flow, prefect_deployments, prefect_runs, data_dir, db_path
):
    run = run_flow(nightly_orchestrator, data_dir, db_path)

    assert_completed(run)
    assert run.result() == f"{ETL}: Completed, {REPORT}: Completed"
    assert [call.name for call in prefect_deployments.calls] == [ETL, REPORT]
    etl_call, report_call = prefect_deployments.calls
    assert etl_call.parameters == {"data_dir": str(data_dir), "db_path": str(db_path)}
    assert report_call.parameters == {"amounts": [amount for *_, amount in read_orders(db_path)]}
    etl_run = prefect_runs.find("etl-pipeline")[0]
    assert etl_run.parameters["sources"] == ["shop", "marketplace", "partners"]  # the deployment's default
    assert etl_run.task("load_records").result() == 4


def test_a_failed_etl_deployment_stops_before_the_report(run_flow, prefect_deployments, data_dir, db_path):
    prefect_deployments.stub(ETL, state="Failed", message="warehouse unreachable")

    run = run_flow(nightly_orchestrator, data_dir, db_path)

    assert_failed(run, RuntimeError, match=f"{ETL} ended Failed; the report was not run")
    assert [call.name for call in prefect_deployments.calls] == [ETL]
    assert prefect_deployments.calls[0].timeout == 3600


def test_the_etl_deployment_runs_with_its_defaults_merged(prefect_run_deployment, data_dir, db_path):
    run = prefect_run_deployment(ETL, parameters={"data_dir": str(data_dir), "db_path": str(db_path)})

    assert_completed(run)
    assert run.flow_name == "etl-pipeline"
    assert run.parameters["sources"] == ["shop", "marketplace", "partners"]
    assert run.result() == {"extracted": 7, "skipped": 3, "loaded": 4}


def test_a_failing_etl_task_fails_the_etl_deployment_and_stops_the_report(
    run_flow, prefect_deployments, prefect_runs, fail_task, data_dir, db_path
):
    fail_task("load_records", times=None, exc=ConnectionError("warehouse down"))

    run = run_flow(nightly_orchestrator, data_dir, db_path)

    assert_failed(run, RuntimeError, match=f"{ETL} ended Failed")
    [etl_run] = prefect_runs.find("etl-pipeline")
    assert_task_failed(etl_run, "load_records", ConnectionError, match="warehouse down")
    assert [call.name for call in prefect_deployments.calls] == [ETL]
