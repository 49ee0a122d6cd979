"""Contract for renewing a live document's epoch (after a restore), on every backend."""

from __future__ import annotations

import pytest

from persistence.base import DocumentNotFound, NewUpdate, RetiredEpoch, Snapshot, Storage

T0 = 1_700_000_000.0


async def test_renewing_keeps_the_document_and_records_the_retired_epoch(storage: Storage) -> None:
    record = await storage.create_document("restored", T0)
    await storage.append_updates(record.id, [NewUpdate(b"a", "ana", T0 + 1), NewUpdate(b"b", "bo", T0 + 2)])
    await storage.save_snapshot(record.id, Snapshot(1, b"state", T0 + 1))
    renewed = await storage.renew_epoch(record.id, 2, b"\x01\x07\x02", T0 + 3)
    assert renewed.epoch != record.epoch and len(renewed.epoch) == 32
    assert (renewed.id, renewed.name, renewed.last_seq, renewed.created_at) == (record.id, "restored", 2, T0)
    assert await storage.get_document("restored") == renewed
    assert await storage.retired_epochs(record.id) == [RetiredEpoch(record.epoch, 2, b"\x01\x07\x02", T0 + 3)]
    assert [r.data for r in await storage.read_updates(record.id)] == [b"a", b"b"]  # history stays
    assert await storage.latest_snapshot(record.id) == Snapshot(1, b"state", T0 + 1)
    assert await storage.append_updates(record.id, [NewUpdate(b"c", "ana", T0 + 4)]) == 3


async def test_renewing_twice_lists_the_retired_epochs_newest_first(storage: Storage) -> None:
    record = await storage.create_document("twice", T0)
    other = await storage.create_document("other", T0)
    first = await storage.renew_epoch(record.id, 0, b"\x00", T0 + 1)
    second = await storage.renew_epoch(record.id, 0, b"\x01\x01\x01", T0 + 2)
    retired = await storage.retired_epochs(record.id)
    assert [r.epoch for r in retired] == [first.epoch, record.epoch]
    assert len({record.epoch, first.epoch, second.epoch}) == 3
    assert await storage.retired_epochs(other.id) == []
    assert (await storage.get_document("other")) == other  # other documents keep their epoch


async def test_only_live_documents_are_renewed(storage: Storage) -> None:
    record = await storage.create_document("gone", T0)
    await storage.delete_document("gone", T0 + 1)
    with pytest.raises(DocumentNotFound):
        await storage.renew_epoch(record.id, 0, b"\x00", T0 + 2)
    with pytest.raises(DocumentNotFound):
        await storage.renew_epoch("0" * 32, 0, b"\x00", T0 + 2)
    assert await storage.retired_epochs(record.id) == []
    with pytest.raises(DocumentNotFound):
        await storage.retired_epochs("0" * 32)
