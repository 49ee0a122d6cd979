"""Client claims: which user claimed a Yjs client id in one epoch of a document."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from `persistence.sql.claim_tables` (see 0001). No backfill:
# ids used before this revision are unclaimed until a connection announces them in awareness.


def upgrade() -> None:
    """Create the claims table (empty)."""
    op.create_table(
        "client_claims",
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("epoch", sa.String(32), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_client_claims_document_id_documents"
        ),
        sa.PrimaryKeyConstraint("document_id", "epoch", "client_id", name="pk_client_claims"),
    )


def downgrade() -> None:
    """Drop the table (client ids are then protected only while their client is connected)."""
    op.drop_table("client_claims")
