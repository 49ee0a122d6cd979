"""Epochs: recognising a client that holds a copy of a deleted-and-recreated or restored document."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from crdt.document import decode_state_vector
from crdt.errors import CoreError
from persistence.base import DocumentRecord, Storage
from server.loading import load_state

MAX_RETIRED_GENERATIONS = 3
CLOSE_DOCUMENT_GONE = 4404
STALE_REASON = "this document was re-created or restored from a backup; discard your local copy and reload"


class StaleCopy(CoreError):
    """A client's copy predates the document's re-creation or restore (another epoch): it must not
    merge it in."""

    close_code = CLOSE_DOCUMENT_GONE
    reason = STALE_REASON


async def retired_clocks(storage: Storage, name: str) -> dict[int, int]:
    """Client id -> highest clock seen in the last deleted generations of `name` and in the last
    epochs the live document retired (its clocks when it was restored)."""
    clocks: dict[int, int] = {}

    def merge(state: Mapping[int, int]) -> None:
        for client, clock in state.items():
            clocks[client] = max(clock, clocks.get(client, 0))

    for record in (await storage.retired_documents(name))[:MAX_RETIRED_GENERATIONS]:
        state = await load_state(storage, record.id)
        merge(state.document.clock_state())
        state.document.close()
    live = await storage.get_document(name)
    if live is not None:
        for epoch in (await storage.retired_epochs(live.id))[:MAX_RETIRED_GENERATIONS]:
            merge(decode_state_vector(epoch.state_vector))
    return clocks


def is_stale(claimed: Mapping[int, int], known: Mapping[int, int], retired: Mapping[int, int]) -> bool:
    """True when a client claims edits (beyond what this generation knows) of a client id that
    wrote to a retired generation or epoch of the document: its copy predates the re-creation or
    the restore."""
    if not retired:
        return False
    return any(clock > known.get(client, 0) and client in retired for client, clock in claimed.items())


async def renew_epoch(storage: Storage, record: DocumentRecord, now: float) -> DocumentRecord:
    """Give a live document a new epoch, retiring the current one with the document's clocks as
    stored now (log and snapshots stay: its history remains readable)."""
    state = await load_state(storage, record.id)
    try:
        state_vector = state.document.state_vector()
    finally:
        state.document.close()
    return await storage.renew_epoch(record.id, state.last_seq, state_vector, now)


async def renew_epochs(
    storage: Storage, prefix: str, clock: Callable[[], float], page: int = 200
) -> list[tuple[DocumentRecord, DocumentRecord]]:
    """`renew_epoch` for every live document whose name starts with `prefix`: (before, after) pairs."""
    renewed: list[tuple[DocumentRecord, DocumentRecord]] = []
    after = ""
    while True:
        records = await storage.list_documents(prefix=prefix, after=after, limit=page)
        for record in records:
            renewed.append((record, await renew_epoch(storage, record, clock())))
        if len(records) < page:
            return renewed
        after = records[-1].name
