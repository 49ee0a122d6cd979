"""`open_storage` picks the backend from a URL; `default_database_url` names the SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistence.factory import default_database_url, open_storage
from persistence.memory import MemoryStorage
from persistence.sql import SqlStorage


def test_memory_for_none_and_memory_url() -> None:
    assert isinstance(open_storage(None), MemoryStorage)
    assert isinstance(open_storage("memory://"), MemoryStorage)


async def test_sqlite_url_creates_the_parent_folder(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "er"
    storage = open_storage(f"sqlite+aiosqlite:///{folder / 'x.db'}")
    assert isinstance(storage, SqlStorage)
    assert folder.is_dir()
    await storage.open()
    await storage.create_document("doc", 1.0)
    await storage.close()
    assert (folder / "x.db").is_file()


async def test_plain_sqlite_scheme_uses_aiosqlite(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'plain.db'}")
    assert isinstance(storage, SqlStorage)
    assert storage.where.startswith("sqlite+aiosqlite:///")
    await storage.open()
    await storage.close()


def test_postgres_urls_make_sql_storage() -> None:
    for url in (
        "postgresql+asyncpg://u:secret@db.example/cocreate",
        "postgresql://u@h/d",
        "postgres://u@h/d",
    ):
        storage = open_storage(url)
        assert isinstance(storage, SqlStorage)
        assert storage.where.startswith("postgresql+asyncpg://")
        assert "secret" not in storage.where


@pytest.mark.parametrize(
    "url",
    ["", "memory", "redis://localhost", "mysql://u@h/d", "postgresql+psycopg://u@h/d", "/tmp/file.db"],
)
def test_unsupported_urls_raise_value_error(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        open_storage(url)


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="memory://"):
        open_storage("sqlite+aiosqlite://")


async def test_default_database_url(tmp_path: Path) -> None:
    url = default_database_url(tmp_path / "data")
    assert url == f"sqlite+aiosqlite:///{tmp_path}/data/cocreate.db"
    storage = open_storage(url)
    await storage.open()
    await storage.close()
    assert (tmp_path / "data" / "cocreate.db").is_file()


def test_default_database_url_is_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_database_url(Path("rel")) == f"sqlite+aiosqlite:///{Path.cwd()}/rel/cocreate.db"
