"""Idempotency checks as users meet them: failure output through the real plugin."""

from __future__ import annotations

import pytest

ETL_MODULE = """
import contextlib
import sqlite3

from prefect import flow, task

ROWS = [{"id": 1, "name": "ada"}, {"id": 2, "name": "grace"}, {"id": 3, "name": "linus"}]


def connect(db_path):
    return contextlib.closing(sqlite3.connect(db_path))


def reset(db_path, keyed):
    with connect(db_path) as db, db:
        db.execute("DROP TABLE IF EXISTS customers")
        db.execute(f"CREATE TABLE customers (id INTEGER {'PRIMARY KEY' if keyed else ''}, name TEXT)")


def rows(db_path):
    with connect(db_path) as db:
        return db.execute("SELECT id, name FROM customers ORDER BY id").fetchall()


@task
def extract():
    return [dict(row) for row in ROWS]


@task
def transform(rows):
    return [(row["id"], row["name"].title()) for row in rows]


@task
def load(db_path, rows, upsert):
    sql = "INSERT INTO customers (id, name) VALUES (?, ?)"
    if upsert:
        sql += " ON CONFLICT(id) DO UPDATE SET name = excluded.name"
    with connect(db_path) as db, db:
        db.executemany(sql, rows)


@flow
def customers_etl(db_path: str, upsert: bool) -> int:
    load(db_path, transform(extract()), upsert)
    return len(ROWS)
"""


def test_retry_safety_report_names_the_injection_point_and_the_duplicates(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(etl=ETL_MODULE)
    pytester.makepyfile(
        """
        import pytest
        from etl import customers_etl, reset, rows
        from pytest_prefect_flows import assert_retry_safe

        @pytest.mark.parametrize("kind", ["upsert", "append"])
        def test_load_is_retry_safe(tmp_path, kind):
            db_path, upsert = str(tmp_path / "customers.db"), kind == "upsert"
            assert_retry_safe(
                customers_etl, db_path, upsert,
                observe=lambda: rows(db_path), reset=lambda: reset(db_path, keyed=upsert),
            )
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*IdempotencyError: flow 'customers-etl' is not retry-safe at 1 of 6 injection points:",
            "*  1. load ran its body, then failed; the re-run inserted 3 duplicate rows",
            "*duplicated: (1, 'Ada')  (2 copies, clean run has 1)",
            "*--- clean run",
            "*+++ after the re-run",
            "*+  (1, 'Ada'),",
            "*Injected run:",
            "*Re-run:",
            "FAILED *::test_load_is_retry_safe[[]append[]]*",
        ]
    )


def test_hypothesis_check_shows_the_shrunk_input_and_the_diff(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from hypothesis import Phase, settings

        # no explain phase: its hundred more flow runs say nothing about shrinking
        settings.register_profile(
            "ci", max_examples=10, derandomize=True, database=None, phases=[Phase.generate, Phase.shrink]
        )
        settings.load_profile("ci")
        """
    )
    pytester.makepyfile(
        """
        from prefect import task
        from pytest_prefect_flows import check_idempotent, records

        @task
        def to_cents(rows):
            for row in rows:  # mutates its input: a retry converts the amounts again
                row["amount"] = round(row["amount"] * 100)
            return rows

        def test_to_cents_is_idempotent():
            check_idempotent(
                to_cents, records({"id": int, "amount": float}, unique_by="id"), max_shrinks=None
            )
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*IdempotencyError: task 'to_cents' is not idempotent: run 2 returned a different result.",
            "*result: [[]{'amount': 10000, 'id': 0}]  (after run 1: [[]{'amount': 100, 'id': 0}])",
            "*Timeline of flow run * (check-to_cents): Completed",
            "*Input:",
            "*  {'rows': [[]{'amount': 1.0, 'id': 0}]}",
        ]
    )


def test_idempotency_failure_points_at_the_users_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from prefect import task
        from pytest_prefect_flows import assert_idempotent

        LEDGER = []

        @task
        def record_payment(payment_id, amount):
            LEDGER.append((payment_id, amount))

        def test_payment_is_recorded_once():
            assert_idempotent(record_payment, "p-1", 25, observe=lambda: LEDGER)
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       assert_idempotent(record_payment, *",
            "E   *IdempotencyError: task 'record_payment' is not idempotent: run 2 inserted 1 duplicate row.",
            "E   *duplicated: ('p-1', 25)  (2 copies, after run 1 has 1)",
            "E   *Timeline of flow run * (check-record_payment): Completed",
        ]
    )
    assert "idempotency.py" not in result.stdout.str()
