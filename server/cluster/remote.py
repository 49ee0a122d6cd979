"""Applying what another node committed or announced to this node's copy of a room (cluster mode)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pycrdt import merge_updates

from crdt.awareness import AwarenessEntry, AwarenessRegistry, decode_awareness
from crdt.document import Document
from crdt.errors import ApplyFailed, DecodeError
from server.cluster.link import Inbound, LogSnapshot, PresenceExpired, RoomLink
from server.cluster.records import AwarenessQuery, AwarenessRelay, CommittedUpdates

log = logging.getLogger("cocreate.cluster")


@dataclass(slots=True)
class RemoteOutcome:
    """What the room relays to its own peers after a remote record, and whether its copy changed."""

    delta: bytes = b""  # new document content, to relay as a sync update
    presence: list[AwarenessEntry] = field(default_factory=list)  # awareness entries to relay
    applied_bytes: int = 0  # log bytes the document grew by (the committer's compaction policy)
    changed: bool = False  # the document was touched: cached clock states are out of date
    tainted: bool = False  # pycrdt failed half-way: the room must rebuild from the log


def apply_remote(
    link: RoomLink, document: Document, awareness: AwarenessRegistry, record: Inbound, name: str
) -> RemoteOutcome:
    """Apply one record from the cluster; nothing here is logged again (the other node committed it)."""
    tracker = link.tracker
    assert tracker is not None
    now = link.cluster.clock()
    try:
        match record:
            case CommittedUpdates(first_seq, updates, _):
                fresh = [updates[seq - first_seq] for seq in tracker.fresh(first_seq, record.last_seq)]
                if not fresh:
                    return RemoteOutcome()
                delta = document.apply(fresh[0] if len(fresh) == 1 else merge_updates(*fresh))
                tracker.mark(first_seq, record.last_seq, now)
                return RemoteOutcome(delta, applied_bytes=sum(map(len, fresh)), changed=True)
            case LogSnapshot(seq, data):
                delta = document.apply(data)
                tracker.advance_to(seq, now)
                return RemoteOutcome(delta, changed=True)
            case AwarenessRelay(payload, origin):
                entries = decode_awareness(payload, awareness.limits)
                return RemoteOutcome(presence=link.apply_remote_presence(awareness, entries, origin, now))
            case AwarenessQuery():
                link.answer_presence_query()
            case PresenceExpired(connections):
                return RemoteOutcome(presence=[entry for c in connections for entry in awareness.release(c)])
    except ApplyFailed:
        log.warning("room %r tainted by a failed remote apply; rebuilding it from the log", name)
        return RemoteOutcome(changed=True, tainted=True)
    except DecodeError as exc:
        log.warning("room %r: ignoring a malformed remote awareness update: %s", name, exc)
    return RemoteOutcome()
