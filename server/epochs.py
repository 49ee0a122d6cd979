"""Epochs: recognising a client that holds a copy of a deleted-and-recreated document."""

from __future__ import annotations

from collections.abc import Mapping

from crdt.errors import CoreError
from persistence.base import Storage
from server.loading import load_state

MAX_RETIRED_GENERATIONS = 3
CLOSE_DOCUMENT_GONE = 4404
STALE_REASON = "this document was deleted and re-created; discard your local copy and reload"


class StaleCopy(CoreError):
    """A client's copy predates the document's re-creation (another epoch): it must not merge it in."""

    close_code = CLOSE_DOCUMENT_GONE
    reason = STALE_REASON


async def retired_clocks(storage: Storage, name: str) -> dict[int, int]:
    """Client id -> highest clock seen in the last deleted generations of `name`."""
    clocks: dict[int, int] = {}
    for record in (await storage.retired_documents(name))[:MAX_RETIRED_GENERATIONS]:
        state = await load_state(storage, record.id)
        for client, clock in state.document.clock_state().items():
            clocks[client] = max(clock, clocks.get(client, 0))
        state.document.close()
    return clocks


def is_stale(claimed: Mapping[int, int], known: Mapping[int, int], retired: Mapping[int, int]) -> bool:
    """True when a client claims edits (beyond what this generation knows) of a client id that
    wrote to a deleted generation of the document: its copy predates the re-creation."""
    if not retired:
        return False
    return any(clock > known.get(client, 0) and client in retired for client, clock in claimed.items())
