"""Token mode: a user's claims on Yjs client ids in one document, made through awareness, persisted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from crdt.awareness import AwarenessEntry
from persistence.base import DocumentRecord, Storage, StorageError
from server.write_gate import WriteGate

log = logging.getLogger("cocreate.room")

CLAIM_WRITE_TIMEOUT = 5.0


class ClientClaims:
    """The room's side of claims: which awareness entries a user may present, when a connection's
    first live state for an id claims it, and writing claims through to storage. The gate's `claims`
    cache decides at once; the storage write follows (its primary key decides races with other
    nodes, and a lost race corrects the cache)."""

    def __init__(
        self, gate: WriteGate, storage: Storage, name: str, on_storage_error: Callable[[], None]
    ) -> None:
        self.gate = gate
        self.storage = storage
        self.name = name
        self.on_storage_error = on_storage_error
        self._writes: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.gate.user_claims

    async def load(self, record: DocumentRecord) -> None:
        if self.enabled:
            self.gate.claims = await self.storage.client_claims(record.id, record.epoch)

    def presentable(self, entries: list[AwarenessEntry], user: str) -> list[AwarenessEntry]:
        """Entries minus those for ids another user claimed: not theirs to present."""
        if not self.enabled:
            return entries
        claims = self.gate.claims
        return [entry for entry in entries if claims.get(entry.client_id, user) == user]

    def announced(
        self,
        record: DocumentRecord,
        peer_id: int,
        user: str,
        clients: frozenset[int],
        known: Mapping[int, int],
    ) -> None:
        """`peer_id` announced live states for these ids for the first time: claim the unclaimed ones,
        unless the server holds structs of an id this connection did not write (an id some other
        client used without claiming it, before revision 0007 or without awareness, is not up for
        grabs: it stays protected only while its writer is connected)."""
        for client in clients:
            if client in self.gate.claims:
                continue
            if known.get(client, 0) and self.gate.writer_of(client) != peer_id:
                log.info(
                    "room %r: peer %d (%s) may not claim client %d: it has structs",
                    self.name,
                    peer_id,
                    user,
                    client,
                )
                continue
            self.gate.claims[client] = user
            task = asyncio.create_task(self._write(record, client, user))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def settle(self) -> None:
        """Let the last claim writes land (the room is ending)."""
        if self._writes:
            await asyncio.wait(self._writes, timeout=CLAIM_WRITE_TIMEOUT)

    async def _write(self, record: DocumentRecord, client: int, user: str) -> None:
        try:
            winner = await self.storage.claim_client(record.id, record.epoch, client, user)
        except (StorageError, ValueError) as exc:  # the cache keeps the claim while the room is loaded
            self.on_storage_error()
            log.warning("room %r: could not record the claim of client %d: %s", self.name, client, exc)
            return
        if winner != user:
            log.warning(
                "room %r: client %d was claimed by %r on another node first", self.name, client, winner
            )
            self.gate.claims[client] = winner
