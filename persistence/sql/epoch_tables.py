"""The retired-epochs table (revision 0006) as a SQLAlchemy Core table, declared on the shared `metadata`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    ForeignKey,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
)

from persistence.sql.tables import metadata

EPOCH_TABLES = frozenset({"retired_epochs"})

# One row per epoch a live document left behind (`SqlStorage.renew_epoch`, after a restore): the
# document's state vector at that moment recognises clients that hold a copy of that epoch.
retired_epochs = Table(
    "retired_epochs",
    metadata,
    Column("document_id", String(32), ForeignKey("documents.id"), nullable=False),
    Column("epoch", String(32), nullable=False),
    Column("seq", BigInteger(), nullable=False),
    Column("retired_at", Double(), nullable=False),
    Column("state_vector", LargeBinary(), nullable=False),
    PrimaryKeyConstraint("document_id", "epoch"),
)
