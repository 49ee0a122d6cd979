"""Contract for retired documents (epochs) and log retention, on every backend."""

from __future__ import annotations

from persistence.base import NewUpdate, Snapshot, Storage

T0 = 1_700_000_000.0


async def test_retired_documents_of_a_name_newest_first(storage: Storage) -> None:
    first = await storage.create_document("gen", T0)
    await storage.delete_document("gen", T0 + 1)
    second = await storage.create_document("gen", T0 + 2)
    await storage.delete_document("gen", T0 + 3)
    await storage.create_document("gen", T0 + 4)
    retired = await storage.retired_documents("gen")
    assert [r.id for r in retired] == [second.id, first.id]
    assert await storage.retired_documents("other") == []


async def test_prune_deletes_an_old_prefix_covered_by_a_snapshot(storage: Storage) -> None:
    record = await storage.create_document("retained", T0)
    rows = [NewUpdate(bytes([i]), "a", T0 + i) for i in range(10)]
    await storage.append_updates(record.id, rows)
    assert await storage.prune_updates(record.id, 8, older_than=T0 + 100) == 0  # no snapshot yet
    await storage.save_snapshot(record.id, Snapshot(6, b"state", T0 + 6))
    assert await storage.prune_updates(record.id, 8, older_than=T0 + 4) == 4  # rows 1-4 are old
    remaining = await storage.read_updates(record.id)
    assert [r.seq for r in remaining] == [5, 6, 7, 8, 9, 10]
    assert await storage.prune_updates(record.id, 8, older_than=T0 + 100) == 2  # capped at snapshot 6
    assert [r.seq for r in await storage.read_updates(record.id)] == [7, 8, 9, 10]
    assert [r.seq for r in await storage.read_updates(record.id, after_seq=7, limit=2)] == [8, 9]
    assert [r.seq for r in await storage.read_updates(record.id, until_seq=8)] == [7, 8]
    assert await storage.append_updates(record.id, [NewUpdate(b"x", "a", T0 + 20)]) == 11
