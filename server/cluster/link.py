"""One room's tie to the cluster: what it has applied (a seq watermark), publishing what it commits,
catching up from the log when the streams missed something, and remote presence bookkeeping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crdt.awareness import NULL_STATE, AwarenessEntry, AwarenessRegistry, encode_awareness
from persistence.base import NewUpdate, Storage, StorageError
from server.cluster.records import AwarenessQuery, AwarenessRelay, CommittedUpdates, Record
from server.cluster.watermark import SeqTracker

if TYPE_CHECKING:  # the Redis client is imported only when a cluster is configured
    from server.cluster.node import Cluster

log = logging.getLogger("cocreate.cluster")

GAP_PATIENCE = 0.5  # seconds a hole above the watermark may stay open before the log is read
SAFETY_POLL = 3.0  # seconds between log checks of a room with peers, whatever the streams say
PRESENCE_TTL = 30.0  # a remote client's presence vanishes if its node does not refresh it
CATCH_UP_PAGE = 2000
LOG_ORIGIN = "log"


@dataclass(frozen=True, slots=True)
class LogSnapshot:
    """The log was pruned below what this node needs: the snapshot at `seq` replaces the missing rows."""

    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class PresenceExpired:
    """Remote presence entries (their pseudo-connections) not refreshed for PRESENCE_TTL."""

    connections: tuple[Hashable, ...]


Inbound = Record | LogSnapshot | PresenceExpired


def remote_connection(origin: str, client_id: int) -> tuple[str, str, int]:
    """The pseudo-connection that owns a remote client's awareness entry in the room's registry."""
    return ("remote", origin, client_id)


def is_remote_connection(owner: object) -> bool:
    return isinstance(owner, tuple) and len(owner) == 3 and owner[0] == "remote"


class RoomLink:
    """Created per room; the room calls it, the cluster drives it (`deliver`, `resync`, `tick`)."""

    def __init__(
        self,
        cluster: Cluster,
        document_id: str,
        storage: Storage,
        receive: Callable[[Inbound], None],
        has_peers: Callable[[], bool],
        compact: Callable[[], None],
    ) -> None:
        self.cluster = cluster
        self.document_id = document_id
        self.storage = storage
        self.receive = receive  # puts an item into the room's inbox
        self.has_peers = has_peers
        self.compact = compact  # asks the committer to check its compaction policy
        self._compaction_checked_at = 0
        self.tracker: SeqTracker | None = None  # None until the room loaded the log
        self.remote_seen: dict[Hashable, float] = {}  # remote pseudo-connection -> last refresh
        self.remote_clocks: dict[Hashable, int] = {}  # remote pseudo-connection -> its entry's clock
        self.local_presence: dict[int, AwarenessEntry] = {}
        self._resync_wanted = False
        self._catching_up: asyncio.Task[None] | None = None
        self._last_poll = 0.0

    @property
    def node_id(self) -> str:
        return self.cluster.node_id

    # -- room lifecycle ----------------------------------------------------------------------
    async def attach(self) -> None:
        """Before loading: from now on, everything committed elsewhere reaches the room's inbox."""
        await self.cluster.attach(self.document_id, self)

    def loaded(self, last_seq: int) -> None:
        """The room (re)loaded the log up to `last_seq`."""
        self.tracker = SeqTracker(last_seq)
        self._last_poll = self.cluster.clock()
        self.cluster.publish(self.document_id, AwarenessQuery(self.node_id))
        if self._resync_wanted:
            self._resync_wanted = False
            self.catch_up()

    def detach(self) -> None:
        """The room closed: its clients' presence ends everywhere (not after the 30 s expiry)."""
        gone = [AwarenessEntry(e.client_id, e.clock + 1, "null") for e in self.local_presence.values()]
        if gone:
            self.local_presence.clear()
            self.cluster.publish(self.document_id, AwarenessRelay(encode_awareness(gone), self.node_id))
        self.cluster.detach(self.document_id, self)
        if self._catching_up is not None:
            self._catching_up.cancel()

    # -- what the room tells the cluster ----------------------------------------------------
    def committed(self, last_seq: int, batch: list[NewUpdate]) -> None:
        """The committer made log rows ..last_seq durable: count them applied, tell the others."""
        first_seq = last_seq - len(batch) + 1
        if self.tracker is not None:
            self.tracker.mark(first_seq, last_seq, self.cluster.clock())
        updates = tuple(update.data for update in batch)
        self.cluster.publish(self.document_id, CommittedUpdates(first_seq, updates, self.node_id))

    def presence_changed(self, entries: list[AwarenessEntry]) -> None:
        """Local clients' accepted awareness entries (including removals)."""
        for entry in entries:
            if entry.state == "null":
                self.local_presence.pop(entry.client_id, None)
            else:
                self.local_presence[entry.client_id] = entry
        if entries:
            self.cluster.publish(self.document_id, AwarenessRelay(encode_awareness(entries), self.node_id))

    def answer_presence_query(self) -> None:
        if self.local_presence:
            payload = encode_awareness(self.local_presence.values())
            self.cluster.publish(self.document_id, AwarenessRelay(payload, self.node_id))

    def snapshot_seq(self) -> int | None:
        """The seq a snapshot may claim now, or None (another node compacts, or not now).

        The watermark, and only while nothing above it is applied: the document then holds exactly
        rows 1..W, which history views (`latest_snapshot(at_most_seq=...)`) rely on."""
        tracker = self.tracker
        if tracker is None or tracker.highest != tracker.watermark:
            return None
        return tracker.watermark if self.cluster.holds_lease(self.document_id) else None

    # -- remote presence in the room's registry (called by the room's own task) ----------------
    def apply_remote_presence(
        self, awareness: AwarenessRegistry, entries: list[AwarenessEntry], origin: str, now: float
    ) -> list[AwarenessEntry]:
        """Hold `origin`'s clients' entries under pseudo-connections; return what to relay locally."""
        relayed = []
        for entry in entries:
            connection = remote_connection(origin, entry.client_id)
            owner = awareness.owner_of(entry.client_id)
            if owner is not None and owner != connection:
                continue  # one of our own clients (or another node's claim) holds that id
            accepted = awareness.apply(connection, [entry])
            relayed += accepted
            if entry.state == NULL_STATE:
                awareness.release(connection)
                self._forget(connection)
            elif accepted:
                self.remote_seen[connection] = now
                self.remote_clocks[connection] = accepted[-1].clock
        return relayed

    def take_over_presence(
        self, awareness: AwarenessRegistry, peer_id: int, entries: list[AwarenessEntry]
    ) -> None:
        """A client that moved here from another node (its node died) claims its id back at once.

        Only with a newer clock than the relayed entry, and only a connection without an id yet:
        y-websocket clients echo every awareness change they apply, including relayed ones, and
        an echo carries the clock we relayed."""
        if awareness.owned_by(peer_id):
            return
        for entry in entries:
            owner = awareness.owner_of(entry.client_id)
            if entry.state == NULL_STATE or not is_remote_connection(owner):
                continue
            if entry.clock > self.remote_clocks.get(owner, -1):
                awareness.release(owner)
                self._forget(owner)

    def _forget(self, connection: Hashable) -> None:
        self.remote_seen.pop(connection, None)
        self.remote_clocks.pop(connection, None)

    # -- driven by the cluster ------------------------------------------------------------------
    def deliver(self, record: Record, now: float) -> None:
        tracker = self.tracker
        if (
            isinstance(record, CommittedUpdates)
            and tracker
            and not tracker.fresh(record.first_seq, record.last_seq)
        ):
            return  # a duplicate: nothing to hand to the room
        self.receive(record)

    def resync(self) -> None:
        """The stream may have lost entries (Redis restarted, reader reconnected): read the log."""
        if self.tracker is None:
            self._resync_wanted = True
        else:
            self.catch_up()

    def tick(self, now: float) -> None:
        tracker = self.tracker
        if tracker is None:
            return
        polling = self.has_peers() and now - self._last_poll > SAFETY_POLL
        if polling or tracker.gap_age(now) > GAP_PATIENCE:
            self.catch_up()
        if tracker.watermark > self._compaction_checked_at and self.cluster.holds_lease(self.document_id):
            self._compaction_checked_at = tracker.watermark
            self.compact()
        expired = tuple(c for c, seen in self.remote_seen.items() if now - seen > PRESENCE_TTL)
        if expired:
            for connection in expired:
                self._forget(connection)
            self.receive(PresenceExpired(expired))

    def catch_up(self) -> None:
        if self._catching_up is None or self._catching_up.done():
            self._last_poll = self.cluster.clock()
            self._catching_up = asyncio.create_task(self._read_log(), name=f"catch-up:{self.document_id}")

    async def _read_log(self) -> None:
        tracker = self.tracker
        assert tracker is not None
        after = tracker.watermark
        try:
            while True:
                rows = await self.storage.read_updates(self.document_id, after_seq=after, limit=CATCH_UP_PAGE)
                if not rows:
                    return
                if rows[0].seq != after + 1:  # retention pruned what we lack: the snapshot covers it
                    snapshot = await self.storage.latest_snapshot(self.document_id)
                    if snapshot is not None and snapshot.seq > after:
                        self.receive(LogSnapshot(snapshot.seq, snapshot.data))
                    rows = [row for row in rows if snapshot is None or row.seq > snapshot.seq]
                    if not rows:
                        return
                if rows[-1].seq - rows[0].seq + 1 == len(rows):
                    self.receive(CommittedUpdates(rows[0].seq, tuple(r.data for r in rows), LOG_ORIGIN))
                else:  # never expected (the log has no holes); fall back to one record per row
                    for row in rows:
                        self.receive(CommittedUpdates(row.seq, (row.data,), LOG_ORIGIN))
                after = rows[-1].seq
                if len(rows) < CATCH_UP_PAGE:
                    return
        except StorageError as exc:
            log.warning("document %s: catch-up from the log failed: %s", self.document_id, exc)
