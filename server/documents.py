"""Document use cases shared by the routes: describe, read the current content, rename, delete."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlFragment

from crdt.document import Document
from crdt.sequence import root_kinds
from persistence.base import DocumentNotFound, DocumentRecord
from server.hub import Hub
from server.loading import load_state

CLOSE_DOCUMENT_GONE = 4404
ROOT_TYPES: dict[str, type[Any]] = {"text": Text, "map": Map, "array": Array, "xml": XmlFragment}


def iso(timestamp: float) -> str:
    return (
        dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def describe(hub: Hub, record: DocumentRecord) -> dict[str, Any]:
    room = hub.registry.get(record.name)
    return {
        "name": record.name,
        "id": record.id,
        "epoch": record.epoch,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "last_seq": record.last_seq,
        "size": record.log_bytes,
        "last_author": record.last_author,
        "loaded": room is not None,
        "connections": len(room.peers) if room is not None else 0,
    }


async def current_state(hub: Hub, record: DocumentRecord) -> tuple[bytes, int]:
    """The document's whole state as a Yjs update, and the log position it reflects."""
    room = hub.registry.get(record.name)
    committer = room.committer if room is not None else None
    live = room is not None and room.record is not None and room.record.id == record.id
    if live and room is not None and committer is not None and not room.applying_in_pieces:
        return room.document.encode_state(), committer.last_seq  # (mid-way it is ahead of the log)
    state = await load_state(hub.storage, record.id, page_size=hub.settings.load_page_size)
    try:
        return state.document.encode_state(), state.last_seq
    finally:
        state.document.close()


def content_of(update: bytes, kinds: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Each root's kind and plain value. Kinds are read off the update unless given."""
    roots = root_kinds(update)
    roots.update(kinds or {})
    document = Document()
    try:
        document.doc.apply_update(update)
        doc: Doc[Any] = document.doc
        result = {}
        for name, kind in sorted(roots.items()):
            shared = doc.get(name, type=ROOT_TYPES[kind])
            value = str(shared) if kind in ("text", "xml") else shared.to_py()
            result[name] = {"type": kind, "value": value}
        return result
    finally:
        document.close()


async def rename(hub: Hub, name: str, new_name: str) -> DocumentRecord:
    """Close the document's connections (4404: it moved), then rename it; id, epoch and log stay."""
    async with hub.registry.exclusive(
        name, new_name, code=CLOSE_DOCUMENT_GONE, reason=f"renamed to {new_name}"
    ):
        record = await hub.storage.rename_document(name, new_name, hub.clock())
        await hub.access.move_document(name, new_name)  # its access list and invites follow it
        return record


async def delete(hub: Hub, name: str) -> None:
    """Close the document's connections (4404), then retire it; its history rows are kept."""
    async with hub.registry.exclusive(name, code=CLOSE_DOCUMENT_GONE, reason="document deleted"):
        if await hub.storage.get_document(name) is None:
            raise DocumentNotFound(name)
        await hub.storage.delete_document(name, hub.clock())
