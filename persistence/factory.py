"""Choose a `Storage` backend from a database URL, and the default URL for a data directory."""

from __future__ import annotations

from pathlib import Path

from persistence.base import Storage
from persistence.memory import MemoryStorage

MEMORY_URL = "memory://"

_SQL_SCHEMES = frozenset({"sqlite", "sqlite+aiosqlite", "postgresql", "postgres", "postgresql+asyncpg"})


def open_storage(url: str | None) -> Storage:
    """The backend for `url` (not yet opened: `await storage.open()`).

    None or "memory://" -> `MemoryStorage`; "sqlite+aiosqlite:///file.db" -> `SqlStorage` on
    that file, creating its parent folder; "postgresql+asyncpg://user@host/db" -> `SqlStorage`.
    `ValueError` for anything else.
    """
    if url is None or url == MEMORY_URL:
        return MemoryStorage()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _SQL_SCHEMES:
        raise ValueError(
            f"unsupported storage URL {url!r}: expected {MEMORY_URL!r}, "
            "'sqlite+aiosqlite:///path/to/file.db' or 'postgresql+asyncpg://user@host/database'"
        )
    # Imported here so that the in-memory backend does not load SQLAlchemy and the drivers.
    from persistence.sql.engine import normalize_url, sqlite_path
    from persistence.sql.storage import SqlStorage

    parsed = normalize_url(url)
    path = sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None:
        path.expanduser().parent.mkdir(parents=True, exist_ok=True)
    return SqlStorage(url)


def default_database_url(data_dir: Path) -> str:
    """The SQLite database of a data directory: `sqlite+aiosqlite:///<data_dir>/cocreate.db`."""
    return f"sqlite+aiosqlite:///{data_dir.expanduser().absolute() / 'cocreate.db'}"
