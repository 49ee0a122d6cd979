"""`cocreate backup`, `restore-backup`, `new-epochs`: backups of the database, new epochs after a restore."""

# A restored document must not take back edits made after the backup: clients may still hold
# them. So a restore ends by giving every document a new epoch (`server.epochs.renew_epochs`):
# epoch-aware clients holding the old one are refused with 4404, and the clocks of the restored
# content are kept as the retired epoch's, so a stock y-websocket client claiming more of those
# clients' edits is refused as a stale copy. `new-epochs` does that last step alone, after a
# PostgreSQL restore (pg_restore) or any other copy made behind cocreate's back.

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from persistence.base import StorageError
from server.settings import Settings

COMMANDS = ("backup", "restore-backup", "new-epochs")
POSTGRES_BACKUP = (
    "PostgreSQL databases are backed up with pg_dump (e.g. `pg_dump -Fc -f cocreate.dump DBNAME`) "
    "and restored with pg_restore; run `cocreate new-epochs --db URL` after a pg_restore"
)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def database(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--db", dest="database_url", default=None, help="SQLAlchemy URL of the database")
        parser.add_argument("--data-dir", default=None, help="data folder of the default SQLite database")

    backup = sub.add_parser("backup", help="copy the (SQLite) database to OUT; safe while the server runs")
    backup.add_argument("out", type=Path, metavar="OUT", help="the backup file to create")
    database(backup)
    restore = sub.add_parser(
        "restore-backup", help="replace the (SQLite) database with the backup IN, then renew every epoch"
    )
    restore.add_argument("source", type=Path, metavar="IN", help="a file written by `cocreate backup`")
    database(restore)
    renew = sub.add_parser("new-epochs", help="give documents a new epoch (after restoring a database)")
    renew.add_argument("--prefix", default="", help="only documents whose name starts with this")
    database(renew)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from persistence.sql.backup import backup_sqlite, restore_sqlite, sqlite_file

    given = {k: getattr(args, k) for k in ("database_url", "data_dir") if getattr(args, k) is not None}
    try:
        url = Settings.from_environment().with_values(given).resolved_database_url()
        path = None if url == "memory://" else sqlite_file(url)
    except ValueError as exc:
        parser.error(str(exc))
    if url == "memory://":
        return _fail(args.command, "the in-memory database keeps nothing to back up or restore")
    try:
        if args.command == "backup":
            if path is None:
                return _fail("backup", POSTGRES_BACKUP)
            size = backup_sqlite(path, args.out)
            print(f"backed up {path} to {args.out} ({size} bytes)")
            return 0
        if args.command == "restore-backup":
            if path is None:
                return _fail("restore-backup", POSTGRES_BACKUP)
            restore_sqlite(args.source, path)
            print(f"restored {args.source} into {path}")
        return asyncio.run(_renew(url, args.prefix if args.command == "new-epochs" else ""))
    except StorageError as exc:
        return _fail(args.command, str(exc))


async def _renew(url: str, prefix: str) -> int:
    from persistence.factory import open_storage
    from server.epochs import renew_epochs

    storage = open_storage(url)
    await storage.open()
    try:
        renewed = await renew_epochs(storage, prefix, time.time)
    finally:
        await storage.close()
    scope = f" named {prefix}*" if prefix else ""
    print(f"gave {len(renewed)} documents{scope} a new epoch: clients holding an older copy are refused")
    return 0


def _fail(command: str, message: str) -> int:
    print(f"cocreate {command}: {message}", file=sys.stderr)
    return 1
