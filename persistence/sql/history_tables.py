"""The presence table (revision 0004) as a SQLAlchemy Core table, declared on the shared `metadata`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from persistence.sql.tables import metadata

HISTORY_TABLES = frozenset({"document_presence"})

presence = Table(
    "document_presence",
    metadata,
    Column("document_id", String(32), ForeignKey("documents.id"), nullable=False),
    Column("seq", BigInteger(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("author", Text(), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("connection", BigInteger(), nullable=False),
    Column("client_id", BigInteger(), nullable=True),
    Column("log_seq", BigInteger(), nullable=False),
    Column("data", Text(), nullable=False),
    PrimaryKeyConstraint("document_id", "seq"),
)
Index("ix_document_presence_created_at", presence.c.document_id, presence.c.created_at)
