"""Hocuspocus codec and session: bytes captured from @hocuspocus/provider 4.8.0, round trips, garbage,
caps, and one SyncStatus per update-carrying message, in order, only once final."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt.document import Document
from crdt.errors import DecodeError, MessageTooLarge, UnsupportedMessage
from crdt.hocuspocus import (
    Authenticated,
    Close,
    DocumentMessage,
    Envelope,
    Frame,
    HocuspocusLimits,
    HocuspocusSession,
    PermissionDenied,
    Ping,
    Pong,
    Sender,
    Stateless,
    SyncStatus,
    Token,
    TokenRequest,
    allowed_from,
    claims_cocreate,
    decode_frame,
    encode_frame,
    event_payload,
)
from crdt.messages import (
    Ack,
    AuthDenied,
    AwarenessMessage,
    DocumentEvent,
    Epoch,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
)
from crdt.sync import READ_ONLY_REASON, AwarenessReceived, SyncRequested, UpdateReceived, WriteRefused
from crdt.validation import UpdateLimits

# What a HocuspocusProvider 4.8.0 (document "team/a", token "tok", client id 7) wrote on its socket.
PROVIDER_FRAMES = [
    ("067465616d2f61020003746f6b05342e382e30", Token("tok", "4.8.0")),
    ("067465616d2f6100000100", SyncStep1(b"\x00")),
    ("067465616d2f610106010700027b7d", AwarenessMessage(bytes.fromhex("010700027b7d"))),
    ("067465616d2f6100020c010107000401017402686900", SyncUpdate(bytes.fromhex("010107000401017402686900"))),
    ("067465616d2f61050568656c6c6f", Stateless("hello")),
    ("067465616d2f6107", Close()),
]


@pytest.mark.parametrize(("hex_frame", "message"), PROVIDER_FRAMES)
def test_decodes_what_the_real_provider_sends(hex_frame: str, message: DocumentMessage) -> None:
    frame = bytes.fromhex(hex_frame)
    assert decode_frame(frame, Sender.CLIENT) == Envelope("team/a", message)
    assert encode_frame(Envelope("team/a", message)) == frame


@pytest.mark.parametrize(
    ("message", "body"),
    [
        (Authenticated("read-write"), "0202" + "0a" + b"read-write".hex()),
        (Authenticated("readonly"), "0202" + "08" + b"readonly".hex()),
        (PermissionDenied("no"), "0201026e6f"),
        (TokenRequest(), "0200"),
        (SyncStatus(True), "0801"),
        (SyncStatus(False), "0800"),
        (Close("bye"), "0703627965"),
    ],
)
def test_server_messages_have_the_reference_server_bytes(message: DocumentMessage, body: str) -> None:
    frame = encode_frame(Envelope("d", message))
    assert frame.hex() == "0164" + body
    assert decode_frame(frame, Sender.SERVER) == Envelope("d", message)


def test_ping_and_pong_are_one_byte_without_an_address() -> None:
    assert encode_frame(Ping()) == b"\x09"
    assert encode_frame(Pong()) == b"\x0a"
    assert decode_frame(b"\x0a", Sender.CLIENT) == Pong()
    assert decode_frame(b"\x09", Sender.SERVER) == Ping()
    with pytest.raises(UnsupportedMessage):
        decode_frame(b"\x09", Sender.CLIENT)


addresses = st.text(max_size=30)
small = st.binary(max_size=100)
texts = st.text(max_size=40)
any_message: st.SearchStrategy[DocumentMessage] = st.one_of(
    st.builds(SyncStep1, small),
    st.builds(SyncStep2, small),
    st.builds(SyncUpdate, small),
    st.builds(AwarenessMessage, small),
    st.just(QueryAwareness()),
    st.builds(Token, texts, st.none() | st.text(max_size=16)),  # a version is capped at 64 bytes
    st.just(TokenRequest()),
    st.builds(Authenticated, texts),
    st.builds(PermissionDenied, texts),
    st.builds(Stateless, texts),
    st.builds(Close, st.none() | texts),
    st.builds(SyncStatus, st.booleans()),
)


@given(addresses, any_message, st.sampled_from(Sender))
def test_round_trip(address: str, message: DocumentMessage, sender: Sender) -> None:
    frame = encode_frame(Envelope(address, message))
    if allowed_from(sender, message):
        assert decode_frame(frame, sender) == Envelope(address, message)
    else:
        with pytest.raises(DecodeError):
            decode_frame(frame, sender)


@settings(max_examples=1000)
@given(st.binary(max_size=64), st.sampled_from(Sender))
def test_arbitrary_bytes_decode_or_raise_a_decode_error(data: bytes, sender: Sender) -> None:
    try:
        frame = decode_frame(data, sender)
    except DecodeError:
        return
    assert isinstance(frame, Envelope | Ping | Pong)


@settings(max_examples=500)
@given(addresses, any_message, st.integers(0, 60), st.binary(min_size=1, max_size=3))
def test_mutated_frames_decode_or_raise_a_decode_error(
    address: str, message: DocumentMessage, position: int, junk: bytes
) -> None:
    frame = encode_frame(Envelope(address, message))
    cut = min(position, len(frame))
    for mutated in (frame[:cut], frame[:cut] + junk + frame[cut:], frame + junk):
        for sender in Sender:
            try:
                decoded: Frame = decode_frame(mutated, sender)
            except DecodeError:
                continue
            assert isinstance(decoded, Envelope | Ping | Pong)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"\x01d\x04", UnsupportedMessage),  # SyncReply: server to server only
        (b"\x01d\x06\x00", UnsupportedMessage),  # BroadcastStateless: server to server only
        (b"\x01d\x08\x01", UnsupportedMessage),  # SyncStatus from a client
        (b"\x01d\x02\x02\x00", UnsupportedMessage),  # Authenticated from a client
        (b"\x01d\x00\x07\x00", UnsupportedMessage),  # unknown sync sub-type
        (b"\x01d\x07\x01", DecodeError),  # close reason runs past the end
        (b"\x01d\x05\x01x!", DecodeError),  # trailing bytes
        (b"\x02\xff\xfe\x00\x00\x00", DecodeError),  # address is not UTF-8
        (b"\x01d\x00\x02" + b"\xff" * 11, DecodeError),  # varint longer than 10 bytes
    ],
)
def test_refusals(frame: bytes, error: type[DecodeError]) -> None:
    with pytest.raises(error):
        decode_frame(frame, Sender.CLIENT)


def test_caps_raise_message_too_large() -> None:
    limits = HocuspocusLimits(
        max_address_bytes=8, max_token_bytes=4, max_stateless_bytes=4, max_payload_bytes=4
    )
    too_big = [
        Envelope("123456789", Close()),
        Envelope("d", Token("12345")),
        Envelope("d", Stateless("12345")),
        Envelope("d", SyncUpdate(b"12345")),
        Envelope("d", AwarenessMessage(b"12345")),
    ]
    for envelope in too_big:
        with pytest.raises(MessageTooLarge):
            decode_frame(encode_frame(envelope), Sender.CLIENT, limits)
    assert decode_frame(encode_frame(Envelope("12345678", Token("1234"))), Sender.CLIENT, limits)


def test_long_reasons_are_clipped_on_a_character_boundary() -> None:
    frame = encode_frame(Envelope("d", PermissionDenied("é" * 5000)))
    decoded = decode_frame(frame, Sender.SERVER)
    assert isinstance(decoded, Envelope) and isinstance(decoded.message, PermissionDenied)
    assert 0 < len(decoded.message.reason.encode()) <= 4096


# -- session -------------------------------------------------------------------------------------
def statuses(session: HocuspocusSession) -> list[bool]:
    out = []
    for frame in session.data_to_send():
        decoded = decode_frame(frame, Sender.SERVER)
        assert isinstance(decoded, Envelope) and decoded.address == session.address
        assert isinstance(decoded.message, SyncStatus)
        out.append(decoded.message.applied)
    return out


def test_session_surfaces_sync_events_and_opens_no_sync() -> None:
    session = HocuspocusSession("doc")
    assert session.opens_sync is False and session.acks is False
    assert session.receive_message(SyncStep1(b"\x00")) == SyncRequested(b"\x00")
    assert session.receive_message(SyncStep2(b"u")) == UpdateReceived(b"u", 1, True)
    assert session.receive_message(SyncUpdate(b"v")) == UpdateReceived(b"v", 2, False)
    assert session.receive_message(AwarenessMessage(b"a")) == AwarenessReceived(b"a")
    with pytest.raises(UnsupportedMessage):
        session.receive_message(Stateless("x"))
    assert session.data_to_send() == []


def test_statuses_come_in_order_and_only_when_final() -> None:
    session = HocuspocusSession("doc")
    for update in (b"1", b"2", b"3", b"4"):
        session.receive_message(SyncUpdate(update))
    session.refuse(2, "ahead")  # 1 is not final yet: nothing may be said about 2
    assert statuses(session) == []
    session.acknowledge(1)  # committed: 1 applied, then 2 refused
    assert statuses(session) == [True, False]
    session.acknowledge(3)
    assert statuses(session) == [True]
    session.acknowledge(3)  # twice: nothing more
    session.refuse(3, "late")  # already final: ignored
    assert statuses(session) == []
    session.refuse(4, "invalid")
    assert statuses(session) == [False]


@given(st.lists(st.booleans(), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_one_status_per_message_in_order(refused_now: list[bool], rnd: random.Random) -> None:
    """The room's pattern: a message is refused when it arrives, or committed later, in order."""
    session = HocuspocusSession("doc")
    pending: list[int] = []
    seen: list[bool] = []
    for flag in refused_now:
        session.receive_message(SyncUpdate(b"x"))
        index = session.updates_received
        if flag:
            session.refuse(index, "no")
        else:
            pending.append(index)
        if pending and rnd.random() < 0.5:  # a commit finished: everything submitted so far
            session.acknowledge(pending[-1])
            pending.clear()
        seen += statuses(session)
        assert len(seen) <= index
    if pending:
        session.acknowledge(pending[-1])
    seen += statuses(session)
    assert seen == [not flag for flag in refused_now]


def test_read_only_refuses_updates_and_defers_step2() -> None:
    session = HocuspocusSession("doc", read_only=True)
    assert session.receive_message(SyncUpdate(b"u")) == WriteRefused(1, READ_ONLY_REASON)
    assert statuses(session) == [False]
    assert session.receive_message(SyncStep2(b"s")) == WriteRefused(2, READ_ONLY_REASON, b"s")
    assert statuses(session) == []  # the room decides
    session.acknowledge(2)
    assert statuses(session) == [True]


def test_send_maps_room_messages_events_to_stateless_and_drops_other_extensions() -> None:
    session = HocuspocusSession("a\x00s1")
    session.send(SyncStep1(b"\x00"))
    session.send_step2(b"\x00\x00")
    session.send(AuthDenied("nope"))
    session.send(Ack(3))
    session.send(Epoch("e"))
    session.send(DocumentEvent("comment.created", '{"id":"c1","body":"h\\u00e9"}'))
    frames = [decode_frame(frame, Sender.SERVER) for frame in session.data_to_send()]
    assert frames == [
        Envelope("a\x00s1", SyncStep1(b"\x00")),
        Envelope("a\x00s1", SyncStep2(b"\x00\x00")),
        Envelope("a\x00s1", PermissionDenied("nope")),
        Envelope(
            "a\x00s1",
            Stateless('{"cocreate":"event","kind":"comment.created","data":{"id":"c1","body":"h\\u00e9"}}'),
        ),
    ]
    last = frames[-1]
    assert isinstance(last, Envelope) and isinstance(last.message, Stateless)
    assert json.loads(last.message.payload) == {
        "cocreate": "event",
        "kind": "comment.created",
        "data": {"id": "c1", "body": "h\u00e9"},
    }


def test_event_payload_is_json_for_any_kind() -> None:
    payload = event_payload('odd "kind"\n', "[1,2]")
    assert json.loads(payload) == {"cocreate": "event", "kind": 'odd "kind"\n', "data": [1, 2]}
    assert claims_cocreate(payload)


@pytest.mark.parametrize(
    ("payload", "claims"),
    [
        ('{"cocreate":1}', True),
        ('{ "cocreate" :"x"}', True),
        ('["cocreate"]', False),
        ('"cocreate"', False),
        ('{"cocreate', False),
        ('{"a":{"cocreate":1}}', False),
        ("hello", False),
    ],
)
def test_claims_cocreate(payload: str, claims: bool) -> None:
    assert claims_cocreate(payload) is claims


# -- Document.holds (the read-only step 2 check) -------------------------------------------------
def test_holds_only_what_changes_nothing() -> None:
    source: Doc[Any] = Doc()
    text = source.get("t", type=Text)
    text += "hello world"
    server = Document()
    server.apply(source.get_update())
    limits = UpdateLimits()
    assert server.holds(source.get_update(), limits)
    assert server.holds(b"\x00\x00", limits)
    before = source.get_state()
    del text[0:3]  # a deletion the server has not made
    assert not server.holds(source.get_update(), limits)
    server.apply(source.get_update(before))
    assert server.holds(source.get_update(), limits)
    text += "!"  # a struct the server lacks
    assert not server.holds(source.get_update(), limits)
    assert not server.holds(b"\x01\x01", limits)  # malformed: not held
