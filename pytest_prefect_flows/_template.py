"""Builds the template database (run as `python -m pytest_prefect_flows._template`).

The environment, set by `harness.template_database`, points the server settings at the new file.
"""

from __future__ import annotations

import asyncio


async def build() -> None:
    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration

    db = provide_database_interface()
    await db.create_db()
    async with db.session_context() as session:
        await run_block_auto_registration(session=session)
    engine = await db.engine()
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(build())
