"""Rebuilding a document from durable state: the latest snapshot at or before a point, then the log tail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crdt.document import Document
from persistence.base import DocumentExists, DocumentRecord, Storage, StorageError


@dataclass(slots=True)
class LoadedState:
    """A document as of `last_seq`, and what compaction needs to know about how it was loaded."""

    document: Document
    last_seq: int
    snapshot_seq: int
    snapshot_bytes: int
    tail_bytes: int


async def load_state(
    storage: Storage, document_id: str, until_seq: int | None = None, page_size: int = 5000
) -> LoadedState:
    """The document after log rows 1..until_seq (all rows when None), from snapshot + tail.

    Stored bytes were validated before they were logged, so they are applied without the validator.
    """
    document = Document()
    snapshot = await storage.latest_snapshot(document_id, at_most_seq=until_seq)
    seq = snapshot_seq = snapshot_bytes = tail_bytes = 0
    if snapshot is not None:
        document.doc.apply_update(snapshot.data)
        seq = snapshot_seq = snapshot.seq
        snapshot_bytes = len(snapshot.data)
    while until_seq is None or seq < until_seq:
        rows = await storage.read_updates(document_id, after_seq=seq, until_seq=until_seq, limit=page_size)
        if not rows:
            break
        doc = document.doc
        for row in rows:
            doc.apply_update(row.data)
            tail_bytes += len(row.data)
        seq = rows[-1].seq
    return LoadedState(document, seq, snapshot_seq, snapshot_bytes, tail_bytes)


async def resolve_record(storage: Storage, name: str, clock: Callable[[], float]) -> DocumentRecord:
    """The stored record of `name`, created (with a new epoch) if there is none."""
    record = await storage.get_document(name)
    if record is None:
        try:
            record = await storage.create_document(name, clock())
        except DocumentExists:  # another process or room created it meanwhile
            record = await storage.get_document(name)
    if record is None:
        raise StorageError(f"document {name!r} vanished while being created")
    return record
