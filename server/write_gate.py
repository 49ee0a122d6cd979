"""The room's gate for incoming updates: bounded validation, and which client ids a connection may write."""

from __future__ import annotations

import logging
from collections.abc import Container, Iterable, Mapping

from crdt.awareness import AwarenessRegistry
from crdt.chunks import Split
from crdt.errors import InvalidUpdate
from crdt.strip import strip_clients
from crdt.validation import UpdateLimits, UpdateSummary, validate_update
from server.cluster.link import is_remote_connection
from server.offload import strip_large_update, validate_large_update

log = logging.getLogger("cocreate.room")


class WriteGate:
    """Validates each update against the document's clock state before pycrdt sees it, refusing
    structs for client ids another live connection has claimed: through its awareness announcement,
    or by having written them first since the room was loaded. Large updates are validated ahead, in
    a worker process (`prevalidate`), so that other rooms keep being served meanwhile; the worker also
    says where to cut them, so the room can apply them piece by piece (`take_split`).

    With `user_claims` (token mode), `claims` maps client ids to the user who claimed them through
    awareness (persisted by the room, first claim wins): an update's structs of an id another user
    claimed are removed when they go beyond the known clock (`admit`), never refused, so an honest
    relay of someone else's edits is never closed; the owner sends those edits itself."""

    def __init__(
        self, awareness: AwarenessRegistry, limits: UpdateLimits, user_claims: bool = False, name: str = ""
    ) -> None:
        self.awareness = awareness
        self.limits = limits
        self.user_claims = user_claims
        self.name = name
        self.claims: dict[int, str] = {}  # client id -> user who claimed it (token mode)
        self.stripped_sections = 0  # struct sections removed by `admit` (a limit counter)
        self._writers: dict[int, int] = {}  # client id -> peer that wrote it first since loading
        self._prevalidated: dict[tuple[int, int], UpdateSummary | InvalidUpdate] = {}
        self._prestripped: dict[tuple[int, int], tuple[bytes, frozenset[int]]] = {}
        self._splits: dict[tuple[int, int], Split] = {}  # where to cut prevalidated updates
        self._noted: set[tuple[int, int]] = set()  # (peer, client id) whose structs were removed

    async def prevalidate(
        self, peer_id: int, index: int, update: bytes, known: dict[int, int], user: str | None = None
    ) -> None:
        others = _ForeignClients(self.awareness, peer_id, self._writers)
        foreign = frozenset(c for c in {*known, *self._writers} if c in others)
        outcome: UpdateSummary | InvalidUpdate
        owned = self.awareness.owned_by(peer_id)
        if user is not None and self.user_claims:
            owned = owned.union(self.claims)
        try:
            outcome, split = await validate_large_update(update, known, owned, foreign, self.limits)
            taken = self._taken(outcome, known, user) if user is not None else frozenset()
            if taken:  # filtered in the worker too: `admit` then only takes the result
                stripped, outcome, split = await strip_large_update(
                    update, taken, known, owned, foreign, self.limits
                )
                self._prestripped[(peer_id, index)] = (stripped, taken)
            if len(split) > 1:  # else it is applied in one call, like any update
                self._splits[(peer_id, index)] = split
        except InvalidUpdate as exc:
            outcome = exc
        self._prevalidated[(peer_id, index)] = outcome

    def is_split(self, peer_id: int, index: int) -> bool:
        """Whether a prevalidated update comes with pieces to apply one by one (`take_split`)."""
        return (peer_id, index) in self._splits

    def take_split(self, peer_id: int, index: int) -> Split | None:
        """Where to cut the update `admit` returned for (peer_id, index), if it was prevalidated;
        call it after `admit` (the cuts are those of the stripped update when structs were removed)."""
        return self._splits.pop((peer_id, index), None)

    def validate(
        self, peer_id: int, index: int, update: bytes, known: Mapping[int, int], user: str | None = None
    ) -> UpdateSummary:
        """The update's summary, or InvalidUpdate / UpdateAhead; uses the worker's verdict if there is one.
        Runs of ids claimed by any user (`user` given, token mode) are bounded by `admit` instead."""
        outcome = self._prevalidated.pop((peer_id, index), None)
        if isinstance(outcome, InvalidUpdate):
            raise outcome
        if outcome is not None:
            return outcome
        return validate_update(
            update,
            known_state=known,
            owned_clients=self._owned(peer_id, user),
            foreign_owned=_ForeignClients(self.awareness, peer_id, self._writers),
            limits=self.limits,
        )

    def admit(
        self, peer_id: int, user: str, index: int, update: bytes, known: Mapping[int, int]
    ) -> tuple[bytes, UpdateSummary]:
        """Validate, then remove the structs of ids another user claimed past the known clock:
        returns the update to apply (the same bytes when nothing was removed) and its summary."""
        prestripped = self._prestripped.pop((peer_id, index), None)
        summary = self.validate(peer_id, index, update, known, user if self.user_claims else None)
        if prestripped is not None:  # filtered by the worker (a large update)
            update, taken = prestripped
        else:
            taken = self._taken(summary, known, user)
            if not taken:
                return update, summary
            update = strip_clients(update, taken, known, self.limits)
            summary = validate_update(
                update,
                known_state=known,
                owned_clients=self._owned(peer_id, user),
                foreign_owned=_ForeignClients(self.awareness, peer_id, self._writers),
                limits=self.limits,
            )
        self.stripped_sections += len(taken)
        for client in taken:
            if (peer_id, client) not in self._noted:
                self._noted.add((peer_id, client))
                log.info(
                    "room %r: peer %d (%s): left out structs of client %d, claimed by user %r",
                    self.name,
                    peer_id,
                    user,
                    client,
                    self.claims.get(client),
                )
        return update, summary

    def _taken(self, summary: UpdateSummary, known: Mapping[int, int], user: str) -> frozenset[int]:
        """Ids of the update's runs that go past the known clock and that another user claimed."""
        claims = self.claims
        if not self.user_claims or not claims:
            return frozenset()
        return frozenset(
            client
            for client, (_, end) in summary.clients.items()
            if end > known.get(client, 0) and claims.get(client, user) != user
        )

    def _owned(self, peer_id: int, user: str | None) -> Container[int]:
        """Ids whose runs only R0 bounds: the connection's awareness id and, in token mode, every
        claimed id (those of its user are its own; those of others are stripped by `admit`)."""
        owned = self.awareness.owned_by(peer_id)
        if user is None or not self.claims:
            return owned
        return _Either(owned, self.claims)

    def claim(self, peer_id: int, clients: Iterable[int]) -> None:
        """`peer_id` wrote these ids' newest structs: the first writer of an id owns it while connected."""
        for client in clients:
            self._writers.setdefault(client, peer_id)

    def writer_of(self, client: int) -> int | None:
        """The connection that first wrote `client`'s structs since the room was loaded, if connected."""
        return self._writers.get(client)

    def release(self, peer_id: int) -> None:
        for client in [c for c, writer in self._writers.items() if writer == peer_id]:
            del self._writers[client]
        self._noted = {noted for noted in self._noted if noted[0] != peer_id}
        for pending in (
            self._prevalidated,
            self._prestripped,
            self._splits,
        ):  # verdicts of updates never handled
            for key in [key for key in pending if key[0] == peer_id]:
                del pending[key]


class _Either:
    """Membership in either of two containers, without building their union per update."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: Container[int], second: Container[int]) -> None:
        self._first = first
        self._second = second

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._first or client_id in self._second


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
