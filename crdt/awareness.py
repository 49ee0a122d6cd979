"""Awareness (presence) codec and a registry that binds client ids to the connection that claimed them.

An awareness update is `varUint(n)` then n times `varUint(clientID) varUint(clock) varString(json)`,
where the JSON text `null` means "this client is gone". The registry accepts only entries for client
ids the sender owns (first claim wins, released on close), caps their size, keeps the newest clock,
and re-encodes what it accepted, so a relayed update never carries bytes the server did not check.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from crdt.errors import DecodeError, MessageTooLarge
from crdt.lib0 import MAX_SAFE_INTEGER, Decoder, encode_var_string, encode_var_uint

NULL_STATE = "null"


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: str  # JSON text; "null" = removed


@dataclass(frozen=True, slots=True)
class AwarenessLimits:
    max_entries: int = 64
    max_state_bytes: int = 16 * 1024
    max_clients_per_connection: int = 1


def decode_awareness(payload: bytes, limits: AwarenessLimits | None = None) -> list[AwarenessEntry]:
    """Decode and check an awareness update; raises `DecodeError` on malformed or oversized input."""
    limits = limits or AwarenessLimits()
    decoder = Decoder(payload)
    count = decoder.read_var_uint()
    if count > limits.max_entries:
        raise MessageTooLarge(f"awareness update with {count} entries (cap {limits.max_entries})")
    entries = []
    for _ in range(count):
        client_id = decoder.read_var_uint()
        clock = decoder.read_var_uint()
        if client_id > MAX_SAFE_INTEGER or clock > MAX_SAFE_INTEGER:
            raise DecodeError("awareness client id or clock out of range")
        state = decoder.read_var_string(limits.max_state_bytes)
        if state != NULL_STATE:
            try:
                json.loads(state)
            except (ValueError, RecursionError) as exc:  # deep nesting exhausts the parser's stack
                raise DecodeError("awareness state is not JSON") from exc
        entries.append(AwarenessEntry(client_id, clock, state))
    if not decoder.at_end():
        raise DecodeError("trailing bytes after the awareness update")
    return entries


def encode_awareness(entries: Iterable[AwarenessEntry]) -> bytes:
    entries = list(entries)
    parts = [encode_var_uint(len(entries))]
    for entry in entries:
        parts.append(encode_var_uint(entry.client_id))
        parts.append(encode_var_uint(entry.clock))
        parts.append(encode_var_string(entry.state))
    return b"".join(parts)


class AwarenessRegistry:
    """The awareness states of one document, each bound to the connection (any hashable) that owns it.

    Rules, because y-websocket providers re-broadcast every awareness change they apply (including
    other clients' states and removals, so echoes of a client arrive from its peers' connections):
    - a connection owns the first client id it announces with a live state, and at most
      `max_clients_per_connection` ids (default 1: one document, one Yjs client); entries for any
      other id are relays or echoes and are ignored: the server is the source of truth for them;
    - a null state never claims an id;
    - the clock of an id only grows: a released id leaves a tombstone clock, and a client that
      re-announces after reconnecting with a clock at or below it is relayed with the tombstone
      clock + 1, so peers that saw the removal accept the re-announcement.
    """

    MAX_TOMBSTONES = 10_000

    def __init__(self, limits: AwarenessLimits | None = None) -> None:
        self.limits = limits or AwarenessLimits()
        self._states: dict[int, AwarenessEntry] = {}
        self._owner: dict[int, Hashable] = {}
        self._owned: dict[Hashable, set[int]] = {}
        self._tombstones: dict[int, int] = {}  # released client id -> clock of its removal

    def __len__(self) -> int:
        return sum(1 for e in self._states.values() if e.state != NULL_STATE)

    def owner_of(self, client_id: int) -> Hashable | None:
        return self._owner.get(client_id)

    def owned_by(self, connection: Hashable) -> frozenset[int]:
        return frozenset(self._owned.get(connection, ()))

    def owned_by_others(self, connection: Hashable) -> frozenset[int]:
        return frozenset(c for c, owner in self._owner.items() if owner != connection)

    def states(self) -> dict[int, str]:
        """Live states: client id -> JSON text."""
        return {c: e.state for c, e in self._states.items() if e.state != NULL_STATE}

    def apply(self, connection: Hashable, entries: Iterable[AwarenessEntry]) -> list[AwarenessEntry]:
        """Accept the entries `connection` may set; return what to relay (possibly with bumped clocks)."""
        accepted = []
        owned = self._owned.setdefault(connection, set())
        for entry in entries:
            client_id = entry.client_id
            owner = self._owner.get(client_id)
            if owner is None:
                if entry.state == NULL_STATE or len(owned) >= self.limits.max_clients_per_connection:
                    continue  # a removal of nobody's id, or a relay/echo of another client
                self._owner[client_id] = connection
                owned.add(client_id)
                removed_at = self._tombstones.pop(client_id, -1)
                if entry.clock <= removed_at:
                    entry = AwarenessEntry(client_id, removed_at + 1, entry.state)
            elif owner != connection:
                continue  # spoofing, or an echo of another connection's client
            current = self._states.get(client_id)
            if current is not None and entry.clock < current.clock:
                continue
            same_clock = current is not None and entry.clock == current.clock
            if same_clock and (current is None or entry.state == current.state or entry.state != NULL_STATE):
                continue  # y-protocols: an equal clock only counts as a removal
            self._states[client_id] = entry
            accepted.append(entry)
        return accepted

    def release(self, connection: Hashable) -> list[AwarenessEntry]:
        """Forget `connection`'s client ids; return removal entries to broadcast for the live ones."""
        removed = []
        for client_id in self._owned.pop(connection, set()):
            del self._owner[client_id]
            entry = self._states.pop(client_id, None)
            if entry is None:
                continue
            self._tombstones[client_id] = entry.clock + 1
            if len(self._tombstones) > self.MAX_TOMBSTONES:
                del self._tombstones[next(iter(self._tombstones))]
            if entry.state != NULL_STATE:
                removed.append(AwarenessEntry(client_id, entry.clock + 1, NULL_STATE))
        return removed

    def encode_all(self) -> bytes | None:
        """Every live state as one awareness update, or None when there is none."""
        live = [e for e in self._states.values() if e.state != NULL_STATE]
        return encode_awareness(live) if live else None
