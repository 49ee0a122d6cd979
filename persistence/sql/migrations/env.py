"""Alembic environment: migrates the connection `persistence.sql.schema` hands over in `attributes`.

Run by hand (no connection given), it connects to the configured `sqlalchemy.url` with the same
engine settings as the server; in offline mode it prints the SQL instead.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from persistence.sql.engine import Database, normalize_url
from persistence.sql.tables import VERSION_TABLE, metadata


def run_migrations(connection: Connection) -> None:
    """Run the pending migrations inside the caller's transaction."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite can only ALTER through table copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    database = Database(normalize_url(url))
    try:
        async with database.write() as conn:
            await conn.run_sync(run_migrations)
    finally:
        await database.dispose()


def _main() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        run_migrations(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection in config.attributes and no sqlalchemy.url configured")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, version_table=VERSION_TABLE, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url))


_main()
