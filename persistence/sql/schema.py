"""Schema versioning: check the database's Alembic revision at open, migrate ours, refuse others.

Decision table, taken on a read-only look first (so a refused database is never written to):

- no tables at all                        -> create the schema (Alembic upgrade to head)
- our version table, a revision we know   -> upgrade to head if older, nothing if current
- our version table, an unknown revision  -> `SchemaMismatch` (a newer cocreate made it)
- tables but no version table             -> `SchemaMismatch` (not a cocreate database)

Migrations run in one transaction (DDL is transactional on SQLite and PostgreSQL) holding the
write lock (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory lock), and the decision is taken
again inside it, so two processes opening the same empty database at once do not collide.

New revision (developers): ``python -c "from alembic import command; from persistence.sql.schema
import alembic_config; command.revision(alembic_config('sqlite+aiosqlite:///dev.db'), 'message',
autogenerate=True)"`` against a database at the current head.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from persistence.base import SchemaMismatch, StorageError
from persistence.sql.engine import Database
from persistence.sql.errors import translated
from persistence.sql.tables import TABLE_NAMES, VERSION_TABLE

log = logging.getLogger("cocreate.schema")

MIGRATIONS = Path(__file__).resolve().with_name("migrations")

#: PostgreSQL advisory lock key serialising schema changes ("cocreate" in ASCII).
_ADVISORY_KEY = 0x636F637265617465


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for our script directory, with no alembic.ini on disk."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    return config


@functools.cache
def script_directory() -> ScriptDirectory:
    """The migration scripts shipped with this version of cocreate (loaded once)."""
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The revision this code expects."""
    head = script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise StorageError("no migration scripts found in " + str(MIGRATIONS))
    return head


def known_revisions() -> frozenset[str]:
    """Every revision in our migration history."""
    return frozenset(rev.revision for rev in script_directory().walk_revisions())


@dataclass(frozen=True, slots=True)
class SchemaState:
    """What `inspect_schema` found: `revision` None for an empty database."""

    revision: str | None

    @property
    def current(self) -> bool:
        return self.revision == head_revision()


def inspect_schema(conn: Connection, where: str) -> SchemaState:
    """Look at the database without changing it; `SchemaMismatch` if it is not ours."""
    tables = set(inspect(conn).get_table_names())
    if VERSION_TABLE not in tables:
        if tables:
            listed = ", ".join(sorted(tables)[:10])
            raise SchemaMismatch(
                f"{where} holds tables ({listed}) but no cocreate schema version "
                f"(table {VERSION_TABLE!r}); it is not a cocreate database or was made by a "
                "version too old to know. Refusing to touch it: point cocreate at an empty database."
            )
        return SchemaState(None)
    heads = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_heads()
    if not heads:
        if tables == {VERSION_TABLE}:
            return SchemaState(None)
        raise SchemaMismatch(f"{where} has an empty {VERSION_TABLE!r} table next to other tables; refusing")
    unknown = sorted(set(heads) - known_revisions())
    if unknown or len(heads) != 1:
        raise SchemaMismatch(
            f"{where} has schema version {', '.join(heads)}, unknown to this cocreate "
            f"(this build supports schema versions up to {head_revision()}); it was probably created "
            "by a newer cocreate. Nothing was changed: upgrade cocreate, or point it at another database."
        )
    state = SchemaState(heads[0])
    missing = TABLE_NAMES - tables
    if state.current and missing:
        raise SchemaMismatch(f"{where} is at schema {heads[0]} but lacks tables {sorted(missing)}")
    return state


def _migrate(conn: Connection, where: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
    state = inspect_schema(conn, where)  # again, under the lock
    if state.current:
        return
    log.info("migrating %s from schema %s to %s", where, state.revision or "(empty)", head_revision())
    config = alembic_config()
    config.attributes["connection"] = conn
    try:
        command.upgrade(config, "head")
    except CommandError as exc:
        raise StorageError(f"migrating {where} to {head_revision()} failed: {exc}") from exc


async def ensure_schema(db: Database) -> None:
    """Create or upgrade our schema; `SchemaMismatch` (nothing written) if the database is foreign."""
    with translated("checking the schema", db.where):
        async with db.read() as conn:
            state = await conn.run_sync(inspect_schema, db.where)
        if not state.current:
            async with db.write() as conn:
                await conn.run_sync(_migrate, db.where)
        await db.enable_wal()
