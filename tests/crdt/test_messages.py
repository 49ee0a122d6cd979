"""y-websocket message codec: round trips, exact bytes, and one error class for garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt.errors import DecodeError, MessageTooLarge, UnsupportedMessage
from crdt.lib0 import encode_var_uint
from crdt.messages import (
    Ack,
    AuthDenied,
    AwarenessMessage,
    Epoch,
    Message,
    QueryAwareness,
    Refused,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_message,
    encode_message,
)

small_bytes = st.binary(max_size=200)
reasons = st.text(max_size=50)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(SyncStep1, small_bytes),
    st.builds(SyncStep2, small_bytes),
    st.builds(SyncUpdate, small_bytes),
    st.builds(AwarenessMessage, small_bytes),
    st.builds(AuthDenied, reasons),
    st.just(QueryAwareness()),
    st.builds(Ack, st.integers(min_value=0, max_value=2**53)),
    st.builds(Refused, st.integers(min_value=0, max_value=2**53), reasons),
    st.builds(Epoch, reasons),
)


@given(messages)
def test_round_trip(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


def test_bytes_match_y_protocols() -> None:
    assert encode_message(SyncStep1(b"\x00")) == b"\x00\x00\x01\x00"
    assert encode_message(SyncStep2(b"\x00\x00")) == b"\x00\x01\x02\x00\x00"
    assert encode_message(SyncUpdate(b"\x01")) == b"\x00\x02\x01\x01"
    assert encode_message(AwarenessMessage(b"\x00")) == b"\x01\x01\x00"
    assert encode_message(QueryAwareness()) == b"\x03"
    assert encode_message(AuthDenied("no")) == b"\x02\x00\x02no"


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"", DecodeError),
        (b"\x07", UnsupportedMessage),
        (b"\x00\x05\x00", UnsupportedMessage),
        (b"\x00\x02\x05ab", DecodeError),
        (b"\x00\x02\x01ab", DecodeError),  # trailing byte
        (b"\x02\x01", UnsupportedMessage),
        (b"\x00\x02" + b"\xff" * 11, DecodeError),
    ],
)
def test_malformed_frames(frame: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_message(frame)


def test_payload_over_cap() -> None:
    with pytest.raises(MessageTooLarge):
        decode_message(encode_message(SyncUpdate(b"x" * 100)), max_payload=99)


def test_quadratic_varint_length_is_refused_fast() -> None:
    frame = b"\x00\x02" + b"\x80" * 200_000 + b"\x01"
    with pytest.raises(DecodeError):
        decode_message(frame)


@settings(max_examples=1000)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_decode_or_raise_decode_error(frame: bytes) -> None:
    try:
        message = decode_message(frame)
    except DecodeError:
        return
    assert decode_message(encode_message(message)) == message


def _outcome(frame: bytes, cap: int) -> object:
    try:
        return decode_message(frame, cap)
    except DecodeError as exc:
        return type(exc)


@given(st.sampled_from([0, 1, 2, 3, 0x80]), st.binary(max_size=130), st.integers(-2, 2), st.integers(0, 140))
def test_short_sync_frames_decode_as_the_general_grammar_does(
    sub: int, payload: bytes, skew: int, cap: int
) -> None:
    """Short sync frames take a shortcut: it must agree with the grammar on every length and cap
    (the reference spells the length as a two-byte varint, which the shortcut leaves alone)."""
    size = len(payload)
    tail = payload + b"\x00" * skew if skew >= 0 else payload[:skew]
    frame = bytes((0, sub)) + encode_var_uint(size) + tail
    reference = bytes((0, sub, 0x80 | (size & 0x7F), size >> 7)) + tail
    assert _outcome(frame, cap) == _outcome(reference, cap)
