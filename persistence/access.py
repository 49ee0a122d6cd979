"""Per-document access lists and invites: the `AccessStore` interface, its records, an in-memory backend.

Roles are stored as their lower-case names (`viewer`, `commenter`, `editor`, `owner`); the server
owns their meaning and order. Entries and invites are keyed by document *name* (access can be
granted before the document exists); `move_document` carries them along on a rename.
Invite codes are bearer credentials: stores keep only their SHA-256 (`code_hash`), never the code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

ROLE_NAMES = ("viewer", "commenter", "editor", "owner")


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """`user_id` holds `role` on `document` (the access list of a document is its entries)."""

    document: str
    user_id: str
    role: str
    granted_by: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class Invite:
    """A guest invitation to one document: redeemable until expiry, revocation or `max_uses` uses."""

    id: str
    document: str
    role: str
    created_by: str
    created_at: float
    expires_at: float
    max_uses: int | None
    uses: int = 0
    revoked_at: float | None = None

    def refusal(self, now: float) -> str | None:
        """Why the invite cannot be redeemed at `now` (`revoked`, `expired`, `exhausted`), or None."""
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "exhausted"
        return None


class InviteRefused(Exception):
    """Redeeming failed; `reason` is `unknown`, `revoked`, `expired` or `exhausted`."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invite {reason}")
        self.reason = reason


class AccessStore(Protocol):
    """Access lists and invites. Backends share the lifecycle of the `Storage` they come with."""

    async def get_entry(self, document: str, user_id: str) -> AccessEntry | None: ...

    async def list_entries(self, document: str) -> list[AccessEntry]:
        """The access list of `document`, sorted by user id."""

    async def user_entries(self, user_id: str, limit: int = 1000) -> list[AccessEntry]:
        """Every entry of `user_id`, sorted by document name."""

    async def put_entry(self, entry: AccessEntry) -> None:
        """Create or replace the entry of (`entry.document`, `entry.user_id`)."""

    async def remove_entry(self, document: str, user_id: str) -> bool:
        """True if there was an entry."""

    async def create_invite(self, invite: Invite, code_hash: str) -> None: ...

    async def get_invite(self, invite_id: str) -> Invite | None: ...

    async def list_invites(self, document: str) -> list[Invite]:
        """Every invite of `document` (revoked and expired ones too), oldest first."""

    async def revoke_invite(self, invite_id: str, now: float) -> Invite | None:
        """Mark revoked (the first revocation time is kept); None if unknown."""

    async def redeem_invite(self, code_hash: str, now: float) -> Invite:
        """Atomically count one use of the invite with that code; `InviteRefused` if it cannot be used.

        Concurrent redemptions never exceed `max_uses`. Returns the invite after counting the use.
        """

    async def move_document(self, name: str, new_name: str) -> None:
        """A document was renamed: its entries and invites now belong to `new_name`."""


class MemoryAccessStore:
    """Dictionaries; lost when the process ends. Same contract as the SQL backend."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], AccessEntry] = {}
        self._invites: dict[str, Invite] = {}
        self._by_code: dict[str, str] = {}  # code hash -> invite id

    async def get_entry(self, document: str, user_id: str) -> AccessEntry | None:
        return self._entries.get((document, user_id))

    async def list_entries(self, document: str) -> list[AccessEntry]:
        return sorted((e for e in self._entries.values() if e.document == document), key=_by_user)

    async def user_entries(self, user_id: str, limit: int = 1000) -> list[AccessEntry]:
        found = sorted((e for e in self._entries.values() if e.user_id == user_id), key=_by_document)
        return found[: max(0, limit)]

    async def put_entry(self, entry: AccessEntry) -> None:
        _check_role(entry.role)
        self._entries[(entry.document, entry.user_id)] = entry

    async def remove_entry(self, document: str, user_id: str) -> bool:
        return self._entries.pop((document, user_id), None) is not None

    async def create_invite(self, invite: Invite, code_hash: str) -> None:
        _check_role(invite.role)
        if invite.id in self._invites or code_hash in self._by_code:
            raise ValueError("an invite with that id or code already exists")
        self._invites[invite.id] = invite
        self._by_code[code_hash] = invite.id

    async def get_invite(self, invite_id: str) -> Invite | None:
        return self._invites.get(invite_id)

    async def list_invites(self, document: str) -> list[Invite]:
        found = [i for i in self._invites.values() if i.document == document]
        return sorted(found, key=lambda i: (i.created_at, i.id))

    async def revoke_invite(self, invite_id: str, now: float) -> Invite | None:
        invite = self._invites.get(invite_id)
        if invite is None:
            return None
        if invite.revoked_at is None:
            invite = self._invites[invite_id] = replace(invite, revoked_at=now)
        return invite

    async def redeem_invite(self, code_hash: str, now: float) -> Invite:
        invite_id = self._by_code.get(code_hash)
        if invite_id is None:
            raise InviteRefused("unknown")
        invite = self._invites[invite_id]
        reason = invite.refusal(now)
        if reason is not None:
            raise InviteRefused(reason)
        invite = self._invites[invite_id] = replace(invite, uses=invite.uses + 1)
        return invite

    async def move_document(self, name: str, new_name: str) -> None:
        for key, entry in list(self._entries.items()):
            if entry.document == name:
                del self._entries[key]
                self._entries[(new_name, entry.user_id)] = replace(entry, document=new_name)
        for invite_id, invite in list(self._invites.items()):
            if invite.document == name:
                self._invites[invite_id] = replace(invite, document=new_name)


def _by_user(entry: AccessEntry) -> str:
    return entry.user_id


def _by_document(entry: AccessEntry) -> str:
    return entry.document


def _check_role(role: str) -> None:
    if role not in ROLE_NAMES:
        raise ValueError(f"unknown role {role!r} (expected one of {', '.join(ROLE_NAMES)})")


def access_store_for(storage: object) -> AccessStore:
    """The access store that lives next to `storage`: in its SQL database, else in memory."""
    import sys

    sql = sys.modules.get("persistence.sql.storage")  # loaded iff a SqlStorage can exist
    if sql is not None and isinstance(storage, sql.SqlStorage):
        from persistence.sql.access import SqlAccessStore

        return SqlAccessStore(storage.database)
    return MemoryAccessStore()
