"""The room's gate for incoming updates: bounded validation, and which client ids a connection may write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crdt.awareness import AwarenessRegistry
from crdt.errors import InvalidUpdate
from crdt.validation import UpdateLimits, UpdateSummary, validate_update
from server.cluster.link import is_remote_connection
from server.offload import validate_large_update


class WriteGate:
    """Validates each update against the document's clock state before pycrdt sees it, refusing
    structs for client ids another live connection has claimed: through its awareness announcement,
    or by having written them first since the room was loaded. Large updates are validated ahead, in
    a worker process (`prevalidate`), so that other rooms keep being served meanwhile."""

    def __init__(self, awareness: AwarenessRegistry, limits: UpdateLimits) -> None:
        self.awareness = awareness
        self.limits = limits
        self._writers: dict[int, int] = {}  # client id -> peer that wrote it first since loading
        self._prevalidated: dict[tuple[int, int], UpdateSummary | InvalidUpdate] = {}

    async def prevalidate(self, peer_id: int, index: int, update: bytes, known: dict[int, int]) -> None:
        others = _ForeignClients(self.awareness, peer_id, self._writers)
        foreign = frozenset(c for c in {*known, *self._writers} if c in others)
        outcome: UpdateSummary | InvalidUpdate
        try:
            owned = self.awareness.owned_by(peer_id)
            outcome = await validate_large_update(update, known, owned, foreign, self.limits)
        except InvalidUpdate as exc:
            outcome = exc
        self._prevalidated[(peer_id, index)] = outcome

    def validate(self, peer_id: int, index: int, update: bytes, known: Mapping[int, int]) -> UpdateSummary:
        """The update's summary, or InvalidUpdate / UpdateAhead; uses the worker's verdict if there is one."""
        outcome = self._prevalidated.pop((peer_id, index), None)
        if isinstance(outcome, InvalidUpdate):
            raise outcome
        if outcome is not None:
            return outcome
        return validate_update(
            update,
            known_state=known,
            owned_clients=self.awareness.owned_by(peer_id),
            foreign_owned=_ForeignClients(self.awareness, peer_id, self._writers),
            limits=self.limits,
        )

    def claim(self, peer_id: int, clients: Iterable[int]) -> None:
        """`peer_id` wrote these ids' newest structs: the first writer of an id owns it while connected."""
        for client in clients:
            self._writers.setdefault(client, peer_id)

    def release(self, peer_id: int) -> None:
        for client in [c for c, writer in self._writers.items() if writer == peer_id]:
            del self._writers[client]


class _ForeignClients:
    """Client ids whose future `peer_id` may not write (for the validator): those claimed by another
    live connection. An id whose client is offline is unclaimed (docs/PROTOCOL.md, "Limits")."""

    __slots__ = ("_awareness", "_peer_id", "_writers")

    def __init__(self, awareness: AwarenessRegistry, peer_id: int, writers: dict[int, int]) -> None:
        self._awareness = awareness
        self._peer_id = peer_id
        self._writers = writers

    def __contains__(self, client_id: object) -> bool:
        if not isinstance(client_id, int):
            return False
        owner = self._awareness.owner_of(client_id)
        if owner is None or is_remote_connection(owner):  # presence relayed from another node claims nothing
            owner = self._writers.get(client_id)
        return owner is not None and owner != self._peer_id
