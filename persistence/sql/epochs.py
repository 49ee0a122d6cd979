"""Renewing a document's epoch on SQLite or PostgreSQL: the queries behind `SqlStorage.renew_epoch`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update

from persistence.base import DocumentNotFound, RetiredEpoch
from persistence.sql.engine import Database
from persistence.sql.epoch_tables import retired_epochs
from persistence.sql.errors import translated
from persistence.sql.tables import documents


async def renew_epoch(
    db: Database,
    document_id: str,
    seq: int,
    state_vector: bytes,
    now: float,
    columns: Sequence[ColumnElement[Any]],
) -> Sequence[Any]:
    """In one transaction: record the live document's epoch as retired and give it a fresh one.
    Returns the document's `columns` after the change; `DocumentNotFound` unless it is live."""
    live = (documents.c.id == document_id, documents.c.deleted_at.is_(None))
    with translated("renewing an epoch", db.where):
        async with db.write() as conn:
            old_epoch = (await conn.execute(select(documents.c.epoch).where(*live))).scalar_one_or_none()
            if old_epoch is None:
                raise DocumentNotFound(document_id)
            retired = {"epoch": old_epoch, "seq": seq, "retired_at": now, "state_vector": bytes(state_vector)}
            await conn.execute(insert(retired_epochs).values(document_id=document_id, **retired))
            changed = await conn.execute(
                update(documents).where(*live).values(epoch=uuid.uuid4().hex).returning(*columns)
            )
            row = changed.first()
            if row is None:  # pragma: no cover - the row is locked by the write transaction
                raise DocumentNotFound(document_id)
    return tuple(row)


async def read_retired_epochs(db: Database, document_id: str) -> list[RetiredEpoch]:
    """The retired epochs of a document (live or deleted), newest first; `DocumentNotFound` if
    no document has that id."""
    table = retired_epochs.c
    query = (
        select(table.epoch, table.seq, table.state_vector, table.retired_at)
        .where(table.document_id == document_id)
        .order_by(table.retired_at.desc(), table.seq.desc())
    )
    with translated("reading retired epochs", db.where):
        async with db.read() as conn:
            rows = (await conn.execute(query)).all()
            if not rows:
                found = await conn.execute(select(documents.c.id).where(documents.c.id == document_id))
                if found.first() is None:
                    raise DocumentNotFound(document_id)
    return [RetiredEpoch(str(r[0]), int(r[1]), bytes(r[2]), float(r[3])) for r in rows]
