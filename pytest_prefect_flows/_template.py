"""Builds the template database (run as `python -m pytest_prefect_flows._template [auto|fast|migrations]`).

The environment, set by `backend.template.template_database`, points the server settings at the new file.

`python -m pytest_prefect_flows._template dump DIR` (in any environment) builds the installed
Prefect's template by Prefect's own migrations and writes it into DIR as a shipped template
(`backend/shipped.py`): run for each Prefect release the matrix tests, e.g. by `nox -s templates`.

Two builds give the same database (`tests/unit/test_template.py` compares them):

* `fast`: Prefect's own Alembic migrations, run through the synchronous `sqlite3` driver
  (`_compat.migrate_sqlite_synchronously`) instead of aiosqlite: about half the time.
* `migrations`: `PrefectDBInterface.create_db()`, as `prefect server database upgrade` does.

`auto` (the default) is `fast`, and should that fail (a future Prefect whose migrations need the
async driver), removes the file and runs `migrations`.

A schema created from the ORM metadata (`Base.metadata.create_all`) plus an Alembic stamp was
measured and rejected: on Prefect 3.9 it lacks a table (`deployment_version`) and 16 indexes of the
migrated database, has 13 others, and differs in 49 more (e.g. partial indexes lose their `WHERE`).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

BUILDS = ("auto", "fast", "migrations")


async def build(how: str = "auto") -> None:
    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration

    from pytest_prefect_flows import _compat

    db = provide_database_interface()
    if how == "fast":
        await asyncio.to_thread(_compat.migrate_sqlite_synchronously, _database_path(db))
    elif how == "auto":
        database = _database_path(db)
        try:
            await asyncio.to_thread(_compat.migrate_sqlite_synchronously, database)
        except Exception as exc:  # any failure: Prefect's own path still works
            print(f"fast template build failed ({exc!r}); running the migrations", file=sys.stderr)
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            await db.create_db()
    else:
        await db.create_db()
    async with db.session_context() as session:
        await run_block_auto_registration(session=session)
    engine = await db.engine()
    await engine.dispose()


def _database_path(db: Any) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(db.database_config.connection_url).database)


def exit_with_parent(parent: int, interval: float = 0.2) -> None:
    """Exit when the process that started this build is gone (killed during a cold build, it
    would otherwise leave the build running as an orphan): a daemon thread watches `parent`."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="prefect-flows-parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    from pytest_prefect_flows.backend.template import PARENT_PID_VARIABLE

    parent = os.environ.get(PARENT_PID_VARIABLE, "")
    if parent.isdigit():
        exit_with_parent(int(parent))
    how = argv[0] if argv else "auto"
    if how == "dump":
        return _dump(argv[1:])
    if how not in BUILDS:
        print(
            f"unknown template build {how!r}: use one of {', '.join(BUILDS)}, or `dump DIR`", file=sys.stderr
        )
        return 2
    asyncio.run(build(how))
    return 0


def _dump(argv: list[str]) -> int:
    if len(argv) != 1:
        print("name the directory to write the template into: `dump DIR`", file=sys.stderr)
        return 2
    from pytest_prefect_flows.backend.template import dump_template

    print(dump_template(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
