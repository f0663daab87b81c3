"""Per-test cleanup of what a test saved in the isolated backend, the empty backend of
`isolation="test"`, and the cached storage lookup."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_prefect_flows.backend.template import template_database

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

    from pytest_prefect_flows.backend.isolated import IsolatedBackend

# What a test can save in the backend that the next test would see: table -> name column.
TEST_OBJECTS = {
    "block_document": "name",
    "variable": "name",
    "concurrency_limit": "tag",
    "concurrency_limit_v2": "name",
}


# The server's own rows, which no test makes: the schema version, its configuration (the key it
# encrypts secret blocks with, ...) and CSRF tokens.
SERVER_TABLES = frozenset({"alembic_version", "configuration", "csrf_token"})


def empty_database(database: Path, template: Path) -> None:
    """Delete every row an API client could have made, in one transaction, keeping what the
    template holds (block types and schemas) and the server's own tables.

    Through SQLite rather than the API: thousands of runs are gone in a few statements, and the
    server keeps no copy of these rows in memory (a flow run's cached event data is keyed by its
    id, which is never used again).
    """
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        connection.execute("PRAGMA synchronous = OFF")  # a throwaway database
        connection.execute("ATTACH DATABASE ? AS template", (str(template),))
        try:
            with connection:
                for table, kept in _tables(connection):
                    condition = f" WHERE id NOT IN (SELECT id FROM template.{table})" if kept else ""
                    connection.execute(f"DELETE FROM main.{table}{condition}")
        finally:
            connection.execute("DETACH DATABASE template")


def _tables(connection: sqlite3.Connection) -> list[tuple[str, bool]]:
    """The tables to empty, each with whether the template has rows in it (those are kept)."""
    query = "SELECT name FROM {}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    names = [name for (name,) in connection.execute(query.format("main"))]
    filled = {
        name
        for (name,) in connection.execute(query.format("template"))
        if connection.execute(f"SELECT 1 FROM template.{name} LIMIT 1").fetchone()
    }
    return [(name, name in filled) for name in names if name not in SERVER_TABLES]


@contextlib.contextmanager
def cached_default_storage_lookup(backend: IsolatedBackend) -> Iterator[None]:
    """Ask the backend for its default result storage once, not twice per flow run.

    Prefect's engine sends `GET /api/admin/storage` twice in every flow run. On a private server
    the answer changes only through a request the server sees (`PUT`/`DELETE /admin/storage`, a
    deleted block), all counted in `backend.writes`: the answer is kept until that count moves.
    Clients pointed at any other API (a test's own settings) still ask it. A no-op on a Prefect
    without this lookup (`_compat.server_default_storage_lookups`).
    """
    from prefect.settings import get_current_settings

    from pytest_prefect_flows._compat import server_default_storage_lookups

    lookups = server_default_storage_lookups()
    if lookups is None:
        yield
        return
    results, names = lookups
    read, aread = (getattr(results, name) for name in names)
    cached: dict[str, Any] = {}

    def ours() -> bool:
        return get_current_settings().api.url == backend.api_url

    def current() -> bool:
        return "value" in cached and cached["writes"] == backend.writes

    def read_cached() -> Any:
        if not ours():
            return read()
        if not current():
            writes = backend.writes  # before the request: a write meanwhile invalidates it
            cached.update(value=read(), writes=writes)
        return cached["value"]

    async def aread_cached() -> Any:
        if not ours():
            return await aread()
        if not current():
            writes = backend.writes
            cached.update(value=await aread(), writes=writes)
        return cached["value"]

    setattr(results, names[0], read_cached)
    setattr(results, names[1], aread_cached)
    try:
        yield
    finally:
        setattr(results, names[0], read)
        setattr(results, names[1], aread)


def saved_objects(database: Path) -> dict[str, dict[str, str]]:
    """table -> {id: name} of what a test could have saved."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        return {
            table: dict(connection.execute(f"SELECT id, {column} FROM {table}").fetchall())
            for table, column in TEST_OBJECTS.items()
        }


def remove_new_objects(backend: IsolatedBackend, before: dict[str, dict[str, str]] | None) -> None:
    """Delete, through the API, what was saved since `before` (`None`: since the template)."""
    from prefect.exceptions import ObjectNotFound

    if before is None:  # the server started during the test: it began as the template
        before = saved_objects(template_database(backend.template_dir))
    after = saved_objects(backend.database)
    new = {table: set(after[table].items()) - set(before[table].items()) for table in after}
    if not any(new.values()):
        return
    with backend.sync_client() as client:
        for table, rows in new.items():
            for id_, name in rows:
                with contextlib.suppress(ObjectNotFound):  # gone with its parent
                    _delete(client, table, id_, name)


def _delete(client: SyncPrefectClient, table: str, id_: str, name: str) -> None:
    if table == "block_document":
        client.delete_block_document(uuid.UUID(id_))
    elif table == "variable":
        client.delete_variable_by_name(name)
    elif table == "concurrency_limit":
        client.delete_concurrency_limit_by_tag(name)
    else:
        client.delete_global_concurrency_limit_by_name(name)
