"""Client claims on SQLite or PostgreSQL: the queries behind `SqlStorage.client_claims` / `claim_client`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from persistence.base import DocumentNotFound
from persistence.sql.claim_tables import client_claims
from persistence.sql.engine import Database
from persistence.sql.errors import translated
from persistence.sql.tables import documents


async def read_claims(db: Database, document_id: str, epoch: str) -> dict[int, str]:
    table = client_claims.c
    query = select(table.client_id, table.user_id).where(
        table.document_id == document_id, table.epoch == epoch
    )
    with translated("reading client claims", db.where):
        async with db.read() as conn:
            rows = (await conn.execute(query)).all()
    return {int(client): str(user) for client, user in rows}


async def claim(db: Database, document_id: str, epoch: str, client_id: int, user_id: str) -> str:
    """Insert the claim unless the key has one (the primary key decides races between nodes), then
    return the recorded user."""
    table = client_claims.c
    insert = (sqlite_insert if db.is_sqlite else postgresql_insert)(client_claims).values(
        document_id=document_id, epoch=epoch, client_id=client_id, user_id=user_id
    )
    insert = insert.on_conflict_do_nothing(index_elements=[table.document_id, table.epoch, table.client_id])
    key = (table.document_id == document_id, table.epoch == epoch, table.client_id == client_id)
    with translated("claiming a client id", db.where):
        async with db.write() as conn:
            found = await conn.execute(select(documents.c.id).where(documents.c.id == document_id))
            if found.first() is None:
                raise DocumentNotFound(document_id)
            await conn.execute(insert)
            winner = (await conn.execute(select(table.user_id).where(*key))).scalar_one()
    return str(winner)
