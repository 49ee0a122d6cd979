"""Facilitated sessions and bookmarks: document event rows, read back and published live."""

# Facilitated sessions and bookmarks: rows of the document event log (`session.*`, `bookmark.*`), read
# back as sessions with their bookmarks, and published live on the event bus like comment events.
#
# A session is [start, end] of a document's history, marked live by a facilitator (an owner):
# at most one is open per document. Each mark records the log seq committed at that moment, so
# the session's edits are exactly the log rows in (start seq, end seq].

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from persistence.base import DocumentRecord
from persistence.comments import NewEvent, StoredEvent
from persistence.history import BOOKMARK_ADDED, SESSION_ENDED, SESSION_STARTED
from server.auth import Identity
from server.documents import iso
from server.history import HistoryProblem, HistoryService

MAX_LABEL_CHARS = 200


@dataclass(slots=True)
class Bookmark:
    id: str
    label: str
    at: float
    seq: int
    author: str
    session: str | None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "at": iso(self.at),
            "seq": self.seq,
            "author": self.author,
            "session": self.session,
        }


@dataclass(slots=True)
class Session:
    id: str
    name: str
    started_at: float
    started_by: str
    start_seq: int
    ended_at: float | None = None
    ended_by: str | None = None
    end_seq: int | None = None
    bookmarks: list[Bookmark] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "open": self.ended_at is None,
            "started_at": iso(self.started_at),
            "started_by": self.started_by,
            "start_seq": self.start_seq,
            "ended_at": iso(self.ended_at) if self.ended_at is not None else None,
            "ended_by": self.ended_by,
            "end_seq": self.end_seq,
            "bookmarks": [b.view() for b in self.bookmarks],
        }


def check_label(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HistoryProblem(422, "invalid_field", f"'{field_name}' must be a non-empty string")
    if len(value) > MAX_LABEL_CHARS or "\x00" in value:
        raise HistoryProblem(
            422, "invalid_field", f"'{field_name}' must be at most {MAX_LABEL_CHARS} characters"
        )
    return value.strip()


def sessions_of(rows: list[StoredEvent]) -> tuple[list[Session], list[Bookmark]]:
    """Sessions (oldest first) and the bookmarks dropped outside any session, from the event rows."""
    sessions: dict[str, Session] = {}
    loose: list[Bookmark] = []
    for row in rows:
        data = json.loads(row.data)
        if row.kind == SESSION_STARTED:
            sessions[data["session"]] = Session(
                data["session"], data["name"], row.created_at, row.author, data["seq"]
            )
        elif row.kind == SESSION_ENDED and data["session"] in sessions:
            session = sessions[data["session"]]
            session.ended_at, session.ended_by, session.end_seq = row.created_at, row.author, data["seq"]
        elif row.kind == BOOKMARK_ADDED:
            mark = Bookmark(
                data["bookmark"], data["label"], data["at"], data["seq"], row.author, data.get("session")
            )
            owner = sessions.get(mark.session) if mark.session is not None else None
            (owner.bookmarks if owner is not None else loose).append(mark)
    return list(sessions.values()), loose


class Sessions:
    """Start, end, bookmark, list: each change one event row, then published on the bus."""

    def __init__(self, history: HistoryService) -> None:
        self.history = history
        self.hub = history.hub

    async def list(self, record: DocumentRecord) -> tuple[list[Session], list[Bookmark]]:
        return sessions_of(await self.history.store.read_events(record.id))

    async def get(self, record: DocumentRecord, session_id: str) -> Session:
        sessions, _ = await self.list(record)
        for session in sessions:
            if session.id == session_id:
                return session
        raise HistoryProblem(404, "session_not_found", f"no session {session_id!r} on this document")

    async def _seq_now(self, record: DocumentRecord) -> int:
        room = self.hub.registry.get(record.name)
        if (
            room is not None
            and room.committer is not None
            and room.record is not None
            and room.record.id == record.id
        ):
            return room.committer.last_seq
        fresh = await self.hub.storage.get_document(record.name)
        return fresh.last_seq if fresh is not None else record.last_seq

    async def _log(self, record: DocumentRecord, who: Identity, kind: str, data: dict[str, Any]) -> int:
        event = NewEvent(kind, who.user_id, self.hub.clock(), json.dumps(data, ensure_ascii=False))
        seq = await self.history.store.append_event(record.id, event)
        self.hub.events.publish(record.name, kind, {"event_seq": seq, "author": who.user_id, **data})
        return seq

    async def start(self, record: DocumentRecord, who: Identity, name: str) -> Session:
        sessions, _ = await self.list(record)
        opened = next((s for s in sessions if s.ended_at is None), None)
        if opened is not None:
            raise HistoryProblem(409, "session_open", f"session {opened.name!r} ({opened.id}) is still open")
        session_id = uuid.uuid4().hex
        data = {"session": session_id, "name": name, "seq": await self._seq_now(record)}
        await self._log(record, who, SESSION_STARTED, data)
        return await self.get(record, session_id)

    async def end(self, record: DocumentRecord, who: Identity, session_id: str) -> Session:
        session = await self.get(record, session_id)
        if session.ended_at is not None:
            raise HistoryProblem(409, "session_ended", "the session has already ended")
        await self._log(
            record, who, SESSION_ENDED, {"session": session_id, "seq": await self._seq_now(record)}
        )
        return await self.get(record, session_id)

    async def bookmark(
        self, record: DocumentRecord, who: Identity, label: str, session_id: str | None
    ) -> Bookmark:
        sessions, _ = await self.list(record)
        if session_id is None:  # default: the open session, if any
            session_id = next((s.id for s in sessions if s.ended_at is None), None)
        elif not any(s.id == session_id for s in sessions):
            raise HistoryProblem(404, "session_not_found", f"no session {session_id!r} on this document")
        mark = Bookmark(
            uuid.uuid4().hex, label, self.hub.clock(), await self._seq_now(record), who.user_id, session_id
        )
        data = {"bookmark": mark.id, "label": label, "session": session_id, "at": mark.at, "seq": mark.seq}
        await self._log(record, who, BOOKMARK_ADDED, data)
        return mark
