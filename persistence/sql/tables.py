"""The SQL schema as SQLAlchemy Core tables: documents, the update log, snapshots.

The Alembic migrations in `migrations/versions` create exactly these tables (a test compares
them); queries are written against the objects defined here.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeEngine

#: Alembic's version table; its single row names the schema revision of the database.
VERSION_TABLE = "cocreate_schema_version"

#: The tables a database at the current revision must hold (besides the version table).
TABLE_NAMES = frozenset(
    {
        "documents", "updates", "snapshots", "access_entries", "invites",
        "comment_threads", "comments", "comment_reactions", "comment_mentions", "document_events",
        "webhooks", "webhook_deliveries", "retired_epochs", "client_claims",
    }
)  # fmt: skip

#: Document names compare by code point everywhere: SQLite's BINARY collation does that on UTF-8,
#: PostgreSQL needs the "C" collation whatever the database's default collation is.
NAME_TYPE: TypeEngine[str] = Text().with_variant(Text(collation="C"), "postgresql")

#: The predicate of the live-name unique index; queries repeat it so the planner can use the index.
LIVE = "deleted_at IS NULL"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

documents = Table(
    "documents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", NAME_TYPE, nullable=False),
    Column("epoch", String(32), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("updated_at", Double(), nullable=False),
    Column("deleted_at", Double(), nullable=True),
    Column("last_seq", BigInteger(), nullable=False),
    Column("log_bytes", BigInteger(), nullable=False),
    Column("last_author", Text(), nullable=True),
)

Index(
    "ux_documents_live_name",
    documents.c.name,
    unique=True,
    sqlite_where=text(LIVE),
    postgresql_where=text(LIVE),
)

updates = Table(
    "updates",
    metadata,
    Column("document_id", String(32), ForeignKey("documents.id"), nullable=False),
    Column("seq", BigInteger(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("author", Text(), nullable=False),
    Column("data", LargeBinary(), nullable=False),
    PrimaryKeyConstraint("document_id", "seq"),
    # Rows are read in (document_id, seq) ranges: cluster them by that key on SQLite.
    sqlite_with_rowid=False,
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("document_id", String(32), ForeignKey("documents.id"), nullable=False),
    Column("seq", BigInteger(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("data", LargeBinary(), nullable=False),
    PrimaryKeyConstraint("document_id", "seq"),
)

# Access lists and invites (revision 0002), keyed by document *name*: access may be granted before
# the document exists, and a rename moves them along (`SqlAccessStore.move_document`).
access_entries = Table(
    "access_entries",
    metadata,
    Column("document", NAME_TYPE, nullable=False),
    Column("user_id", NAME_TYPE, nullable=False),
    Column("role", String(16), nullable=False),
    Column("granted_by", Text(), nullable=False),
    Column("updated_at", Double(), nullable=False),
    PrimaryKeyConstraint("document", "user_id"),
)

Index("ix_access_entries_user_id", access_entries.c.user_id)

invites = Table(
    "invites",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("document", NAME_TYPE, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_by", Text(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("expires_at", Double(), nullable=False),
    Column("max_uses", BigInteger(), nullable=True),
    Column("uses", BigInteger(), nullable=False),
    Column("revoked_at", Double(), nullable=True),
)

Index("ix_invites_document", invites.c.document)
