"""Idempotency and retry-safety checks on reference-like ETL flows writing to a temp-file SQLite DB."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings, strategies as st
from prefect import flow, task
from prefect.cache_policies import INPUTS

from pytest_prefect_flows.exceptions import IdempotencyError, UsageError
from pytest_prefect_flows.idempotency import (
    RowChanges,
    assert_idempotent,
    assert_retry_safe,
    check_idempotent,
    diff_snapshots,
)
from pytest_prefect_flows.recording import record_runs
from pytest_prefect_flows.strategies import records

ROWS = [
    {"id": 1, "name": "ada", "amount": 10.5},
    {"id": 2, "name": "grace", "amount": 20.0},
    {"id": 3, "name": "linus", "amount": 7.25},
]
SCHEMA = {"id": int, "name": str, "amount": float}
# no explain phase: after a failure it spends the shrink budget on flow runs that shrink nothing
FAST = settings(max_examples=8, derandomize=True, database=None, phases=[Phase.generate, Phase.shrink])


class Destination:
    """A temp-file SQLite table `orders`, with (`keyed`) or without a primary key on `id`."""

    def __init__(self, path: Path, keyed: bool = True) -> None:
        self.path = str(path)
        self.keyed = keyed
        self.fresh_entered = 0

    def reset(self) -> None:
        key = " PRIMARY KEY" if self.keyed else ""
        with contextlib.closing(sqlite3.connect(self.path)) as db, db:
            db.execute("DROP TABLE IF EXISTS orders")
            db.execute(f"CREATE TABLE orders (id INTEGER{key}, name TEXT, amount REAL)")

    @contextlib.contextmanager
    def fresh(self) -> Iterator[None]:
        """A new table for one scenario, dropped after it."""
        self.fresh_entered += 1
        self.reset()
        yield
        with contextlib.closing(sqlite3.connect(self.path)) as db, db:
            db.execute("DROP TABLE orders")

    def rows(self) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            found = db.execute("SELECT id, name, amount FROM orders ORDER BY id").fetchall()
        return [{"id": i, "name": n, "amount": a} for i, n, a in found]


@pytest.fixture
def upsert_db(tmp_path: Path) -> Destination:
    destination = Destination(tmp_path / "upsert.db")
    destination.reset()
    return destination


@pytest.fixture
def append_db(tmp_path: Path) -> Destination:
    destination = Destination(tmp_path / "append.db", keyed=False)
    destination.reset()
    return destination


def _write(db_path: str, sql: str, rows: list[dict[str, Any]]) -> int:
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        db.executemany(sql, [(r["id"], r["name"], r["amount"]) for r in rows])
    return len(rows)


@task
def extract(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(row) for row in rows]


@task
def transform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "name": row["name"].title()} for row in rows]


@task
def transform_in_place(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Converts amounts to cents by mutating its input: a retry sees the converted rows."""
    for row in rows:
        row["amount"] = round(row["amount"] * 100)
    return rows


@task
def upsert(db_path: str, rows: list[dict[str, Any]]) -> int:
    return _write(
        db_path,
        "INSERT INTO orders (id, name, amount) VALUES (?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET name = excluded.name, amount = excluded.amount",
        rows,
    )


@task
def append(db_path: str, rows: list[dict[str, Any]]) -> int:
    return _write(db_path, "INSERT INTO orders (id, name, amount) VALUES (?, ?, ?)", rows)


@task(retries=1)
def append_with_retry(db_path: str, rows: list[dict[str, Any]]) -> int:
    return _write(db_path, "INSERT INTO orders (id, name, amount) VALUES (?, ?, ?)", rows)


@task(cache_policy=INPUTS)
def append_cached(db_path: str, rows: list[dict[str, Any]]) -> int:
    return _write(db_path, "INSERT INTO orders (id, name, amount) VALUES (?, ?, ?)", rows)


@task
def count_rows(db_path: str) -> int:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return int(db.execute("SELECT COUNT(*) FROM orders").fetchone()[0])


@flow
def upsert_etl(db_path: str, rows: list[dict[str, Any]]) -> int:
    upsert(db_path, transform(extract(rows)))
    return count_rows(db_path)


@flow
def append_etl(db_path: str, rows: list[dict[str, Any]]) -> int:
    append(db_path, transform(extract(rows)))
    return count_rows(db_path)


@flow
def append_with_retry_etl(db_path: str, rows: list[dict[str, Any]]) -> int:
    append_with_retry(db_path, transform(extract(rows)))
    return count_rows(db_path)


@flow
def cached_append_etl(db_path: str, rows: list[dict[str, Any]]) -> int:
    append_cached(db_path, transform(extract(rows)))
    return count_rows(db_path)


@flow
def no_tasks() -> int:
    return 1


@flow
def always_fails() -> None:
    raise RuntimeError("source is down")


# --- diffs of snapshots (no flow runs)


def test_row_changes_count_duplicates_additions_and_losses() -> None:
    expected = [{"id": 1}, {"id": 2}, {"id": 3}]
    observed = [{"id": 1}, {"id": 1}, {"id": 1}, {"id": 2}, {"id": 4}]
    changes = RowChanges.between(expected, observed)
    assert changes.summary() == "inserted 2 duplicate rows and inserted 1 unexpected row and lost 1 row"
    assert changes.lines("clean run") == [
        "duplicated: {'id': 1}  (3 copies, clean run has 1)",
        "added:      {'id': 4}",
        "missing:    {'id': 3}",
    ]


def test_diff_of_tables_names_the_table() -> None:
    diff = diff_snapshots(
        {"orders": [(1, "a")], "audit": []}, {"orders": [(1, "a"), (1, "a")], "audit": []}, "run 1", "run 2"
    )
    assert diff is not None
    assert diff.summary == "inserted 1 duplicate row in 'orders'"
    assert diff.details[:2] == ["'orders':", "  duplicated: (1, 'a')  (2 copies, run 1 has 1)"]
    assert diff.details[2:4] == ["--- run 1", "+++ run 2"]


def test_diff_of_reordered_rows_and_of_equal_snapshots() -> None:
    reordered = diff_snapshots([1, 2], [2, 1], "a", "b")
    assert reordered is not None
    assert reordered.summary == "has the same rows in a different order"
    assert diff_snapshots([{"x": float("nan")}], [{"x": float("nan")}], "a", "b") is None
    assert diff_snapshots({"state": "done"}, {"state": "done"}, "a", "b") is None


# --- assert_idempotent


def test_upsert_load_is_idempotent(upsert_db: Destination) -> None:
    assert_idempotent(upsert_etl, upsert_db.path, ROWS, observe=upsert_db.rows, runs=3)
    assert upsert_db.rows() == [{**row, "name": row["name"].title()} for row in ROWS]


def test_append_load_is_not_idempotent(append_db: Destination) -> None:
    with pytest.raises(IdempotencyError) as failure:
        assert_idempotent(append_etl, append_db.path, ROWS, observe=append_db.rows)
    message = str(failure.value)
    assert message.startswith(
        "flow 'append-etl' is not idempotent: "
        "run 2 returned a different result and inserted 3 duplicate rows."
    )
    assert "result: 6  (after run 1: 3)" in message
    assert "duplicated: {'amount': 10.5, 'id': 1, 'name': 'Ada'}  (2 copies, after run 1 has 1)" in message
    assert "Timeline of flow run" in message
    assert failure.value.problems == [message.splitlines()[0]]


def test_task_is_run_in_an_ad_hoc_flow_with_the_same_arguments(upsert_db: Destination) -> None:
    with record_runs() as runs:
        assert_idempotent(upsert, upsert_db.path, ROWS, observe=upsert_db.rows)
    assert [run.flow_name for run in runs.flow_runs] == ["check-upsert", "check-upsert"]
    assert [run.task_names for run in runs.flow_runs] == [["upsert"], ["upsert"]]


def test_task_that_mutates_its_input_is_not_idempotent() -> None:
    rows = [dict(row) for row in ROWS]
    with pytest.raises(
        IdempotencyError, match=r"task 'transform_in_place' is not idempotent: run 2 returned a "
    ):
        assert_idempotent(transform_in_place, rows)


def test_async_task_is_awaited_in_the_ad_hoc_flow() -> None:
    seen: list[int] = []

    @task
    async def remember(value: int) -> int:
        seen.append(value)
        return value

    assert_idempotent(remember, 7, observe=lambda: sorted(set(seen)))
    assert seen == [7, 7]


def test_a_run_that_fails_is_reported_with_its_exception(upsert_db: Destination) -> None:
    plain_insert_db = Destination(Path(upsert_db.path).with_name("keyed.db"))
    plain_insert_db.reset()
    with pytest.raises(IdempotencyError) as failure:
        assert_idempotent(append_etl, plain_insert_db.path, ROWS, observe=plain_insert_db.rows)
    assert str(failure.value).startswith(
        "flow 'append-etl' did not complete on run 2 of 2 (Failed: IntegrityError('UNIQUE constraint failed"
    )


def test_each_run_starts_with_an_empty_result_cache(append_db: Destination) -> None:
    with pytest.raises(
        IdempotencyError, match="run 2 returned a different result and inserted 3 duplicate rows"
    ):
        assert_idempotent(cached_append_etl, append_db.path, ROWS, observe=append_db.rows)


def test_reset_runs_before_the_runs(upsert_db: Destination) -> None:
    upsert_db_rows_before: list[list[dict[str, Any]]] = []

    def reset() -> None:
        upsert_db_rows_before.append(upsert_db.rows())
        upsert_db.reset()

    assert_idempotent(upsert_etl, upsert_db.path, ROWS, observe=upsert_db.rows, reset=reset)
    assert_idempotent(upsert_etl, upsert_db.path, ROWS[:1], observe=upsert_db.rows, reset=reset)
    assert [len(rows) for rows in upsert_db_rows_before] == [0, 3]
    assert len(upsert_db.rows()) == 1


# --- assert_retry_safe


def test_upsert_etl_is_retry_safe(upsert_db: Destination) -> None:
    with record_runs() as runs:
        assert_retry_safe(upsert_etl, upsert_db.path, ROWS, observe=upsert_db.rows, reset=upsert_db.reset)
    # A clean run, then for 4 tasks x (after, crash): the failed run and its re-run.
    assert len(runs.flow_runs) == 1 + 4 * 2 * 2
    assert {run.state_name for run in runs.flow_runs} == {"Completed", "Failed", "Crashed"}


def test_append_etl_reports_every_broken_injection_point(append_db: Destination) -> None:
    with pytest.raises(IdempotencyError) as failure:
        assert_retry_safe(append_etl, append_db.path, ROWS, observe=append_db.rows, reset=append_db.reset)
    duplicates = "the re-run returned a different result and inserted 3 duplicate rows"
    assert failure.value.problems == [
        f"append ran its body, then failed; {duplicates}",
        f"count_rows ran its body, then failed; {duplicates}",
        f"count_rows crashed before its body ran; {duplicates}",
    ]
    message = str(failure.value)
    assert message.startswith("flow 'append-etl' is not retry-safe at 3 of 8 injection points:")
    assert "duplicated: {'amount': 10.5, 'id': 1, 'name': 'Ada'}  (2 copies, clean run has 1)" in message
    assert "Injected run:" in message
    assert "Re-run:" in message


def test_prefects_own_retry_is_the_recovery_when_the_task_has_retries(append_db: Destination) -> None:
    with pytest.raises(IdempotencyError) as failure:
        assert_retry_safe(
            append_with_retry_etl, append_db.path, ROWS, observe=append_db.rows, reset=append_db.reset
        )
    assert failure.value.problems[0] == (
        "append_with_retry ran its body, then failed; Prefect's retry of append_with_retry "
        "returned a different result and inserted 3 duplicate rows"
    )


def test_a_re_run_that_fails_is_reported(tmp_path: Path) -> None:
    keyed = Destination(tmp_path / "keyed.db")
    with pytest.raises(IdempotencyError) as failure:
        assert_retry_safe(append_etl, keyed.path, ROWS, observe=keyed.rows, reset=keyed.reset)
    assert failure.value.problems[0].startswith(
        "append ran its body, then failed; the re-run did not complete "
        "(Failed: IntegrityError('UNIQUE constraint failed: orders.id'"
    )


def test_a_re_run_reuses_the_cache_of_the_run_it_recovers(append_db: Destination) -> None:
    with pytest.raises(IdempotencyError) as failure:
        assert_retry_safe(
            cached_append_etl, append_db.path, ROWS, observe=append_db.rows, reset=append_db.reset
        )
    # When count_rows fails, the re-run finds append_cached's result in the cache and skips its body.
    assert [problem.split(";")[0] for problem in failure.value.problems] == [
        "append_cached ran its body, then failed"
    ]


def test_reset_may_return_a_context_manager_per_scenario(upsert_db: Destination) -> None:
    assert_retry_safe(upsert_etl, upsert_db.path, ROWS, observe=upsert_db.rows, reset=upsert_db.fresh)
    assert upsert_db.fresh_entered == 1 + 4 * 2


def test_a_task_the_scenario_never_reaches_is_reported() -> None:
    done: list[str] = []

    @task
    def mark_done() -> None:
        done.append("x")

    @flow
    def first_time_only() -> int:
        if not done:  # state that no reset() restores: only the clean run reaches the task
            mark_done()
        return 1

    with pytest.raises(IdempotencyError) as failure:
        assert_retry_safe(first_time_only, observe=lambda: None)
    never_fired = (
        "was injected but never fired (the task did not run in this scenario, though it ran in the "
        "clean run); check that reset() restores the clean run's starting state."
    )
    assert failure.value.problems == [
        f"mark_done: a failure after its body {never_fired}",
        f"mark_done: a crash before its body {never_fired}",
    ]


def test_retry_safe_needs_a_clean_run_that_completes() -> None:
    with pytest.raises(
        IdempotencyError, match=r"The clean run of flow 'always-fails' did not complete \(Failed"
    ):
        assert_retry_safe(always_fails, observe=list)


def test_retry_safe_needs_tasks_to_inject_into() -> None:
    with pytest.raises(UsageError, match="The clean run of flow 'no-tasks' ran no tasks"):
        assert_retry_safe(no_tasks, observe=list)


# --- check_idempotent


def test_copying_transform_is_idempotent_for_generated_batches() -> None:
    check_idempotent(transform, records(SCHEMA, unique_by="id"), settings=FAST)


def test_in_place_transform_fails_with_the_minimal_batch() -> None:
    with pytest.raises(IdempotencyError) as failure:
        check_idempotent(transform_in_place, records(SCHEMA), settings=FAST)
    message = str(failure.value)
    assert "task 'transform_in_place' is not idempotent: run 2 returned a different result." in message
    assert "Input:\n  {'rows': [{'amount': 1.0, 'id': 0, 'name': ''}]}" in message


def test_each_example_gets_fresh_state_from_the_reset_context_manager(upsert_db: Destination) -> None:
    check_idempotent(
        upsert_etl,
        {"db_path": st.just(upsert_db.path), "rows": records(SCHEMA, unique_by="id", max_size=5)},
        observe=upsert_db.rows,
        reset=upsert_db.fresh,
        settings=FAST,
    )
    assert upsert_db.fresh_entered == FAST.max_examples


def test_active_profile_is_used_when_no_settings_are_given() -> None:
    drawn: list[int] = []

    @task
    def identity(value: int) -> int:
        drawn.append(value)
        return value

    settings.register_profile("idempotency-test", max_examples=3, database=None)
    previous = settings.get_current_profile_name()
    settings.load_profile("idempotency-test")
    try:
        check_idempotent(identity, st.integers())
    finally:
        settings.load_profile(previous)
    assert len(drawn) == 3 * 2


def test_derandomize_draws_the_same_inputs_each_time() -> None:
    seen: list[list[dict[str, Any]]] = []

    @task
    def remember(rows: list[dict[str, Any]]) -> int:
        seen.append(rows)
        return len(rows)

    check_idempotent(remember, records(SCHEMA), settings=FAST)
    first, seen[:] = list(seen), []
    check_idempotent(remember, records(SCHEMA), settings=FAST)
    assert seen == first
    assert len({repr(rows) for rows in first}) > 1


# --- usage errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: assert_idempotent(len, [1], observe=list),
            r"takes a @flow or a @task, got <built-in function len>",
        ),
        (
            lambda: assert_idempotent(upsert_etl, runs=1),
            r"runs=1\): runs is how many times .* an integer >= 2",
        ),
        (
            lambda: assert_idempotent(upsert_etl, observe=[1]),
            r"observe=\[1\]\) takes a function with no arguments",
        ),
        (
            lambda: assert_retry_safe(upsert_etl, observe=None),
            r"observe=None\) takes a function with no arguments",
        ),
        (lambda: check_idempotent(transform, [1, 2]), r"takes a hypothesis strategy .* got \[1, 2\]"),
        (
            lambda: check_idempotent(transform, {"batch": st.just([])}),
            r"has no parameter 'batch'; its parameters: rows",
        ),
        (lambda: check_idempotent(no_tasks, st.just(1)), r"flow 'no-tasks' takes no parameters to generate"),
        (
            lambda: check_idempotent(transform, st.just([]), settings={"max_examples": 5}),
            r"takes a hypothesis `settings\(...\)` object",
        ),
    ],
)
def test_bad_arguments_are_usage_errors(call: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call()


def test_reset_written_as_a_bare_generator_is_a_usage_error() -> None:
    def fresh() -> Iterator[None]:
        yield

    with pytest.raises(
        UsageError, match=r"is a generator function; decorate it with @contextlib\.contextmanager"
    ):
        assert_idempotent(transform, [], reset=fresh)
