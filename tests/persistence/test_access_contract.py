"""The `AccessStore` contract (access lists, invites), run against memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from persistence.access import AccessEntry, AccessStore, Invite, InviteRefused, access_store_for
from persistence.base import Storage
from persistence.memory import MemoryStorage

T0 = 1_700_000_000.5


@pytest.fixture
async def access(storage: Storage) -> AsyncIterator[AccessStore]:
    """The access store living next to each backend of the `storage` fixture."""
    yield access_store_for(storage)


def entry(document: str, user: str, role: str = "editor", at: float = T0) -> AccessEntry:
    return AccessEntry(document, user, role, "owner-1", at)


def invite(invite_id: str, document: str = "team/doc", **changes: object) -> Invite:
    base = Invite(invite_id, document, "commenter", "owner-1", T0, T0 + 3600, max_uses=None)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_factory_picks_the_backend() -> None:
    assert type(access_store_for(MemoryStorage())).__name__ == "MemoryAccessStore"
    assert type(access_store_for(object())).__name__ == "MemoryAccessStore"


# -- access lists -------------------------------------------------------------------------------------
async def test_entries_round_trip(access: AccessStore) -> None:
    assert await access.get_entry("team/doc", "ana") is None
    await access.put_entry(entry("team/doc", "ana"))
    assert await access.get_entry("team/doc", "ana") == entry("team/doc", "ana")
    assert await access.get_entry("team/doc", "bo") is None
    assert await access.get_entry("team/other", "ana") is None


async def test_put_replaces_the_entry_of_a_user(access: AccessStore) -> None:
    await access.put_entry(entry("team/doc", "ana", "owner"))
    await access.put_entry(entry("team/doc", "ana", "viewer", T0 + 5))
    assert await access.list_entries("team/doc") == [entry("team/doc", "ana", "viewer", T0 + 5)]


async def test_list_entries_sorted_by_user_code_point_order(access: AccessStore) -> None:
    users = ["zoë", "Bo", "ana", "émile", "Ana", "guest:1"]
    for user in users:
        await access.put_entry(entry("team/doc", user))
    await access.put_entry(entry("team/other", "carl"))
    listed = await access.list_entries("team/doc")
    assert [e.user_id for e in listed] == sorted(users)
    assert await access.list_entries("nobody/here") == []


async def test_user_entries_across_documents(access: AccessStore) -> None:
    for document in ("b/2", "a/1", "c/3"):
        await access.put_entry(entry(document, "ana", "viewer"))
    await access.put_entry(entry("a/1", "bo", "owner"))
    assert [e.document for e in await access.user_entries("ana")] == ["a/1", "b/2", "c/3"]
    assert [e.document for e in await access.user_entries("ana", limit=2)] == ["a/1", "b/2"]
    assert await access.user_entries("nobody") == []


async def test_remove_entry(access: AccessStore) -> None:
    await access.put_entry(entry("team/doc", "ana"))
    assert await access.remove_entry("team/doc", "ana") is True
    assert await access.remove_entry("team/doc", "ana") is False
    assert await access.get_entry("team/doc", "ana") is None


async def test_unknown_roles_are_refused(access: AccessStore) -> None:
    with pytest.raises(ValueError):
        await access.put_entry(entry("team/doc", "ana", "admin"))
    with pytest.raises(ValueError):
        await access.create_invite(invite("i1", role="owner!"), "h1")


# -- invites -------------------------------------------------------------------------------------------
async def test_invites_round_trip_and_list_oldest_first(access: AccessStore) -> None:
    await access.create_invite(invite("i2", created_at=T0 + 2), "h2")
    await access.create_invite(invite("i1", created_at=T0 + 1, max_uses=3), "h1")
    await access.create_invite(invite("i3", "team/other"), "h3")
    assert await access.get_invite("i1") == invite("i1", created_at=T0 + 1, max_uses=3)
    assert await access.get_invite("nope") is None
    assert [i.id for i in await access.list_invites("team/doc")] == ["i1", "i2"]


async def test_duplicate_ids_or_codes_are_refused(access: AccessStore) -> None:
    await access.create_invite(invite("i1"), "h1")
    with pytest.raises(ValueError):
        await access.create_invite(invite("i1"), "h2")
    with pytest.raises(ValueError):
        await access.create_invite(invite("i2"), "h1")


async def test_redeem_counts_uses_until_exhausted(access: AccessStore) -> None:
    await access.create_invite(invite("i1", max_uses=2), "h1")
    assert (await access.redeem_invite("h1", T0 + 1)).uses == 1
    assert (await access.redeem_invite("h1", T0 + 2)).uses == 2
    with pytest.raises(InviteRefused) as info:
        await access.redeem_invite("h1", T0 + 3)
    assert info.value.reason == "exhausted"
    assert (await access.get_invite("i1")).uses == 2  # type: ignore[union-attr]


async def test_unlimited_invites(access: AccessStore) -> None:
    await access.create_invite(invite("i1"), "h1")
    for n in range(1, 6):
        assert (await access.redeem_invite("h1", T0)).uses == n


async def test_redeem_refuses_unknown_expired_and_revoked(access: AccessStore) -> None:
    with pytest.raises(InviteRefused) as info:
        await access.redeem_invite("nope", T0)
    assert info.value.reason == "unknown"
    await access.create_invite(invite("i1"), "h1")
    with pytest.raises(InviteRefused) as info:
        await access.redeem_invite("h1", T0 + 3600)
    assert info.value.reason == "expired"
    revoked = await access.revoke_invite("i1", T0 + 10)
    assert revoked is not None and revoked.revoked_at == T0 + 10
    with pytest.raises(InviteRefused) as info:
        await access.redeem_invite("h1", T0 + 20)
    assert info.value.reason == "revoked"
    assert (await access.get_invite("i1")).uses == 0  # type: ignore[union-attr]


async def test_revoke_keeps_the_first_time_and_ignores_unknown(access: AccessStore) -> None:
    await access.create_invite(invite("i1"), "h1")
    await access.revoke_invite("i1", T0 + 10)
    again = await access.revoke_invite("i1", T0 + 99)
    assert again is not None and again.revoked_at == T0 + 10
    assert await access.revoke_invite("nope", T0) is None


async def test_concurrent_redemptions_never_exceed_max_uses(access: AccessStore) -> None:
    await access.create_invite(invite("i1", max_uses=3), "h1")

    async def attempt() -> bool:
        try:
            await access.redeem_invite("h1", T0 + 1)
        except InviteRefused:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(12)))
    assert sum(results) == 3
    assert (await access.get_invite("i1")).uses == 3  # type: ignore[union-attr]


# -- renames --------------------------------------------------------------------------------------------
async def test_move_document_carries_entries_and_invites(access: AccessStore) -> None:
    await access.put_entry(entry("old", "ana", "owner"))
    await access.put_entry(entry("old", "bo", "viewer"))
    await access.put_entry(entry("new", "bo", "editor"))  # replaced by the moved entry
    await access.put_entry(entry("new", "carl", "viewer"))  # kept
    await access.put_entry(entry("elsewhere", "ana", "viewer"))
    await access.create_invite(invite("i1", "old"), "h1")
    await access.move_document("old", "new")
    assert await access.list_entries("old") == []
    moved = {e.user_id: e.role for e in await access.list_entries("new")}
    assert moved == {"ana": "owner", "bo": "viewer", "carl": "viewer"}
    assert (await access.get_invite("i1")).document == "new"  # type: ignore[union-attr]
    assert await access.list_entries("elsewhere") == [entry("elsewhere", "ana", "viewer")]
    await access.move_document("new", "new")
    assert len(await access.list_entries("new")) == 3
