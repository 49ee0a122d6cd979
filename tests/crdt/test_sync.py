"""The sync state machine, driven socket-free: two sessions joined by a fake link, each beside a document."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from crdt.document import Document
from crdt.errors import UnsupportedMessage
from crdt.messages import Ack, Refused, SyncStep2, SyncUpdate, encode_message
from crdt.sync import (
    Acknowledged,
    AwarenessQueried,
    Role,
    SyncRequested,
    SyncSession,
    UpdateReceived,
    UpdateRefused,
    WriteRefused,
)
from crdt.validation import UpdateLimits


class Replica:
    """A document and the session that syncs it; applies what its session surfaces."""

    def __init__(self, role: Role, **options: Any) -> None:
        self.document = Document()
        self.session = SyncSession(role, **options)
        self.refused: list[int] = []
        self.acked = 0

    def handle(self, frame: bytes) -> None:
        event = self.session.receive_data(frame)
        match event:
            case SyncRequested(state_vector):
                self.session.send_step2(self.document.diff(state_vector))
            case UpdateReceived(update, index, _):
                self.document.apply(update)
                if self.session.role is Role.SERVER:
                    self.session.acknowledge(index)
            case WriteRefused(index, reason, update) if update is not None:  # as the room decides
                if self.document.holds(update, UpdateLimits()):
                    self.session.acknowledge(index)
                else:
                    self.session.refuse(index, reason)
                    self.refused.append(index)
            case WriteRefused(index, _) | UpdateRefused(index, _):
                self.refused.append(index)
            case Acknowledged(count):
                self.acked = count


def pump(a: Replica, b: Replica) -> None:
    """Deliver queued frames both ways until both sides are quiet (the fake link)."""
    for _ in range(100):
        to_b, to_a = a.session.data_to_send(), b.session.data_to_send()
        if not to_a and not to_b:
            return
        for frame in to_b:
            b.handle(frame)
        for frame in to_a:
            a.handle(frame)
    raise AssertionError("link never went quiet")


def text_of(replica: Replica) -> str:
    return str(replica.document.doc.get("t", type=Text))


def connect(server: Replica, client: Replica) -> None:
    server.session.send_step1(server.document.state_vector())
    client.session.send_step1(client.document.state_vector())
    pump(server, client)


def local_edit(replica: Replica, text: str) -> None:
    doc = replica.document.doc
    before = doc.get_state()
    doc.get("t", type=Text).insert(0, text)
    replica.session.send_update(doc.get_update(before))


def test_handshake_exchanges_missing_state_both_ways() -> None:
    server = Replica(Role.SERVER, acks=True)
    client = Replica(Role.CLIENT, acks=True)
    server.document.doc.get("t", type=Text).insert(0, "server ")
    client.document.doc.get("t", type=Text).insert(0, "client ")
    connect(server, client)
    assert text_of(server) == text_of(client)
    assert client.session.synced
    assert client.session.updates_sent == 1  # the step 2 carrying the client's offline text
    assert client.acked == 1


def test_updates_are_acknowledged_cumulatively() -> None:
    server, client = Replica(Role.SERVER, acks=True), Replica(Role.CLIENT, acks=True)
    connect(server, client)
    for word in ("a", "b", "c"):
        local_edit(client, word)
    pump(server, client)
    assert text_of(server) == "cba"
    assert client.acked == client.session.updates_sent == 4


def test_acks_only_for_peers_that_asked() -> None:
    server = SyncSession(Role.SERVER)
    server.receive_data(encode_message(SyncUpdate(b"\x00\x00")))
    server.acknowledge(1)
    assert server.data_to_send() == []
    assert server.updates_final == 1


def test_read_only_session_refuses_writes_and_accepts_a_handshake_with_nothing_new() -> None:
    server = Replica(Role.SERVER, read_only=True, acks=True)
    client = Replica(Role.CLIENT, acks=True)
    connect(server, client)
    local_edit(client, "nope")
    pump(server, client)
    assert text_of(server) == ""
    assert server.refused == [2]  # the update; the empty handshake step 2 (1) is acknowledged
    assert client.refused == [2]
    assert client.acked == 2


def test_read_only_handshake_carrying_edits_is_refused() -> None:
    server = Replica(Role.SERVER, read_only=True, acks=True)
    client = Replica(Role.CLIENT, acks=True)
    local_edit(client, "made offline")
    connect(server, client)
    pump(server, client)
    assert text_of(server) == ""
    assert server.refused == client.refused == [1, 2]  # the edit, then the step 2 that carries it again


def test_refusal_becomes_final_only_after_earlier_messages() -> None:
    session = SyncSession(Role.SERVER, acks=True)
    for _ in range(3):
        session.receive_data(encode_message(SyncUpdate(b"\x00\x00")))
    session.refuse(2, "bad")
    assert session.updates_final == 0
    session.acknowledge(1)
    assert session.updates_final == 2
    session.acknowledge(3)
    assert session.data_to_send() == [
        encode_message(Refused(2, "bad")),
        encode_message(Ack(2)),
        encode_message(Ack(3)),
    ]


def test_server_does_not_accept_server_only_messages() -> None:
    session = SyncSession(Role.SERVER)
    with pytest.raises(UnsupportedMessage):
        session.receive_data(encode_message(Ack(1)))


def test_query_awareness_surfaces() -> None:
    assert isinstance(SyncSession(Role.SERVER).receive_data(b"\x03"), AwarenessQueried)


def test_client_marks_synced_on_first_step2() -> None:
    session = SyncSession(Role.CLIENT)
    assert not session.synced
    session.receive_data(encode_message(SyncStep2(b"\x00\x00")))
    assert session.synced


edits = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["text", "map"]), st.text("abcé😀", min_size=1, max_size=4)),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(edits)
def test_three_clients_through_one_server_converge(script: list[tuple[int, str, str]]) -> None:
    server = Replica(Role.SERVER, acks=True)
    clients = [Replica(Role.CLIENT, acks=True) for _ in range(3)]
    for client in clients:
        connect(server, client)
    for who, kind, value in script:
        doc: Doc[Any] = clients[who].document.doc
        before = doc.get_state()
        if kind == "text":
            text = doc.get("t", type=Text)
            text.insert(len(text), value)
        else:
            doc.get("m", type=Map)[value] = who
        clients[who].session.send_update(doc.get_update(before))
        if who == 0:  # client 0 delivers at once; the others batch until the end
            pump(server, clients[0])
    for client in clients:
        pump(server, client)
    for client in clients:  # a resync, as on reconnect, brings each client what others sent
        connect(server, client)
    server_map = server.document.doc.get("m", type=Map).to_py()
    for client in clients:
        assert text_of(client) == text_of(server)
        assert client.document.doc.get("m", type=Map).to_py() == server_map
        assert client.document.clock_state() == server.document.clock_state()
