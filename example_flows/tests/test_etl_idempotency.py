"""ETL idempotency: re-runs, retries after a commit and crashes all leave the same rows."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from prefect import flow, task

from example_flows.etl import etl_pipeline, load_records, read_orders
from example_flows.tests.conftest import SOURCES
from pytest_prefect_flows.exceptions import IdempotencyError
from pytest_prefect_flows.idempotency import assert_idempotent, assert_retry_safe, check_idempotent
from pytest_prefect_flows.strategies import records

ROW = {"source": st.sampled_from(["shop", "partners"]), "order_id": int, "customer": str, "amount": float}


def test_running_the_pipeline_twice_changes_nothing(data_dir: Path, db_path: Path):
    assert_idempotent(etl_pipeline, list(SOURCES), data_dir, db_path, observe=lambda: read_orders(db_path))


def test_every_task_survives_a_failure_after_its_body_and_a_crash(data_dir: Path, db_path: Path):
    assert_retry_safe(
        etl_pipeline,
        list(SOURCES),
        data_dir,
        db_path,
        observe=lambda: read_orders(db_path),
        reset=lambda: db_path.unlink(missing_ok=True),
    )


def test_load_is_idempotent_for_any_batch(tmp_path: Path):
    db_path = tmp_path / "property.db"
    check_idempotent(
        load_records,
        {"rows": records(ROW, unique_by=["source", "order_id"], max_size=8), "db_path": st.just(db_path)},
        observe=lambda: read_orders(db_path),
        reset=lambda: db_path.unlink(missing_ok=True),
        settings=settings(
            max_examples=6, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
        ),
    )


# A loader written the naive way, to show what the checks catch.
@task(name="append_records")
def append_records(rows: list[dict], db_path: Path) -> int:
    with closing(sqlite3.connect(db_path)) as connection, connection:
        connection.execute("CREATE TABLE IF NOT EXISTS orders (source, order_id, customer, amount)")
        connection.executemany("INSERT INTO orders VALUES (:source, :order_id, :customer, :amount)", rows)
    return len(rows)


@flow(name="append-only-load")
def append_only_load(db_path: Path) -> int:
    return append_records([{"source": "shop", "order_id": 1, "customer": "Ada", "amount": 1.0}], db_path)


def test_an_append_only_load_is_caught(db_path: Path):
    with pytest.raises(IdempotencyError, match="append-only-load"):
        assert_idempotent(append_only_load, db_path, observe=lambda: read_orders(db_path))
