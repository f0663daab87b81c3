"""docs/cookbook.md: a fault sweep of the ETL flow with a plain INSERT."""

import sqlite3
from contextlib import closing

from prefect import flow, task

from example_flows.etl import extract_source, read_orders, transform_records


@task(name="load_records", retries=2)
def insert_records(rows, db_path):
    with closing(sqlite3.connect(db_path)) as connection, connection:
        connection.execute("CREATE TABLE IF NOT EXISTS orders (source, order_id, customer, amount)")
        connection.executemany("INSERT INTO orders VALUES (:source, :order_id, :customer, :amount)", rows)
    return len(rows)


@flow(name="etl-with-insert")
def etl_with_insert(sources, data_dir, db_path):
    futures = {source: extract_source.submit(source, data_dir) for source in sources}
    rows = transform_records({source: future.result() for source, future in futures.items()})
    return insert_records(rows, db_path)


def test_a_plain_insert_is_caught(fault_sweep, data_dir, db_path):
    report = fault_sweep(
        etl_with_insert,
        ["shop", "marketplace", "partners"],
        data_dir,
        db_path,
        setup=lambda: db_path.unlink(missing_ok=True),
        observe=lambda: read_orders(db_path),
    )
    report.assert_recovered()
