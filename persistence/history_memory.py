"""An in-memory `HistoryStore` (tests, benchmarks, the memory backend); same contract as SQL."""

# Its event rows are numbered on their own: in memory the comment store keeps its own list (its
# protocol has no public append), while the SQL stores share one `document_events` sequence.

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import astuple

from persistence.comments import NewEvent, StoredEvent
from persistence.history import HISTORY_EVENT_PREFIXES, PRESENCE_KINDS, NewPresence, StoredPresence


def _check_text(*values: str) -> None:
    """The SQL stores' rule, kept here too: text must be storable (no NUL, no lone surrogate)."""
    for value in values:
        if "\x00" in value:
            raise ValueError(f"text contains a NUL character: {value!r}")
        value.encode("utf-8")


def _check_rows(rows: Sequence[NewPresence]) -> None:
    for row in rows:
        if row.kind not in PRESENCE_KINDS:
            raise ValueError(f"unknown presence kind {row.kind!r}")
        _check_text(row.author, row.data)


class MemoryHistoryStore:
    def __init__(self) -> None:
        self._presence: dict[str, list[StoredPresence]] = defaultdict(list)
        self._events: dict[str, list[StoredEvent]] = defaultdict(list)

    async def append_presence(self, document_id: str, rows: Sequence[NewPresence]) -> int:
        _check_rows(rows)
        stored = self._presence[document_id]
        for row in rows:
            stored.append(StoredPresence(len(stored) + 1, *astuple(row)))
        return len(stored)

    async def append_presence_batch(self, batch: Mapping[str, Sequence[NewPresence]]) -> dict[str, int]:
        for rows in batch.values():
            _check_rows(rows)
        return {
            document_id: await self.append_presence(document_id, rows) for document_id, rows in batch.items()
        }

    async def read_presence(
        self,
        document_id: str,
        since: float | None = None,
        until: float | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[StoredPresence]:
        found = [
            row
            for row in self._presence.get(document_id, [])[max(0, after_seq) :]
            if (since is None or row.created_at >= since)
            and (until is None or row.created_at <= until)
            and (kinds is None or row.kind in kinds)
        ]
        return found if limit is None else found[: max(0, limit)]

    async def append_event(self, document_id: str, event: NewEvent) -> int:
        _check_text(event.kind, event.author, event.data)
        rows = self._events[document_id]
        rows.append(StoredEvent(len(rows) + 1, event.kind, event.author, event.created_at, event.data))
        return len(rows)

    async def read_events(
        self, document_id: str, prefixes: Sequence[str] = HISTORY_EVENT_PREFIXES, after_seq: int = 0
    ) -> list[StoredEvent]:
        wanted = tuple(prefixes)
        return [
            e for e in self._events.get(document_id, [])[max(0, after_seq) :] if e.kind.startswith(wanted)
        ]
