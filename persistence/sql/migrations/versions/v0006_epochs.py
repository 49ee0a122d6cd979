"""Retired epochs: the epochs a document left behind when it was restored, with their clocks."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from `persistence.sql.epoch_tables` (see 0001).


def upgrade() -> None:
    """Create the retired-epochs table (no rows: epochs of existing documents stay as they are)."""
    op.create_table(
        "retired_epochs",
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("epoch", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("retired_at", sa.Double(), nullable=False),
        sa.Column("state_vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_retired_epochs_document_id_documents"
        ),
        sa.PrimaryKeyConstraint("document_id", "epoch", name="pk_retired_epochs"),
    )


def downgrade() -> None:
    """Drop the table (restored documents then accept copies of their previous epoch by content)."""
    op.drop_table("retired_epochs")
