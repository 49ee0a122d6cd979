"""The client-claims table (revision 0007) as a SQLAlchemy Core table, declared on the shared `metadata`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, PrimaryKeyConstraint, String, Table, Text

from persistence.sql.tables import metadata

# One row per Yjs client id a user claimed in one epoch of a document, through the awareness state
# of one of their connections (docs/PROTOCOL.md, "Client ids are claimed by their user"). The primary
# key decides races between nodes: the first row inserted wins, forever for that epoch.
client_claims = Table(
    "client_claims",
    metadata,
    Column("document_id", String(32), ForeignKey("documents.id"), nullable=False),
    Column("epoch", String(32), nullable=False),
    Column("client_id", BigInteger(), nullable=False),
    Column("user_id", Text(), nullable=False),
    PrimaryKeyConstraint("document_id", "epoch", "client_id"),
)
