"""In-process stand-ins for the room's collaborators: a peer that records frames, a storage that fails."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

from pycrdt import Doc

from crdt.messages import Message, decode_message
from crdt.sync import Role, SyncSession
from persistence.base import NewUpdate, Storage, StorageError
from persistence.memory import MemoryStorage

_ids = itertools.count(1000)


class FakePeer:
    """A room peer without a socket: frames it is sent are decoded into `received`."""

    prefix = b""

    def __init__(self, *, acks: bool = True, read_only: bool = False, epoch: str | None = None) -> None:
        self.id = next(_ids)
        self.author = f"user{self.id}"
        self.expected_epoch = epoch
        self.session = SyncSession(Role.SERVER, acks=acks, read_only=read_only)
        self.received: list[Message] = []
        self.closed: tuple[int, str] | None = None
        self.changed = asyncio.Event()

    @property
    def open(self) -> bool:
        return self.closed is None

    def write_frame(self, frame: bytes) -> None:
        payload = _unframe(frame)
        self.received.append(decode_message(payload))
        self.changed.set()

    def flush(self) -> None:
        for payload in self.session.data_to_send():
            self.received.append(decode_message(payload))
        self.changed.set()

    def close(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = (code, reason)
            self.changed.set()

    def processed(self, nbytes: int) -> None:
        pass

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


def _unframe(frame: bytes) -> bytes:
    length = frame[1] & 0x7F
    if length < 126:
        return frame[2:]
    if length == 126:
        return frame[4:]
    return frame[10:]


class FlakyStorage(MemoryStorage):
    """Memory storage whose appends can be made to fail (disk full, database down) and recover."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.appends = 0

    async def append_updates(self, document_id: str, updates: Sequence[NewUpdate]) -> int:
        if self.failing:
            raise StorageError("disk full (simulated)")
        self.appends += 1
        return await super().append_updates(document_id, updates)


class GatedStorage(MemoryStorage):
    """Memory storage whose appends wait for `gate` (a commit held in flight); `batches` records the
    size of each committed append (one transaction each)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.appending = asyncio.Event()
        self.batches: list[int] = []

    async def append_updates(self, document_id: str, updates: Sequence[NewUpdate]) -> int:
        self.appending.set()
        await self.gate.wait()
        last_seq = await super().append_updates(document_id, updates)
        self.batches.append(len(updates))
        return last_seq


def edits(count: int, text: str = "x") -> tuple[Doc[Any], list[bytes]]:
    """A document and the `count` single-character updates that built it."""
    from pycrdt import Text

    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    body = doc.get("t", type=Text)
    for i in range(count):
        body.insert(i, text)
    return doc, updates


async def stored_text(storage: Storage, name: str) -> str:
    from pycrdt import Text

    from server.loading import load_state

    record = await storage.get_document(name)
    assert record is not None
    state = await load_state(storage, record.id)
    return str(state.document.doc.get("t", type=Text))
