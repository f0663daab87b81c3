"""The ETL pipeline: concurrent extraction with retries, bad records skipped, idempotent SQLite upsert."""

from __future__ import annotations

import re
from pathlib import Path

from example_flows.etl import etl_pipeline, read_orders
from example_flows.tests.conftest import SOURCES, write_sources
from pytest_prefect_flows import (
    assert_completed,
    assert_crashed,
    assert_failed,
    assert_logged,
    assert_retry_delays,
    assert_task_failed,
    assert_task_not_run,
    assert_task_order,
    assert_task_retried,
)

ALL_SOURCES = list(SOURCES)
EXPECTED_ROWS = [
    ("marketplace", 1, "Linus", 42.5),
    ("partners", 7, "Edsger", 3.33),
    ("shop", 1, "Ada", 19.9),
    ("shop", 2, "Grace", 5.0),
]


def exactly(message: str) -> str:
    """A pattern for `assert_logged` that matches this whole log line and nothing else."""
    return f"^{re.escape(message)}$"


def test_loads_every_valid_record_into_sqlite(run_flow, data_dir: Path, db_path: Path):
    run = run_flow(etl_pipeline, ALL_SOURCES, data_dir, db_path)

    assert_completed(run)
    assert run.result() == {"extracted": 7, "skipped": 3, "loaded": 4}
    assert read_orders(db_path) == EXPECTED_ROWS
    assert sorted(task_run.parameters["source"] for task_run in run.tasks("extract_source")) == sorted(
        ALL_SOURCES
    )
    assert_task_order(run, ["extract_source", "transform_records", "load_records"])


def test_bad_records_are_skipped_with_a_warning(run_flow, data_dir: Path, db_path: Path):
    run = run_flow(etl_pipeline, ALL_SOURCES, data_dir, db_path)

    for warning in (
        "Skipping bad record from shop: {'id': 3, 'customer': '', 'amount': 12} (empty customer)",
        "Skipping bad record from marketplace: {'id': 2, 'customer': 'Barbara', 'amount': 'n/a'} "
        "(could not convert string to float: 'n/a')",
        "Skipping bad record from partners: {'customer': 'Alan', 'amount': 1} ('id')",
    ):
        assert_logged(run, exactly(warning), level="WARNING")
    assert_logged(run, r"Loaded 4 of 7 records from 3 sources")  # log_prints


def test_extraction_is_retried_on_transient_errors(run_flow, fail_task, data_dir: Path, db_path: Path):
    fail_task(
        "extract_source", times=2, exc=ConnectionError("shop API down"), when=lambda p: p["source"] == "shop"
    )

    run = run_flow(etl_pipeline, ALL_SOURCES, data_dir, db_path)

    assert_completed(run)
    by_source = {task_run.parameters["source"]: task_run for task_run in run.tasks("extract_source")}
    assert_task_retried(run, by_source["shop"], times=2)
    assert_retry_delays(run, by_source["shop"], [1, 5])
    assert_task_retried(run, by_source["partners"], times=0)
    assert read_orders(db_path) == EXPECTED_ROWS


def test_nothing_is_loaded_when_a_source_stays_down(run_flow, fail_task, data_dir: Path, db_path: Path):
    fail_task(
        "extract_source",
        times=None,
        exc=ConnectionError("partners API down"),
        when=lambda p: p["source"] == "partners",
    )

    run = run_flow(etl_pipeline, ALL_SOURCES, data_dir, db_path)

    assert_failed(run, ConnectionError, match="partners API down")
    partners = next(t for t in run.tasks("extract_source") if t.parameters["source"] == "partners")
    assert_task_failed(run, partners, exc=ConnectionError)
    assert partners.attempts == 4  # 1 + retries=3
    assert_task_not_run(run, "load_records")
    assert read_orders(db_path) == []


def test_rerun_updates_rows_instead_of_duplicating_them(run_flow, data_dir: Path, db_path: Path):
    run_flow(etl_pipeline, ALL_SOURCES, data_dir, db_path)
    corrected = {**SOURCES, "shop": [{"id": 1, "customer": "Ada Lovelace", "amount": 21}]}
    write_sources(data_dir, corrected)

    run = run_flow(etl_pipeline, ["shop"], data_dir, db_path)

    assert_completed(run)
    rows = read_orders(db_path)
    assert ("shop", 1, "Ada Lovelace", 21.0) in rows
    assert len(rows) == len(EXPECTED_ROWS)  # updated in place, shop/2 kept from the first load


def test_a_failure_after_loading_is_retried_without_duplicates(
    run_flow, fail_task, data_dir: Path, db_path: Path
):
    fail_task.after("load_records", times=1, exc=OSError("disk hiccup after commit"))

    run = run_flow(etl_pipeline, ALL_SOURCES, data_dir, db_path)

    assert_completed(run)
    assert_task_retried(run, "load_records", times=1)
    assert read_orders(db_path) == EXPECTED_ROWS


def test_a_crash_while_loading_leaves_nothing_and_a_rerun_recovers(
    run_flow, fail_task, data_dir: Path, db_path: Path
):
    fail_task.crash("load_records")

    crashed = run_flow(etl_pipeline, ALL_SOURCES, data_dir, db_path)

    assert_crashed(crashed)
    assert read_orders(db_path) == []  # what the crash left: no row at all
    rerun = run_flow(etl_pipeline, ALL_SOURCES, data_dir, db_path)
    assert_completed(rerun)
    assert read_orders(db_path) == EXPECTED_ROWS
