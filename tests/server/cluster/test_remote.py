"""Applying other nodes' records to a local copy: each log row once, failures taint, presence relayed."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Text

from crdt.awareness import AwarenessEntry, AwarenessRegistry, encode_awareness
from crdt.document import Document
from persistence.memory import MemoryStorage
from server.cluster.link import RoomLink
from server.cluster.records import AwarenessRelay, CommittedUpdates
from server.cluster.remote import apply_remote
from tests.server.cluster.test_room_link import FakeCluster, remote_edits


def linked() -> tuple[RoomLink, Document, AwarenessRegistry]:
    cluster: Any = FakeCluster()
    link = RoomLink(cluster, "doc-id", MemoryStorage(), lambda _: None, lambda: True, lambda: None)
    link.loaded(0)
    return link, Document(), AwarenessRegistry()


def test_rows_are_applied_once_and_what_is_new_is_relayed() -> None:
    link, document, awareness = linked()
    edits = remote_edits(3)
    first = apply_remote(link, document, awareness, CommittedUpdates(1, tuple(edits[:2]), "there"), "doc")
    assert first.changed and first.delta and first.applied_bytes == len(edits[0]) + len(edits[1])
    again = apply_remote(link, document, awareness, CommittedUpdates(1, tuple(edits), "there"), "doc")
    assert again.applied_bytes == len(edits[2])  # rows 1-2 were applied already: only row 3 is new
    replica: Doc[Any] = Doc()
    replica.apply_update(first.delta)
    replica.apply_update(again.delta)
    assert str(replica.get("t", type=Text)) == str(document.doc.get("t", type=Text)) == "012"
    repeat = apply_remote(link, document, awareness, CommittedUpdates(2, tuple(edits[1:]), "there"), "doc")
    assert not repeat.changed and not repeat.delta


def test_a_row_pycrdt_cannot_apply_taints_the_room() -> None:
    link, document, awareness = linked()
    broken = bytes.fromhex("010207002801016d016b017d0108000700017d0200")  # sets m["k"], then fails
    outcome = apply_remote(link, document, awareness, CommittedUpdates(1, (broken,), "there"), "doc")
    assert outcome.tainted


def test_remote_presence_is_relayed_and_malformed_presence_ignored() -> None:
    link, document, awareness = linked()
    entry = AwarenessEntry(31, 1, '{"user":{"name":"Ada"}}')
    record = AwarenessRelay(encode_awareness([entry]), "there")
    relayed = apply_remote(link, document, awareness, record, "doc")
    assert relayed.presence == [entry] and not relayed.changed
    assert awareness.owner_of(31) is not None
    garbage = apply_remote(link, document, awareness, AwarenessRelay(b"\xff\xff", "there"), "doc")
    assert garbage.presence == [] and not garbage.tainted
