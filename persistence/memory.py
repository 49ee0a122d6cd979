"""An in-memory `Storage`, for tests and benchmarks; same contract as the SQL backends."""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from persistence.base import (
    DocumentExists,
    DocumentNotFound,
    DocumentRecord,
    NewUpdate,
    RetiredEpoch,
    Snapshot,
    StoredUpdate,
)


@dataclass
class _Entry:
    stored: DocumentRecord  # as of the last read or change other than an append (see `record`)
    log: list[StoredUpdate] = field(default_factory=list)  # rows first_seq, first_seq + 1, ...
    first_seq: int = 1
    snapshots: list[Snapshot] = field(default_factory=list)
    deleted: bool = False
    retired_epochs: list[RetiredEpoch] = field(default_factory=list)  # newest first
    claims: dict[tuple[str, int], str] = field(default_factory=dict)  # (epoch, client id) -> user
    appended: tuple[int, int, float, str | None] | None = None  # since `stored`: seq, bytes, at, author

    @property
    def record(self) -> DocumentRecord:
        """The document as it is now; appends only note their counters, the record is built when read."""
        if self.appended is not None:
            seq, log_bytes, at, author = self.appended
            self.stored = replace(
                self.stored, last_seq=seq, log_bytes=log_bytes, updated_at=at, last_author=author
            )
            self.appended = None
        return self.stored

    @record.setter
    def record(self, record: DocumentRecord) -> None:
        self.stored = record
        self.appended = None


class MemoryStorage:
    """Keeps everything in dictionaries; lost when the process ends."""

    def __init__(self) -> None:
        self._by_id: dict[str, _Entry] = {}
        self._live: dict[str, str] = {}  # name -> id

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def create_document(self, name: str, now: float) -> DocumentRecord:
        if name in self._live:
            raise DocumentExists(name)
        record = DocumentRecord(
            id=uuid.uuid4().hex,
            name=name,
            epoch=uuid.uuid4().hex,
            created_at=now,
            updated_at=now,
            last_seq=0,
            log_bytes=0,
            last_author=None,
        )
        self._by_id[record.id] = _Entry(record)
        self._live[name] = record.id
        return record

    async def get_document(self, name: str) -> DocumentRecord | None:
        document_id = self._live.get(name)
        return None if document_id is None else self._by_id[document_id].record

    async def live_documents_by_id(self, document_ids: Sequence[str]) -> dict[str, DocumentRecord]:
        found = (self._by_id.get(i) for i in document_ids)
        return {e.record.id: e.record for e in found if e is not None and not e.deleted}

    async def list_documents(
        self, prefix: str = "", after: str = "", limit: int = 100
    ) -> list[DocumentRecord]:
        names = sorted(n for n in self._live if n.startswith(prefix) and n > after)
        return [self._by_id[self._live[n]].record for n in names[:limit]]

    async def rename_document(self, name: str, new_name: str, now: float) -> DocumentRecord:
        entry = self._live_entry(name)
        if new_name in self._live:
            raise DocumentExists(new_name)
        del self._live[name]
        entry.record = replace(entry.record, name=new_name, updated_at=now)
        self._live[new_name] = entry.record.id
        return entry.record

    async def delete_document(self, name: str, now: float) -> None:
        entry = self._live_entry(name)
        del self._live[name]
        entry.deleted = True
        entry.record = replace(entry.record, updated_at=now)

    async def retired_documents(self, name: str) -> list[DocumentRecord]:
        retired = [e.record for e in self._by_id.values() if e.deleted and e.record.name == name]
        return sorted(retired, key=lambda r: r.updated_at, reverse=True)

    async def renew_epoch(
        self, document_id: str, seq: int, state_vector: bytes, now: float
    ) -> DocumentRecord:
        entry = self._entry(document_id)
        if entry.deleted:
            raise DocumentNotFound(document_id)
        entry.retired_epochs.insert(0, RetiredEpoch(entry.record.epoch, seq, bytes(state_vector), now))
        entry.record = replace(entry.record, epoch=uuid.uuid4().hex)
        return entry.record

    async def retired_epochs(self, document_id: str) -> list[RetiredEpoch]:
        return list(self._entry(document_id).retired_epochs)

    async def client_claims(self, document_id: str, epoch: str) -> dict[int, str]:
        claims = self._entry(document_id).claims
        return {client: user for (at, client), user in claims.items() if at == epoch}

    async def claim_client(self, document_id: str, epoch: str, client_id: int, user_id: str) -> str:
        return self._entry(document_id).claims.setdefault((epoch, client_id), user_id)

    async def append_updates(self, document_id: str, updates: Sequence[NewUpdate]) -> int:
        entry = self._entry(document_id)
        if entry.deleted:
            raise DocumentNotFound(document_id)
        appended = entry.appended
        seq, log_bytes = (
            (appended[0], appended[1]) if appended else (entry.stored.last_seq, entry.stored.log_bytes)
        )
        if not updates:
            return seq
        log = entry.log
        for update in updates:
            seq += 1
            log_bytes += len(update.data)
            log.append(StoredUpdate(seq, update.data, update.author, update.created_at))
        last = updates[-1]
        entry.appended = (seq, log_bytes, last.created_at, last.author)
        return seq

    async def read_updates(
        self, document_id: str, after_seq: int = 0, until_seq: int | None = None, limit: int | None = None
    ) -> list[StoredUpdate]:
        entry = self._entry(document_id)
        log, offset = entry.log, entry.first_seq
        end = len(log) if until_seq is None else max(0, min(len(log), until_seq - offset + 1))
        start = max(0, after_seq - offset + 1)
        if limit is not None:
            end = min(end, start + limit)
        return log[start:end]

    async def prune_updates(self, document_id: str, up_to_seq: int, older_than: float) -> int:
        entry = self._entry(document_id)
        latest = entry.snapshots[-1].seq if entry.snapshots else 0
        limit = min(up_to_seq, latest)
        count = 0
        for row in entry.log:
            if row.seq > limit or row.created_at >= older_than:
                break
            count += 1
        del entry.log[:count]
        entry.first_seq += count
        return count

    async def save_snapshot(self, document_id: str, snapshot: Snapshot) -> None:
        snapshots = self._entry(document_id).snapshots
        seqs = [s.seq for s in snapshots]
        at = bisect.bisect_left(seqs, snapshot.seq)
        if at < len(snapshots) and snapshots[at].seq == snapshot.seq:
            snapshots[at] = snapshot
        else:
            snapshots.insert(at, snapshot)

    async def latest_snapshot(self, document_id: str, at_most_seq: int | None = None) -> Snapshot | None:
        snapshots = self._entry(document_id).snapshots
        if at_most_seq is None:
            return snapshots[-1] if snapshots else None
        at = bisect.bisect_right([s.seq for s in snapshots], at_most_seq)
        return snapshots[at - 1] if at else None

    def _entry(self, document_id: str) -> _Entry:
        entry = self._by_id.get(document_id)
        if entry is None:
            raise DocumentNotFound(document_id)
        return entry

    def _live_entry(self, name: str) -> _Entry:
        document_id = self._live.get(name)
        if document_id is None:
            raise DocumentNotFound(name)
        return self._by_id[document_id]
