"""`SqlAccessStore`: access lists and invites in the `SqlStorage` database (SQLite or PostgreSQL).

It shares the storage's engine (and, on SQLite, its writer lock) and lives as long as it: the
schema is created and checked by `SqlStorage.open`. Redeeming is one conditional UPDATE ...
RETURNING, so concurrent redemptions can never count more than `max_uses` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from persistence.access import ROLE_NAMES, AccessEntry, Invite, InviteRefused
from persistence.sql.engine import Database
from persistence.sql.errors import translated
from persistence.sql.storage import _check_text
from persistence.sql.tables import access_entries as entries
from persistence.sql.tables import invites

_ENTRY_COLUMNS = (
    entries.c.document,
    entries.c.user_id,
    entries.c.role,
    entries.c.granted_by,
    entries.c.updated_at,
)
_INVITE_COLUMNS = (
    invites.c.id,
    invites.c.document,
    invites.c.role,
    invites.c.created_by,
    invites.c.created_at,
    invites.c.expires_at,
    invites.c.max_uses,
    invites.c.uses,
    invites.c.revoked_at,
)


def _entry(row: Sequence[Any]) -> AccessEntry:
    return AccessEntry(row[0], row[1], row[2], row[3], float(row[4]))


def _invite(row: Sequence[Any]) -> Invite:
    return Invite(
        id=row[0],
        document=row[1],
        role=row[2],
        created_by=row[3],
        created_at=float(row[4]),
        expires_at=float(row[5]),
        max_uses=None if row[6] is None else int(row[6]),
        uses=int(row[7]),
        revoked_at=None if row[8] is None else float(row[8]),
    )


def _check(role: str, *texts: tuple[str, str]) -> None:
    if role not in ROLE_NAMES:
        raise ValueError(f"unknown role {role!r} (expected one of {', '.join(ROLE_NAMES)})")
    for value, what in texts:
        _check_text(value, what)


class SqlAccessStore:
    """The `AccessStore` on the database of an opened `SqlStorage` (`SqlStorage.database`)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self.where = database.where

    async def get_entry(self, document: str, user_id: str) -> AccessEntry | None:
        query = select(*_ENTRY_COLUMNS).where(entries.c.document == document, entries.c.user_id == user_id)
        with translated("reading an access entry", self.where):
            async with self._db.read() as conn:
                row = (await conn.execute(query)).first()
        return None if row is None else _entry(row)

    async def list_entries(self, document: str) -> list[AccessEntry]:
        query = select(*_ENTRY_COLUMNS).where(entries.c.document == document).order_by(entries.c.user_id)
        with translated("listing access entries", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
        return [_entry(row) for row in rows]

    async def user_entries(self, user_id: str, limit: int = 1000) -> list[AccessEntry]:
        query = (
            select(*_ENTRY_COLUMNS)
            .where(entries.c.user_id == user_id)
            .order_by(entries.c.document)
            .limit(max(0, limit))
        )
        with translated("listing a user's access entries", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
        return [_entry(row) for row in rows]

    async def put_entry(self, entry: AccessEntry) -> None:
        _check(
            entry.role,
            (entry.document, "document"),
            (entry.user_id, "user id"),
            (entry.granted_by, "grantor"),
        )
        values = {
            "document": entry.document,
            "user_id": entry.user_id,
            "role": entry.role,
            "granted_by": entry.granted_by,
            "updated_at": entry.updated_at,
        }
        upsert = (sqlite_insert if self._db.is_sqlite else postgresql_insert)(entries).values(**values)
        upsert = upsert.on_conflict_do_update(
            index_elements=[entries.c.document, entries.c.user_id],
            set_={k: upsert.excluded[k] for k in ("role", "granted_by", "updated_at")},
        )
        with translated("saving an access entry", self.where):
            async with self._db.write() as conn:
                await conn.execute(upsert)

    async def remove_entry(self, document: str, user_id: str) -> bool:
        statement = delete(entries).where(entries.c.document == document, entries.c.user_id == user_id)
        with translated("removing an access entry", self.where):
            async with self._db.write() as conn:
                result = await conn.execute(statement)
        return bool(result.rowcount)

    async def create_invite(self, invite: Invite, code_hash: str) -> None:
        _check(invite.role, (invite.document, "document"), (invite.created_by, "creator"))
        statement = insert(invites).values(
            id=invite.id,
            code_hash=code_hash,
            document=invite.document,
            role=invite.role,
            created_by=invite.created_by,
            created_at=invite.created_at,
            expires_at=invite.expires_at,
            max_uses=invite.max_uses,
            uses=invite.uses,
            revoked_at=invite.revoked_at,
        )
        with translated("creating an invite", self.where):
            try:
                async with self._db.write() as conn:
                    await conn.execute(statement)
            except IntegrityError as exc:
                raise ValueError("an invite with that id or code already exists") from exc

    async def get_invite(self, invite_id: str) -> Invite | None:
        query = select(*_INVITE_COLUMNS).where(invites.c.id == invite_id)
        with translated("reading an invite", self.where):
            async with self._db.read() as conn:
                row = (await conn.execute(query)).first()
        return None if row is None else _invite(row)

    async def list_invites(self, document: str) -> list[Invite]:
        query = (
            select(*_INVITE_COLUMNS)
            .where(invites.c.document == document)
            .order_by(invites.c.created_at, invites.c.id)
        )
        with translated("listing invites", self.where):
            async with self._db.read() as conn:
                rows = (await conn.execute(query)).all()
        return [_invite(row) for row in rows]

    async def revoke_invite(self, invite_id: str, now: float) -> Invite | None:
        statement = (
            update(invites)
            .where(invites.c.id == invite_id, invites.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        with translated("revoking an invite", self.where):
            async with self._db.write() as conn:
                await conn.execute(statement)
                row = (await conn.execute(select(*_INVITE_COLUMNS).where(invites.c.id == invite_id))).first()
        return None if row is None else _invite(row)

    async def redeem_invite(self, code_hash: str, now: float) -> Invite:
        usable = (
            invites.c.code_hash == code_hash,
            invites.c.revoked_at.is_(None),
            invites.c.expires_at > now,
            (invites.c.max_uses.is_(None)) | (invites.c.uses < invites.c.max_uses),
        )
        statement = update(invites).where(*usable).values(uses=invites.c.uses + 1).returning(*_INVITE_COLUMNS)
        with translated("redeeming an invite", self.where):
            async with self._db.write() as conn:
                row = (await conn.execute(statement)).first()
                if row is None:
                    found = select(*_INVITE_COLUMNS).where(invites.c.code_hash == code_hash)
                    current = (await conn.execute(found)).first()
        if row is not None:
            return _invite(row)
        if current is None:
            raise InviteRefused("unknown")
        raise InviteRefused(_invite(current).refusal(now) or "unknown")

    async def move_document(self, name: str, new_name: str) -> None:
        _check_text(new_name, "new document name")
        if name == new_name:
            return
        with translated("moving access entries", self.where):
            async with self._db.write() as conn:
                moving = select(entries.c.user_id).where(entries.c.document == name)
                # A moved entry replaces the one the same user may already hold under the new name.
                await conn.execute(
                    delete(entries).where(entries.c.document == new_name, entries.c.user_id.in_(moving))
                )
                await conn.execute(
                    update(entries).where(entries.c.document == name).values(document=new_name)
                )
                await conn.execute(
                    update(invites).where(invites.c.document == name).values(document=new_name)
                )
