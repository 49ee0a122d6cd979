"""The SQL backend of `persistence`: SQLite (default) or PostgreSQL, through SQLAlchemy async."""

from persistence.sql import claim_tables as _claim_tables  # noqa: F401  (registers its tables)
from persistence.sql import comment_tables as _comment_tables  # noqa: F401  (registers its tables)
from persistence.sql import epoch_tables as _epoch_tables  # noqa: F401  (registers its tables)
from persistence.sql import history_tables as _history_tables  # noqa: F401  (registers its tables)
from persistence.sql import webhook_tables as _webhook_tables  # noqa: F401  (registers its tables)
from persistence.sql.storage import SqlStorage

__all__ = ["SqlStorage"]
