"""The `fault_sweep` fixture as users meet it: one fault at every task run, then a clean rerun."""

from __future__ import annotations

import re

import pytest


def literal(*patterns: str) -> list[str]:
    """fnmatch patterns whose square brackets (`load [after]`) are text; `*` still matches anything."""
    return [re.sub(r"[][]", lambda bracket: f"[{bracket.group()}]", pattern) for pattern in patterns]


ETL_MODULE = """
import contextlib
import sqlite3

from prefect import flow, task


def connect(db_path):
    return contextlib.closing(sqlite3.connect(db_path))


def reset(db_path, keyed=True):
    with connect(db_path) as db, db:
        db.execute("DROP TABLE IF EXISTS orders")
        db.execute(f"CREATE TABLE orders (id INTEGER {'PRIMARY KEY' if keyed else ''}, name TEXT)")


def rows(db_path):
    with connect(db_path) as db:
        return db.execute("SELECT id, name FROM orders ORDER BY id").fetchall()


def write(db_path, rows, upsert):
    sql = "INSERT INTO orders (id, name) VALUES (?, ?)"
    if upsert:
        sql += " ON CONFLICT(id) DO UPDATE SET name = excluded.name"
    with connect(db_path) as db, db:
        db.executemany(sql, rows)


@task
def extract(count):
    return [(number, f"ROW-{number}") for number in range(count)]


@task
def load(db_path, rows, upsert):
    write(db_path, rows, upsert)


@task(retries=2)
def load_with_retries(db_path, rows, upsert):
    write(db_path, rows, upsert)


@flow
def etl(db_path: str, upsert: bool = True) -> int:
    load(db_path, extract(3), upsert)
    return 3


@flow
def etl_with_retries(db_path: str, upsert: bool = True) -> int:
    load_with_retries(db_path, extract(3), upsert)
    return 3
"""


@pytest.fixture
def etl_module(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(etl=ETL_MODULE)


def test_a_plain_insert_fails_at_load_after_and_the_upsert_passes(
    pytester: pytest.Pytester, etl_module: None
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from etl import etl, reset, rows

        @pytest.mark.parametrize("upsert", [True, False], ids=["upsert", "insert"])
        def test_etl_is_safe_wherever_it_fails(tmp_path, fault_sweep, upsert):
            db_path = str(tmp_path / "orders.db")
            report = fault_sweep(
                etl, db_path, upsert,
                setup=lambda: reset(db_path, keyed=upsert), observe=lambda: rows(db_path),
            )
            assert [point.label for point in report.points] == [
                "extract [before]", "extract [after]", "load [before]", "load [after]"
            ]
            report.assert_recovered()
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        literal(
            "*FaultSweepError: fault sweep of 'etl': 4 points, 9 flow runs in * s, 1 failed:",
            "*  load [after]: 6 rows, clean run 3 rows: duplicates (0, 'ROW-0'), (1, 'ROW-1'), (2, 'ROW-2')",
            "*The flow was run again after the fault run ended Failed.",
            "*duplicated: (0, 'ROW-0')  (2 copies, clean run has 1)",
        )
    )
    result.stdout.no_fnmatch_line("*  extract * rows*")
    result.stdout.no_fnmatch_line(*literal("*  load [before]: *"))


def test_a_retry_inside_the_fault_run_that_writes_twice_is_caught(
    pytester: pytest.Pytester, etl_module: None
) -> None:
    pytester.makepyfile(
        """
        from etl import etl_with_retries, reset, rows

        def test_retries(tmp_path, fault_sweep):
            db_path = str(tmp_path / "orders.db")
            report = fault_sweep(
                etl_with_retries, db_path, False,
                setup=lambda: reset(db_path, keyed=False), observe=lambda: rows(db_path),
            )
            after = [point for point in report.points if point.label == "load_with_retries [after]"][0]
            assert (after.fault_state, after.rerun_state, after.matched) == ("Completed", None, False)
            report.assert_recovered()
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        literal(
            "*  load_with_retries [after]: 6 rows, clean run 3 rows: duplicates (0, 'ROW-0'), *",
            "*Prefect retried load_with_retries inside the fault run (the task's retries).",
        )
    )


MAPPED_AND_ASYNC = """
    import asyncio
    import contextlib
    import sqlite3

    from prefect import flow, task

    def reset(db_path):
        with contextlib.closing(sqlite3.connect(db_path)) as db, db:
            db.execute("DROP TABLE IF EXISTS seen")
            db.execute("CREATE TABLE seen (item INTEGER)")

    def rows(db_path):
        with contextlib.closing(sqlite3.connect(db_path)) as db:
            return db.execute("SELECT item FROM seen ORDER BY item").fetchall()

    @task
    def record(db_path, item):
        with contextlib.closing(sqlite3.connect(db_path)) as db, db:
            db.execute("INSERT INTO seen VALUES (?)", (item,))

    @flow
    def mapped(db_path: str):
        record.map(db_path, [10, 20, 30]).result()

    @task
    async def fetch(item):
        await asyncio.sleep(0)
        return item * 2

    @flow
    async def gather(items: list) -> list:
        return list(await asyncio.gather(*(fetch(item) for item in items)))

    @flow
    def child(db_path: str, item: int):
        record(db_path, item)

    @flow
    def parent(db_path: str):
        child(db_path, 1)
        child(db_path, 2)
"""


def test_mapped_async_and_subflow_task_runs_are_points_of_their_own(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        MAPPED_AND_ASYNC
        + """
    def test_mapped(tmp_path, fault_sweep):
        db_path = str(tmp_path / "seen.db")
        report = fault_sweep(mapped, db_path, setup=lambda: reset(db_path), observe=lambda: rows(db_path),
                             modes=["before"])
        assert [point.label for point in report.points] == [
            "record[0] [before]", "record[1] [before]", "record[2] [before]"
        ]
        report.assert_recovered()

    def test_async(fault_sweep):
        report = fault_sweep(gather, [1, 2], modes=("after", "crash"))
        assert [point.label for point in report.points] == [
            "fetch[0] [after]", "fetch[0] [crash]", "fetch[1] [after]", "fetch[1] [crash]"
        ]
        assert {point.fault_state for point in report.points} == {"Failed", "Crashed"}
        assert {point.rerun_state for point in report.points} == {"Completed"}
        report.assert_recovered()

    def test_subflows(tmp_path, fault_sweep):
        db_path = str(tmp_path / "seen.db")
        report = fault_sweep(parent, db_path, setup=lambda: reset(db_path), observe=lambda: rows(db_path),
                             modes=["after"])
        assert [point.label for point in report.points] == ["record[0] [after]", "record[1] [after]"]
        observed = [point.observation for point in report.failed]
        assert observed == [[(1,), (1,), (2,)], [(1,), (1,), (2,), (2,)]]
    """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    # Failing record[1] re-runs the whole map: the other two items are recorded twice.
    result.stdout.fnmatch_lines(
        literal(
            "*  record[0] [before]: 5 rows, clean run 3 rows: duplicates (20,), (30,)",
            "*  record[1] [before]: 5 rows, clean run 3 rows: duplicates (10,), (30,)",
            "*  record[2] [before]: 5 rows, clean run 3 rows: duplicates (10,), (20,)",
        )
    )


def test_max_points_limits_the_sweep_and_verbose_prints_the_table(
    pytester: pytest.Pytester, etl_module: None
) -> None:
    pytester.makepyfile(
        """
        from etl import etl, reset, rows

        def test_first_points(tmp_path, fault_sweep):
            db_path = str(tmp_path / "orders.db")
            report = fault_sweep(
                etl, db_path, setup=lambda: reset(db_path), observe=lambda: rows(db_path), max_points=3,
                modes=("before", "after", "crash"),
            )
            assert [point.label for point in report.points] == [
                "extract [before]", "extract [after]", "extract [crash]"
            ]
            report.assert_recovered()
        """
    )
    result = pytester.runpytest_subprocess("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        literal(
            "*- prefect fault sweep -*",
            "test_max_points_limits_the_sweep_and_verbose_prints_the_table.py::test_first_points",
            "  fault sweep of 'etl': 3 points (3 more left out by max_points), 7 flow runs in * s, "
            "all recovered",
            "  point * fault run  rerun * result",
            "  extract [crash] * Crashed * Completed  ok",
        )
    )


def test_the_schedule_search_shrinks_to_the_two_faults_that_break_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import contextlib
        import sqlite3

        from hypothesis import settings
        from prefect import flow, task

        # Every body run appends a row; retries absorb one extra row, not two.
        def reset(db_path):
            with contextlib.closing(sqlite3.connect(db_path)) as db, db:
                db.execute("DROP TABLE IF EXISTS journal")
                db.execute("CREATE TABLE journal (step TEXT)")

        def rows(db_path):
            with contextlib.closing(sqlite3.connect(db_path)) as db:
                return db.execute("SELECT step FROM journal ORDER BY step").fetchall()

        def make_step(name):
            @task(name=name, retries=1)
            def step(db_path):
                with contextlib.closing(sqlite3.connect(db_path)) as db, db:
                    db.execute("INSERT INTO journal VALUES (?)", (name,))
            return step

        first, second, third = make_step("first"), make_step("second"), make_step("third")

        @flow
        def journal(db_path: str):
            first(db_path)
            second(db_path)
            third(db_path)

        def at_most_one_extra(clean, seen):
            return len(seen) <= len(clean) + 1

        def test_single_faults_pass(tmp_path, fault_sweep):
            db_path = str(tmp_path / "journal.db")
            fault_sweep(journal, db_path, setup=lambda: reset(db_path), observe=lambda: rows(db_path),
                        check=at_most_one_extra).assert_recovered()

        def test_two_faults(tmp_path, fault_sweep):
            db_path = str(tmp_path / "journal.db")
            report = fault_sweep(
                journal, db_path, setup=lambda: reset(db_path), observe=lambda: rows(db_path),
                check=at_most_one_extra, faults=2,
                settings=settings(max_examples=15, database=None, derandomize=True),
            )
            assert [point.label for point in report.failed] == ["first [after], second [after]"]
            report.assert_recovered()
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        literal(
            "*  first [after], second [after]: 5 rows, clean run 3 rows: duplicates ('first',), ('second',)"
        )
    )


def test_the_schedule_search_draws_inputs_and_plans_from_the_idempotency_strategies(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import contextlib
        import sqlite3

        from hypothesis import settings
        from prefect import flow, task
        from pytest_prefect_flows import failure_plans, records

        def reset(db_path):
            with contextlib.closing(sqlite3.connect(db_path)) as db, db:
                db.execute("DROP TABLE IF EXISTS orders")
                db.execute("CREATE TABLE orders (id INTEGER, name TEXT)")

        def rows(db_path):
            with contextlib.closing(sqlite3.connect(db_path)) as db:
                return db.execute("SELECT id, name FROM orders ORDER BY id").fetchall()

        @task
        def count(batch):
            return len(batch)

        @task
        def insert(db_path, batch):
            with contextlib.closing(sqlite3.connect(db_path)) as db, db:
                db.executemany("INSERT INTO orders VALUES (:id, :name)", batch)

        @flow
        def loader(db_path: str, batch: list):
            count(batch)
            insert(db_path, batch)

        def test_drawn(tmp_path, fault_sweep):
            db_path = str(tmp_path / "orders.db")
            fault_sweep(
                loader, db_path, records({"id": int, "name": str}, max_size=4),
                setup=lambda: reset(db_path), observe=lambda: rows(db_path),
                faults=failure_plans(["count", "insert"], where=["after"], max_faults=2),
                settings=settings(max_examples=10, database=None, derandomize=True), max_shrinks=8,
            ).assert_recovered()
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        literal(
            "*insert [after]: 2 rows, clean run 1 row: duplicates (*",
            "*  Input (drawn): {'args': (*, [{'id': *, 'name': *}])}",
        )
    )
