"""Initial schema: documents (soft-deleted, live names unique), the update log, snapshots."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from `tables`: a migration must keep creating what it
# created when it was released, whatever the current tables look like.
_NAME = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    """Create the three tables and the unique index on live document names."""
    op.create_table(
        "documents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", _NAME, nullable=False),
        sa.Column("epoch", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("deleted_at", sa.Double(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("log_bytes", sa.BigInteger(), nullable=False),
        sa.Column("last_author", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_documents"),
    )
    op.create_index(
        "ux_documents_live_name",
        "documents",
        ["name"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_table(
        "updates",
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], name="fk_updates_document_id_documents"),
        sa.PrimaryKeyConstraint("document_id", "seq", name="pk_updates"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "snapshots",
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], name="fk_snapshots_document_id_documents"),
        sa.PrimaryKeyConstraint("document_id", "seq", name="pk_snapshots"),
    )


def downgrade() -> None:
    """Drop everything (only for development: history lives in these tables)."""
    op.drop_table("snapshots")
    op.drop_table("updates")
    op.drop_index("ux_documents_live_name", table_name="documents")
    op.drop_table("documents")
