"""The comment tables (revision 0003) as SQLAlchemy Core tables, declared on the shared `metadata`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from persistence.sql.tables import metadata

COMMENT_TABLES = frozenset(
    {"comment_threads", "comments", "comment_reactions", "comment_mentions", "document_events"}
)

threads = Table(
    "comment_threads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("document_id", String(32), ForeignKey("documents.id"), nullable=False),
    Column("root", Text(), nullable=False),
    Column("anchor_start", LargeBinary(), nullable=False),
    Column("anchor_end", LargeBinary(), nullable=False),
    Column("quote", Text(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_by", Text(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("updated_at", Double(), nullable=False),
    Column("resolved_by", Text(), nullable=True),
    Column("resolved_at", Double(), nullable=True),
)
Index("ix_comment_threads_document_id", threads.c.document_id, threads.c.created_at)

comments = Table(
    "comments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("thread_id", String(32), ForeignKey("comment_threads.id"), nullable=False),
    Column("reply_to", String(32), ForeignKey("comments.id"), nullable=True),
    Column("author", Text(), nullable=False),
    Column("body", Text(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("edited_at", Double(), nullable=True),
    Column("deleted_at", Double(), nullable=True),
)
Index("ix_comments_thread_id", comments.c.thread_id, comments.c.created_at)

reactions = Table(
    "comment_reactions",
    metadata,
    Column("comment_id", String(32), ForeignKey("comments.id"), nullable=False),
    Column("user_id", Text(), nullable=False),
    Column("emoji", Text(), nullable=False),
    Column("created_at", Double(), nullable=False),
    PrimaryKeyConstraint("comment_id", "user_id", "emoji"),
)

mentions = Table(
    "comment_mentions",
    metadata,
    Column("comment_id", String(32), ForeignKey("comments.id"), nullable=False),
    Column("user_id", Text(), nullable=False),
    Column("created_at", Double(), nullable=False),
    PrimaryKeyConstraint("comment_id", "user_id"),
)
Index("ix_comment_mentions_user_id", mentions.c.user_id, mentions.c.created_at)

events = Table(
    "document_events",
    metadata,
    Column("document_id", String(32), ForeignKey("documents.id"), nullable=False),
    Column("seq", BigInteger(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("author", Text(), nullable=False),
    Column("kind", Text(), nullable=False),
    Column("data", Text(), nullable=False),
    PrimaryKeyConstraint("document_id", "seq"),
)
