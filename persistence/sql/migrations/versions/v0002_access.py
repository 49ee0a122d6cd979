"""Access lists and guest invites: `access_entries` (document, user -> role) and `invites`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from `tables` (see 0001).
_NAME = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    """Create the two tables and their lookup indexes."""
    op.create_table(
        "access_entries",
        sa.Column("document", _NAME, nullable=False),
        sa.Column("user_id", _NAME, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("document", "user_id", name="pk_access_entries"),
    )
    op.create_index("ix_access_entries_user_id", "access_entries", ["user_id"])
    op.create_table(
        "invites",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("document", _NAME, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("max_uses", sa.BigInteger(), nullable=True),
        sa.Column("uses", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_invites"),
        sa.UniqueConstraint("code_hash", name="uq_invites_code_hash"),
    )
    op.create_index("ix_invites_document", "invites", ["document"])


def downgrade() -> None:
    """Drop both tables (access lists and invites are lost)."""
    op.drop_index("ix_invites_document", table_name="invites")
    op.drop_table("invites")
    op.drop_index("ix_access_entries_user_id", table_name="access_entries")
    op.drop_table("access_entries")
