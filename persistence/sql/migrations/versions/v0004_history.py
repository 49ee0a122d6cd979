"""Presence samples (joins, leaves, awareness states) recorded next to the update log, for history."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from `persistence.sql.history_tables` (see 0001).


def upgrade() -> None:
    """Create the presence table and its time index."""
    op.create_table(
        "document_presence",
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("connection", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("log_seq", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_document_presence_document_id_documents"
        ),
        sa.PrimaryKeyConstraint("document_id", "seq", name="pk_document_presence"),
    )
    op.create_index("ix_document_presence_created_at", "document_presence", ["document_id", "created_at"])


def downgrade() -> None:
    """Drop the presence table (recorded presence is lost; edits and events are not)."""
    op.drop_index("ix_document_presence_created_at", table_name="document_presence")
    op.drop_table("document_presence")
