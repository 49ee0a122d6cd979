"""The SQL backend of `persistence`: SQLite (default) or PostgreSQL, through SQLAlchemy async."""

from persistence.sql.storage import SqlStorage

__all__ = ["SqlStorage"]
