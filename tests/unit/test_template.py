"""The fast template build gives the database Prefect's own migrations give."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pytest_prefect_flows.backend import template


def _table_sql(sql: str) -> list[str]:
    # `batch_alter_table` recreates a table with its constraints in reflection order, which
    # follows Python's hash seed: the same constraints may come in another order.
    return sorted(line.strip().rstrip(",").strip() for line in sql.splitlines())


def _describe(path: Path) -> dict[str, Any]:
    with sqlite3.connect(path) as connection:
        master = {
            (kind, name, table): _table_sql(sql or "")
            for kind, name, table, sql in connection.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master"
            )
        }
        tables = [name for kind, name, _ in master if kind == "table"]
        columns = {table: connection.execute(f"PRAGMA table_info('{table}')").fetchall() for table in tables}
        rows = {
            table: connection.execute(f"SELECT count(*) FROM '{table}'").fetchone()[0] for table in tables
        }
        block_types = connection.execute(
            "SELECT slug, name, logo_url, documentation_url, description, code_example,"
            " is_protected FROM block_type ORDER BY slug"
        ).fetchall()
        # Prefect stores capabilities in set order (Python's hash seed): compared as sets.
        block_schemas = sorted(
            (slug, checksum, fields, sorted(json.loads(capabilities)), version)
            for slug, checksum, fields, capabilities, version in connection.execute(
                "SELECT t.slug, s.checksum, s.fields, s.capabilities, s.version"
                " FROM block_schema s JOIN block_type t ON t.id = s.block_type_id"
            )
        )
        references = connection.execute(
            "SELECT p.checksum, c.checksum, r.name FROM block_schema_reference r"
            " JOIN block_schema p ON p.id = r.parent_block_schema_id"
            " JOIN block_schema c ON c.id = r.reference_block_schema_id"
            " ORDER BY 1, 2, 3"
        ).fetchall()
        return {
            "sqlite_master": master,
            "columns": columns,
            "rows": rows,
            "alembic_version": connection.execute("SELECT * FROM alembic_version").fetchall(),
            "journal_mode": connection.execute("PRAGMA journal_mode").fetchone(),
            "block_types": block_types,
            "block_schemas": block_schemas,
            "block_schema_references": references,
        }


def test_fast_build_equals_prefects_migrations(tmp_path: Path) -> None:
    fast, migrated = tmp_path / "fast.db", tmp_path / "migrated.db"
    with ThreadPoolExecutor(2) as pool:
        builds = [pool.submit(template._build_template, fast, "fast")]
        builds.append(pool.submit(template._build_template, migrated, "migrations"))
        for build in builds:
            build.result()

    expected, observed = _describe(migrated), _describe(fast)

    assert expected["block_types"], "the migrated template has no registered block type"
    assert any(kind == "index" for kind, _, _ in expected["sqlite_master"])
    for aspect in expected:
        assert observed[aspect] == expected[aspect], f"{aspect}: fast build differs from Prefect's migrations"
