"""Extract orders from several sources concurrently, drop bad records, upsert them into SQLite.

Each source is a JSON file `<data_dir>/<source>.json` holding a list of order objects. Loading is an
upsert keyed by `(source, order_id)`, so running the flow twice leaves the same rows.
"""

# No `from __future__ import annotations`: Prefect 3.4 cannot validate flow parameters whose
# annotations are strings naming imported classes (`Path`); see docs/supported-versions.md.
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

Order = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    source TEXT NOT NULL,
    order_id INTEGER NOT NULL,
    customer TEXT NOT NULL,
    amount REAL NOT NULL,
    PRIMARY KEY (source, order_id)
)
"""

_UPSERT = """
INSERT INTO orders (source, order_id, customer, amount)
VALUES (:source, :order_id, :customer, :amount)
ON CONFLICT (source, order_id) DO UPDATE SET customer = excluded.customer, amount = excluded.amount
"""


@task(name="extract_source", retries=3, retry_delay_seconds=[1, 5, 15])
def extract_source(source: str, data_dir: Path) -> list[Order]:
    """Read one source's raw records; transient I/O errors are retried."""
    path = Path(data_dir) / f"{source}.json"
    records: list[Order] = json.loads(path.read_text())
    get_run_logger().info("Extracted %d records from %s", len(records), source)
    return records


def _clean(source: str, raw: Order) -> Order:
    """One validated row; raises KeyError/TypeError/ValueError for a bad record."""
    amount = float(raw["amount"])
    if amount < 0:
        raise ValueError(f"negative amount {amount}")
    customer = str(raw["customer"]).strip()
    if not customer:
        raise ValueError("empty customer")
    return {"source": source, "order_id": int(raw["id"]), "customer": customer, "amount": round(amount, 2)}


@task(name="transform_records")
def transform_records(raw_by_source: dict[str, list[Order]]) -> list[Order]:
    """Validate and normalise every record; a bad record is skipped with a warning, never fatal."""
    logger = get_run_logger()
    rows = []
    for source, records in raw_by_source.items():
        for raw in records:
            try:
                rows.append(_clean(source, raw))
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("Skipping bad record from %s: %r (%s)", source, raw, exc)
    return rows


@task(name="load_records", retries=2, retry_delay_seconds=10)
def load_records(rows: list[Order], db_path: Path) -> int:
    """Upsert rows into SQLite in one transaction; safe to retry or re-run."""
    with closing(sqlite3.connect(db_path)) as connection, connection:
        connection.execute(_SCHEMA)
        connection.executemany(_UPSERT, rows)
    get_run_logger().info("Upserted %d rows into %s", len(rows), db_path)
    return len(rows)


@flow(name="etl-pipeline", log_prints=True)
def etl_pipeline(sources: list[str], data_dir: Path, db_path: Path) -> dict[str, int]:
    """Extract every source concurrently, transform, load; returns counts."""
    futures = {source: extract_source.submit(source, data_dir) for source in sources}
    raw_by_source = {source: future.result() for source, future in futures.items()}
    rows = transform_records(raw_by_source)
    loaded = load_records(rows, db_path)
    extracted = sum(len(records) for records in raw_by_source.values())
    print(f"Loaded {loaded} of {extracted} records from {len(sources)} sources")
    return {"extracted": extracted, "skipped": extracted - len(rows), "loaded": loaded}


def read_orders(db_path: Path) -> list[tuple[str, int, str, float]]:
    """Every row of the destination table, ordered (for tests and idempotency checks)."""
    if not Path(db_path).exists():
        return []
    with closing(sqlite3.connect(db_path)) as connection:
        query = "SELECT source, order_id, customer, amount FROM orders ORDER BY source, order_id"
        return list(connection.execute(query))
