"""The storage interface every backend implements, its records and its errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class StorageError(Exception):
    """A backend failed (database down, disk full, constraint violated)."""


class DocumentNotFound(StorageError):
    """No live document has that name (or id)."""


class DocumentExists(StorageError):
    """A live document already has that name."""


class SchemaMismatch(StorageError):
    """The database was created by an unknown version of cocreate; refuse to touch it."""


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """One live document. `id` is never reused; `epoch` changes when the content lineage restarts."""

    id: str
    name: str
    epoch: str
    created_at: float
    updated_at: float
    last_seq: int
    log_bytes: int
    last_author: str | None


@dataclass(frozen=True, slots=True)
class RetiredEpoch:
    """An epoch a live document left behind when it was given a new one (after a restore).

    `state_vector` is the document's Yjs state vector at that moment (after log row `seq`): the
    clocks of the retired epoch, against which copies of it are recognised.
    """

    epoch: str
    seq: int
    state_vector: bytes
    retired_at: float


@dataclass(frozen=True, slots=True)
class NewUpdate:
    """An update about to be appended; the log assigns its sequence number."""

    data: bytes
    author: str
    created_at: float


@dataclass(frozen=True, slots=True)
class StoredUpdate:
    """A committed row of the log: per document, `seq` runs 1, 2, 3, ... without gaps."""

    seq: int
    data: bytes
    author: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The merged document state after applying log rows 1..seq; a cache, never the only copy."""

    seq: int
    data: bytes
    created_at: float


class Storage(Protocol):
    """Documents, their append-only update logs and their snapshots."""

    async def open(self) -> None:
        """Connect and check (or create) the schema. Raises `SchemaMismatch` on an unknown one."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Return once the backend answers a trivial query; raise `StorageError` otherwise (readiness)."""

    async def create_document(self, name: str, now: float) -> DocumentRecord:
        """Create a live document with a fresh id and epoch. Raises `DocumentExists`."""

    async def get_document(self, name: str) -> DocumentRecord | None: ...

    async def live_documents_by_id(self, document_ids: Sequence[str]) -> dict[str, DocumentRecord]:
        """The live documents among `document_ids`, by id (deleted and unknown ones are left out)."""

    async def list_documents(
        self, prefix: str = "", after: str = "", limit: int = 100
    ) -> list[DocumentRecord]:
        """Live documents whose name starts with `prefix`, sorted by name, names > `after`."""

    async def rename_document(self, name: str, new_name: str, now: float) -> DocumentRecord:
        """Raises `DocumentNotFound` or `DocumentExists`; id, epoch and log are kept."""

    async def delete_document(self, name: str, now: float) -> None:
        """Retire a live document: its name becomes free; its rows are kept (history)."""

    async def retired_documents(self, name: str) -> list[DocumentRecord]:
        """Deleted documents that once had `name`, newest first (their rows are kept)."""

    async def renew_epoch(
        self, document_id: str, seq: int, state_vector: bytes, now: float
    ) -> DocumentRecord:
        """Give a live document a new epoch; its current one is kept as a `RetiredEpoch` with
        `seq` and `state_vector` (its content as of row `seq`). Id, name, log and snapshots stay.
        Raises `DocumentNotFound` unless the document is live."""

    async def retired_epochs(self, document_id: str) -> list[RetiredEpoch]:
        """The epochs `renew_epoch` retired for this document, newest first."""

    async def client_claims(self, document_id: str, epoch: str) -> dict[int, str]:
        """Yjs client id -> the user who claimed it in this epoch of the document (`claim_client`)."""

    async def claim_client(self, document_id: str, epoch: str, client_id: int, user_id: str) -> str:
        """Record that `user_id` claims `client_id` in this epoch unless someone already does; return
        the claiming user (the first claim wins, forever). `DocumentNotFound` for an unknown id."""

    async def append_updates(self, document_id: str, updates: Sequence[NewUpdate]) -> int:
        """Append in one transaction, durably; return the last sequence number.

        Raises `DocumentNotFound` if the document was deleted. Nothing is written on failure.
        """

    async def read_updates(
        self, document_id: str, after_seq: int = 0, until_seq: int | None = None, limit: int | None = None
    ) -> list[StoredUpdate]:
        """Rows with after_seq < seq <= until_seq, ascending, at most `limit` of them."""

    async def save_snapshot(self, document_id: str, snapshot: Snapshot) -> None: ...

    async def latest_snapshot(self, document_id: str, at_most_seq: int | None = None) -> Snapshot | None:
        """The snapshot with the highest seq <= `at_most_seq` (any when None)."""

    async def prune_updates(self, document_id: str, up_to_seq: int, older_than: float) -> int:
        """Retention: delete the longest prefix of log rows with seq <= `up_to_seq` (capped at the
        latest snapshot's seq) whose created_at < `older_than`. Returns how many were deleted."""
