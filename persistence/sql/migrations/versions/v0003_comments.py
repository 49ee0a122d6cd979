"""Comment threads, comments, reactions, mentions, and the durable per-document event log."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from `persistence.sql.comments` (see 0001).


def upgrade() -> None:
    """Create the five tables and their lookup indexes."""
    op.create_table(
        "comment_threads",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("anchor_start", sa.LargeBinary(), nullable=False),
        sa.Column("anchor_end", sa.LargeBinary(), nullable=False),
        sa.Column("quote", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_comment_threads_document_id_documents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_comment_threads"),
    )
    op.create_index("ix_comment_threads_document_id", "comment_threads", ["document_id", "created_at"])
    op.create_table(
        "comments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("thread_id", sa.String(32), nullable=False),
        sa.Column("reply_to", sa.String(32), nullable=True),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("edited_at", sa.Double(), nullable=True),
        sa.Column("deleted_at", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["thread_id"], ["comment_threads.id"], name="fk_comments_thread_id_comment_threads"
        ),
        sa.ForeignKeyConstraint(["reply_to"], ["comments.id"], name="fk_comments_reply_to_comments"),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
    )
    op.create_index("ix_comments_thread_id", "comments", ["thread_id", "created_at"])
    op.create_table(
        "comment_reactions",
        sa.Column("comment_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("emoji", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name="fk_comment_reactions_comment_id_comments"
        ),
        sa.PrimaryKeyConstraint("comment_id", "user_id", "emoji", name="pk_comment_reactions"),
    )
    op.create_table(
        "comment_mentions",
        sa.Column("comment_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name="fk_comment_mentions_comment_id_comments"
        ),
        sa.PrimaryKeyConstraint("comment_id", "user_id", name="pk_comment_mentions"),
    )
    op.create_index("ix_comment_mentions_user_id", "comment_mentions", ["user_id", "created_at"])
    op.create_table(
        "document_events",
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_document_events_document_id_documents"
        ),
        sa.PrimaryKeyConstraint("document_id", "seq", name="pk_document_events"),
    )


def downgrade() -> None:
    """Drop the five tables (comments and the event log are lost)."""
    op.drop_table("document_events")
    op.drop_index("ix_comment_mentions_user_id", table_name="comment_mentions")
    op.drop_table("comment_mentions")
    op.drop_table("comment_reactions")
    op.drop_index("ix_comments_thread_id", table_name="comments")
    op.drop_table("comments")
    op.drop_index("ix_comment_threads_document_id", table_name="comment_threads")
    op.drop_table("comment_threads")
