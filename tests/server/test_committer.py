"""The committer's commit hook (webhooks): told of every committed batch, never able to break commits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from persistence.base import NewUpdate
from persistence.memory import MemoryStorage
from server.room import Room
from server.settings import Settings
from tests.server.fakes import FakePeer, edits, stored_text
from tests.server.test_room import acked, finish, send


async def test_the_hook_sees_every_committed_batch_and_a_raising_one_breaks_nothing() -> None:
    storage = MemoryStorage()
    seen: list[tuple[str, str, int, int, set[str]]] = []

    def hook(name: str, document_id: str, last_seq: int, batch: Sequence[NewUpdate]) -> None:
        seen.append((name, document_id, last_seq, len(batch), {u.author for u in batch}))
        if len(seen) % 2:
            raise RuntimeError("an observer that fails")

    room = Room("doc", storage, Settings(), time.time)
    room.on_commit = hook
    task = asyncio.create_task(room.run())
    peer = FakePeer()
    room.join(peer)
    _, updates = edits(30)
    for update in updates:
        send(room, peer, update)
    await peer.wait_for(lambda: acked(peer) == 30)
    await finish(room, task, peer)
    record = await storage.get_document("doc")
    assert record is not None and await stored_text(storage, "doc") == "x" * 30
    assert {(name, document_id) for name, document_id, *_ in seen} == {("doc", record.id)}
    last_seqs = [last for _, _, last, _, _ in seen]
    assert last_seqs == sorted(last_seqs) and last_seqs[-1] == record.last_seq
    assert sum(size for *_, size, _ in seen) == record.last_seq  # every logged update, once
    assert all(authors == {peer.author} for *_, authors in seen)
