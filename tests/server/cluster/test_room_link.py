"""A room in cluster mode, in-process, with a fake cluster: what it applies, relays, publishes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pycrdt import Doc, Text

from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness
from crdt.messages import AwarenessMessage, SyncUpdate, encode_message
from crdt.sync import AwarenessReceived
from persistence.base import NewUpdate
from persistence.memory import MemoryStorage
from server.cluster.link import GAP_PATIENCE, RoomLink
from server.cluster.records import AwarenessRelay, CommittedUpdates, Record
from server.room import Room
from server.settings import Settings
from tests.server.fakes import FakePeer


class FakeCluster:
    node_id = "here"

    def __init__(self) -> None:
        self.now = 100.0
        self.published: list[Record] = []
        self.links: dict[str, RoomLink] = {}
        self.attached = asyncio.Event()

    def clock(self) -> float:
        return self.now

    def publish(self, document_id: str | None, record: Record) -> None:
        self.published.append(record)

    def holds_lease(self, document_id: str) -> bool:
        return True

    async def attach(self, document_id: str, link: RoomLink) -> None:
        self.links[document_id] = link
        self.attached.set()

    def detach(self, document_id: str, link: RoomLink) -> None:
        self.links.pop(document_id, None)

    def link(self) -> RoomLink:
        return next(iter(self.links.values()))


async def start(storage: MemoryStorage) -> tuple[Room, asyncio.Task[None], FakeCluster]:
    room = Room("doc", storage, Settings(), time.time)
    cluster = FakeCluster()
    room.cluster = cluster  # type: ignore[assignment]
    task = asyncio.create_task(room.run())
    await asyncio.wait_for(cluster.attached.wait(), 5)
    return room, task, cluster


def remote_edits(count: int) -> list[bytes]:
    doc: Doc[Any] = Doc(client_id=777)
    text = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for index in range(count):
        text.insert(len(text), str(index))
    return updates


def text_received(peer: FakePeer) -> str:
    doc: Doc[Any] = Doc()
    for message in peer.received:
        if isinstance(message, SyncUpdate):
            doc.apply_update(message.update)
    return str(doc.get("t", type=Text))


async def test_remote_commits_reach_local_peers_in_order_and_a_hole_is_filled_from_the_log() -> None:
    storage = MemoryStorage()
    room, task, cluster = await start(storage)
    peer = FakePeer()
    room.join(peer)
    updates = remote_edits(4)
    record = await storage.get_document("doc")
    assert record is not None
    for update in updates:  # another node committed rows 1..4
        await storage.append_updates(record.id, [NewUpdate(update, "other", 0.0)])
    link = cluster.link()
    await peer.wait_for(lambda: link.tracker is not None)
    link.deliver(CommittedUpdates(1, (updates[0],), "there"), cluster.now)
    link.deliver(CommittedUpdates(3, tuple(updates[2:]), "there"), cluster.now)  # row 2 was lost
    link.deliver(CommittedUpdates(1, (updates[0],), "there"), cluster.now)  # a duplicate
    await peer.wait_for(lambda: text_received(peer) == "0")  # 2..3 wait for row 2 (pending structs)
    assert link.tracker is not None
    await peer.wait_for(lambda: link.tracker is not None and link.tracker.highest == 4)
    cluster.now += GAP_PATIENCE + 0.1
    link.tick(cluster.now)
    await peer.wait_for(lambda: text_received(peer) == "0123")
    assert link.tracker.watermark == 4
    assert (await storage.get_document("doc")).last_seq == 4  # type: ignore[union-attr]  # nothing re-logged
    room.leave(peer)
    await asyncio.wait_for(task, 5)


async def test_local_commits_and_presence_are_published_and_removals_on_close() -> None:
    storage = MemoryStorage()
    room, task, cluster = await start(storage)
    peer = FakePeer()
    room.join(peer)
    doc: Doc[Any] = Doc()
    sent: list[bytes] = []
    doc.observe(lambda event: sent.append(event.update))
    doc.get("t", type=Text).insert(0, "hi")
    event = peer.session.receive_data(encode_message(SyncUpdate(sent[0])))
    room.submit(peer, event, len(sent[0]))
    announce(room, peer, [AwarenessEntry(doc.client_id, 1, '{"name":"ann"}')])
    await peer.wait_for(lambda: any(isinstance(r, CommittedUpdates) for r in cluster.published))
    committed = next(r for r in cluster.published if isinstance(r, CommittedUpdates))
    assert committed == CommittedUpdates(1, (sent[0],), "here")
    relays = [decode_awareness(r.payload) for r in cluster.published if isinstance(r, AwarenessRelay)]
    assert relays == [[AwarenessEntry(doc.client_id, 1, '{"name":"ann"}')]]
    room.leave(peer)
    await asyncio.wait_for(task, 5)
    relays = [decode_awareness(r.payload) for r in cluster.published if isinstance(r, AwarenessRelay)]
    assert relays[-1] == [AwarenessEntry(doc.client_id, 2, "null")]


def announce(room: Room, peer: FakePeer, entries: list[AwarenessEntry]) -> None:
    event = peer.session.receive_data(encode_message(AwarenessMessage(encode_awareness(entries))))
    assert isinstance(event, AwarenessReceived)
    room.submit(peer, event, 10)


async def test_an_echo_of_remote_presence_does_not_steal_it_but_a_moved_client_reclaims_its_id() -> None:
    storage = MemoryStorage()
    room, task, cluster = await start(storage)
    echoer, mover = FakePeer(), FakePeer()
    room.join(echoer)
    room.join(mover)
    link = cluster.link()
    await echoer.wait_for(lambda: link.tracker is not None)
    remote = AwarenessEntry(555, 4, '{"name":"far"}')
    link.deliver(AwarenessRelay(encode_awareness([remote]), "there"), cluster.now)
    await echoer.wait_for(lambda: room.awareness.states().get(555) == '{"name":"far"}')
    announce(room, echoer, [remote])  # a y-websocket client re-broadcasting what it applied
    announce(room, echoer, [AwarenessEntry(1, 1, '{"name":"echoer"}')])
    await echoer.wait_for(lambda: room.awareness.states().get(1) == '{"name":"echoer"}')
    assert room.awareness.owner_of(555) == ("remote", "there", 555)
    announce(room, mover, [AwarenessEntry(555, 5, '{"name":"moved"}')])  # its node died; it came here
    await mover.wait_for(lambda: room.awareness.owner_of(555) == mover.id)
    assert room.awareness.states()[555] == '{"name":"moved"}'
    room.leave(echoer)
    room.leave(mover)
    await asyncio.wait_for(task, 5)
