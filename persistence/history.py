"""History records (presence samples, session/bookmark events), their store protocol, its factory."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from persistence.comments import NewEvent, StoredEvent

JOIN, LEAVE, STATE = "join", "leave", "state"
PRESENCE_KINDS = (JOIN, LEAVE, STATE)

#: Kinds of the document events this feature writes (the comment store writes "comment.*").
SESSION_STARTED = "session.started"
SESSION_ENDED = "session.ended"
BOOKMARK_ADDED = "bookmark.added"
HISTORY_EVENT_PREFIXES = ("session.", "bookmark.", "history.")
RESTORED = "history.restored"


@dataclass(frozen=True, slots=True)
class NewPresence:
    """A presence sample about to be stored; the store assigns its per-document seq.

    `kind`: JOIN (a connection opened; `data` {"name": display name}), LEAVE (it closed; `data`
    {"clients": [awareness client ids it held]}), STATE (an awareness state, sampled at most once
    a second per client; `data` is the state's JSON text). `log_seq`: the last committed row of
    the update log when the sample was taken, so presence lines up with the log.
    """

    created_at: float
    author: str
    kind: str
    connection: int
    client_id: int | None
    log_seq: int
    data: str


@dataclass(frozen=True, slots=True)
class StoredPresence:
    seq: int
    created_at: float
    author: str
    kind: str
    connection: int
    client_id: int | None
    log_seq: int
    data: str


class HistoryStore(Protocol):
    """Presence samples, and the session/bookmark rows of the document event log."""

    async def append_presence(self, document_id: str, rows: Sequence[NewPresence]) -> int:
        """Append in one transaction; return the last seq. `DocumentNotFound` (SQL) for an unknown id."""

    async def append_presence_batch(self, batch: Mapping[str, Sequence[NewPresence]]) -> dict[str, int]:
        """Append the rows of several documents in one transaction; {document id: its last seq} for
        the documents stored. An unknown document id (SQL) is skipped: absent from the result. A row
        that cannot be stored (`ValueError`) fails the whole batch: nothing is stored."""

    async def read_presence(
        self,
        document_id: str,
        since: float | None = None,
        until: float | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[StoredPresence]:
        """Samples with seq > `after_seq`, since <= created_at <= until and a kind in `kinds` (None:
        all), ascending seq."""

    async def append_event(self, document_id: str, event: NewEvent) -> int:
        """Append a row to the document event log (the one comments write to); return its seq."""

    async def read_events(
        self, document_id: str, prefixes: Sequence[str] = HISTORY_EVENT_PREFIXES, after_seq: int = 0
    ) -> list[StoredEvent]:
        """Event rows whose kind starts with one of `prefixes`, ascending seq."""


_MEMORY_STORES: weakref.WeakKeyDictionary[object, HistoryStore] = weakref.WeakKeyDictionary()


def history_store_for(storage: object) -> HistoryStore:
    """The history store living next to `storage`: in its SQL database, else in memory (one per
    storage object)."""
    import sys

    from persistence.history_memory import MemoryHistoryStore

    sql = sys.modules.get("persistence.sql.storage")  # loaded iff a SqlStorage can exist
    if sql is not None and isinstance(storage, sql.SqlStorage):
        from persistence.sql.history import SqlHistoryStore

        return SqlHistoryStore(storage.database)
    store = _MEMORY_STORES.get(storage)
    if store is None:
        store = _MEMORY_STORES[storage] = MemoryHistoryStore()
    return store
