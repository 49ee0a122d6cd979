"""Contract for client claims (Yjs client id -> user, per document epoch), on every backend."""

from __future__ import annotations

import asyncio

import pytest

from persistence.base import DocumentNotFound, Storage

T0 = 1_700_000_000.0


async def test_the_first_claim_wins_forever(storage: Storage) -> None:
    record = await storage.create_document("claimed", T0)
    assert await storage.client_claims(record.id, record.epoch) == {}
    assert await storage.claim_client(record.id, record.epoch, 4242, "ana") == "ana"
    assert await storage.claim_client(record.id, record.epoch, 4242, "bo") == "ana"
    assert await storage.claim_client(record.id, record.epoch, 4242, "ana") == "ana"
    assert await storage.claim_client(record.id, record.epoch, 2**53 - 1, "bo") == "bo"
    assert await storage.client_claims(record.id, record.epoch) == {4242: "ana", 2**53 - 1: "bo"}


async def test_claims_belong_to_one_document_epoch(storage: Storage) -> None:
    record = await storage.create_document("epochs", T0)
    other = await storage.create_document("other", T0)
    await storage.claim_client(record.id, record.epoch, 7, "ana")
    renewed = await storage.renew_epoch(record.id, 0, b"\x00", T0 + 1)
    assert await storage.client_claims(renewed.id, renewed.epoch) == {}
    assert await storage.claim_client(renewed.id, renewed.epoch, 7, "bo") == "bo"
    assert await storage.client_claims(record.id, record.epoch) == {7: "ana"}
    assert await storage.client_claims(other.id, other.epoch) == {}


async def test_concurrent_claims_agree_on_one_winner(storage: Storage) -> None:
    record = await storage.create_document("race", T0)
    users = [f"user{i}" for i in range(8)]
    winners = await asyncio.gather(*(storage.claim_client(record.id, record.epoch, 99, u) for u in users))
    assert len(set(winners)) == 1 and winners[0] in users
    assert await storage.client_claims(record.id, record.epoch) == {99: winners[0]}


async def test_claiming_in_an_unknown_document_fails(storage: Storage) -> None:
    with pytest.raises(DocumentNotFound):
        await storage.claim_client("0" * 32, "0" * 32, 1, "ana")
