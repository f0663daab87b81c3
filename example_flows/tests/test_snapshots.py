"""Snapshots of the reference flows: what each run did, and how each flow is configured.

The stored trees are in `__snapshots__/test_snapshots.ambr`. A refactor that reorders tasks, drops a
retry or turns a mapped task into a loop changes them; review the diff, then accept it with
`pytest --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip(
    "syrupy", reason="snapshots need the `snapshot` extra: pip install 'pytest-prefect-flows[snapshot]'"
)

from syrupy.matchers import path_type

from example_flows.cached import score_dataset
from example_flows.composition import company_report, probe_services
from example_flows.etl import etl_pipeline
from example_flows.files import process_files
from example_flows.tests.conftest import SOURCES
from example_flows.tests.test_cached import dataset  # noqa: F401  (the fixture)
from pytest_prefect_flows import flow_structure


def test_etl_run_with_a_transient_extraction_failure(
    run_flow, fail_task, prefect_snapshot, data_dir: Path, db_path: Path
):
    fail_task("extract_source", times=1, when=lambda params: params["source"] == "shop")

    assert run_flow(etl_pipeline, list(SOURCES), data_dir, db_path) == prefect_snapshot


def test_company_report_runs_one_subflow_per_region(run_flow, prefect_snapshot):
    run = run_flow(company_report, ["emea", "amer", "apac"])

    assert run == prefect_snapshot(include=("parameters", "results"))


def test_async_probes_run_concurrently_in_a_stable_order(run_flow, prefect_snapshot):
    assert run_flow(probe_services, ["db", "api", "queue"]) == prefect_snapshot


def test_mapped_files_with_paths_normalized(run_flow, prefect_snapshot, csv_dir: Path):
    run = run_flow(process_files, csv_dir)

    # temporary paths differ on every run: keep only the file (or directory) name
    only_names = path_type(types=(Path,), replacer=lambda path, _: path.name)
    assert run == prefect_snapshot(include=("parameters",), matcher=only_names)


def test_second_run_is_a_cache_hit(run_flow, prefect_snapshot, dataset: str):  # noqa: F811
    run_flow(score_dataset, dataset, [1, 2, 3])

    assert run_flow(score_dataset, dataset, [1, 2, 3]) == prefect_snapshot


def test_etl_configuration(prefect_snapshot):
    # syrupy's plain `snapshot` stores it too; `prefect_snapshot` stores the same text on every syrupy
    assert flow_structure(etl_pipeline) == prefect_snapshot


def test_company_report_configuration(prefect_snapshot):
    assert flow_structure(company_report) == prefect_snapshot
