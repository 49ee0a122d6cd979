"""The webhook tables (revision 0005) as SQLAlchemy Core tables, declared on the shared `metadata`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Double, ForeignKey, Index, String, Table, Text

from persistence.sql.tables import metadata

WEBHOOK_TABLES = frozenset({"webhooks", "webhook_deliveries"})

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("document_id", String(32), ForeignKey("documents.id"), nullable=False),
    Column("url", Text(), nullable=False),
    Column("events", Text(), nullable=False),  # comma-separated event groups
    Column("secret", Text(), nullable=False),
    Column("created_by", Text(), nullable=False),
    Column("created_at", Double(), nullable=False),
    Column("active", Boolean(), nullable=False),
)
Index("ix_webhooks_document_id", webhooks.c.document_id)

deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("webhook_id", String(32), ForeignKey("webhooks.id"), nullable=False),
    Column("event", Text(), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("attempts", BigInteger(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("last_status", BigInteger(), nullable=True),
    Column("last_error", Text(), nullable=True),
    Column("next_attempt_at", Double(), nullable=True),
    Column("created_at", Double(), nullable=False),
    Column("delivered_at", Double(), nullable=True),
)
Index("ix_webhook_deliveries_webhook_id", deliveries.c.webhook_id, deliveries.c.created_at)
Index("ix_webhook_deliveries_status", deliveries.c.status, deliveries.c.next_attempt_at)
