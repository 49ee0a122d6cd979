"""Copying a SQLite database file safely: online backups of a live database, restores into a stopped one.

Both go through SQLite's online backup API (`sqlite3.Connection.backup`), never a plain file copy:
a backup is a consistent snapshot even while a server writes (WAL content included), and a
restore writes through the target's pager, so a WAL left behind by a crashed server cannot
resurrect pages over the restored ones. PostgreSQL has its own tools (pg_dump / pg_restore).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from persistence.base import StorageError
from persistence.sql.engine import normalize_url, sqlite_path


class BackupError(StorageError):
    """A backup or restore was refused or failed; nothing was changed at the target."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL. `ValueError` for anything else."""
    parsed = normalize_url(url)
    return sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None


def _check_database(conn: sqlite3.Connection, path: Path) -> None:
    try:
        (result,) = conn.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database: {exc}") from exc
    if result != "ok":
        raise BackupError(f"{path} failed SQLite's quick_check: {result}")


def backup_sqlite(source: Path, target: Path) -> int:
    """Write a consistent copy of the database `source` (live or not) to the new file `target`;
    returns its size in bytes. Refuses to overwrite an existing `target`."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if target.exists():
        raise BackupError(f"{target} exists; refusing to overwrite it (remove it or choose another name)")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(source, timeout=10)) as src:
            _check_database(src, source)
            with contextlib.closing(sqlite3.connect(partial)) as dst:
                src.backup(dst)  # one step: a consistent snapshot as of one read transaction
                dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupError(f"backing up {source} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size


def restore_sqlite(source: Path, target: Path) -> None:
    """Replace the content of the database `target` with the backup `source`.

    Refuses while another connection holds `target` (a running server keeps one open): the
    restore takes an exclusive lock first and keeps it until the copy is complete.
    """
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    if target.exists() and source.resolve() == target.resolve():
        raise BackupError("the backup and the database are the same file")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(source, timeout=10)) as src:
            _check_database(src, source)
            with contextlib.closing(sqlite3.connect(target, timeout=0, isolation_level=None)) as dst:
                dst.execute("PRAGMA locking_mode=EXCLUSIVE")  # locks taken from now on are kept
                try:
                    dst.execute("BEGIN EXCLUSIVE")
                    dst.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    raise BackupError(
                        f"{target} is in use ({exc}): stop the server (every process using it) first"
                    ) from exc
                src.backup(dst)
                _check_database(dst, target)
    except sqlite3.Error as exc:
        raise BackupError(f"restoring {source} into {target} failed: {exc}") from exc
