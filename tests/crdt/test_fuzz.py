"""Fuzzing the codec and the validator: any bytes give a value or a documented `CoreError`, quickly."""

# Untrusted bytes reach five entry points: the y-websocket message codec, the lib0 decoder under
# it, the awareness codec, the per-connection sync state machine and the update / state-vector
# validator (plus the Hocuspocus frame codec). For each, arbitrary bytes and structure-aware
# mutations of real traffic (bit flips, truncations, spliced varints, inflated length prefixes)
# must either decode or raise a `crdt.errors.CoreError` subclass - never another exception - and
# every call must finish within WORK_LIMIT seconds (the caps keep work linear in the input).

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from crdt.awareness import AwarenessEntry, AwarenessLimits, decode_awareness, encode_awareness
from crdt.errors import CoreError, DecodeError, InvalidUpdate, MessageTooLarge, UnsupportedMessage
from crdt.hocuspocus import Sender, decode_frame
from crdt.lib0 import MAX_SAFE_INTEGER, Decoder, encode_var_bytes, encode_var_string, encode_var_uint
from crdt.messages import (
    Ack,
    AuthDenied,
    AwarenessMessage,
    DocumentEvent,
    Epoch,
    QueryAwareness,
    Refused,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_message,
    encode_message,
)
from crdt.sync import Event, Role, SyncSession
from crdt.validation import MAX_CLOCK, UpdateLimits, validate_state_vector, validate_update

WORK_LIMIT = 2.0  # seconds per call: generous for shared CI cores, far below any quadratic blow-up
FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
T = TypeVar("T")


def bounded(call: Callable[[], T]) -> T | CoreError:
    """Run `call`; return its value or the CoreError it raised; fail on anything else or slowness."""
    started = time.perf_counter()
    try:
        return call()
    except CoreError as exc:
        assert exc.detail, "a CoreError without a detail"
        assert 1000 <= exc.close_code < 5000
        return exc
    finally:
        elapsed = time.perf_counter() - started
        assert elapsed < WORK_LIMIT, f"took {elapsed:.2f} s"


# -- real traffic to mutate -------------------------------------------------------------------------
def _updates() -> tuple[list[bytes], bytes]:
    doc: Doc[Any] = Doc(client_id=4_242_424)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("t", type=Text)
    text += "hello 😀 é"
    text.format(0, 3, {"bold": True})
    text.insert_embed(2, {"image": "x.png"})
    del text[0:2]
    map_ = doc.get("m", type=Map)
    map_.update({"i": 1, "f": 1.5, "big": 2**60, "s": "str", "b": b"\x00\x01", "n": None, "t": True})
    map_["arr"] = [1, [2, [3, {"k": None}]], "x"]
    map_["nested"] = Map({"inner": Array([1, 2, Text("t")])})
    array = doc.get("a", type=Array)
    array.extend([Map({"z": 1}), Array([Array([1])])])
    del array[0]
    xml = doc.get("x", type=XmlFragment)
    xml.children.append(XmlElement("p", {"class": "c"}, [XmlText("hi"), XmlElement("b")]))
    del map_["i"]
    return [*updates, doc.get_update()], doc.get_state()


UPDATES, STATE_VECTOR = _updates()
AWARENESS = encode_awareness(
    [
        AwarenessEntry(7, 3, '{"user":{"name":"ana","color":"#f00"},"cursor":null}'),
        AwarenessEntry(9, 1, "null"),
    ]
)
MESSAGES = [
    encode_message(SyncStep1(STATE_VECTOR)),
    encode_message(SyncStep2(UPDATES[-1])),
    *(encode_message(SyncUpdate(u)) for u in UPDATES[:6]),
    encode_message(AwarenessMessage(AWARENESS)),
    encode_message(QueryAwareness()),
    encode_message(AuthDenied("no")),
    encode_message(Ack(12)),
    encode_message(Refused(3, "refused")),
    encode_message(Epoch("e-1")),
    encode_message(DocumentEvent("comment", '{"id":1}')),
]
HOCUSPOCUS = [encode_var_string("team/doc") + m for m in MESSAGES[:9]] + [
    encode_var_string("team/doc") + b"\x02\x00" + encode_var_string("token") + encode_var_string("v3"),
    encode_var_string("team/doc") + b"\x05" + encode_var_string("stateless"),
    encode_var_string("team/doc") + b"\x07" + encode_var_string("bye"),
    encode_var_string("team/doc") + b"\x08\x01",
    b"\x09",
    b"\x0a",
]

_EXTREME_VARINTS = [
    b"\x80" * 9 + b"\x01",  # 2^63 in ten bytes
    b"\xff" * 9 + b"\x01",
    b"\xff" * 12,  # too long
    b"\x80" * 200,  # unterminated
    encode_var_uint(2**32),
    encode_var_uint(2**53),
    encode_var_uint(MAX_CLOCK),
    b"\x80\x00",  # zero, non-minimal
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A real message or update with a few structure-blind but varint-aware edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.integers(0, 6))
        if kind == 0 and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == 1:
            del data[position:]
        elif kind == 2:
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif kind == 3 and data:
            del data[position]
        elif kind == 4:  # replace one byte by an extreme varint (counts, lengths, clocks, ids)
            data[position : position + 1] = draw(st.sampled_from(_EXTREME_VARINTS))
        elif kind == 5:  # duplicate a slice (repeated structs, doubled prefixes)
            end = draw(st.integers(position, min(len(data), position + 32)))
            data[position:position] = data[position:end]
        else:  # splice in a piece of another seed
            other = draw(st.sampled_from(seeds))
            cut = draw(st.integers(0, len(other)))
            data[position:] = other[cut:]
    return bytes(data)


def any_bytes(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), mutated(seeds))


# -- lib0 ------------------------------------------------------------------------------------------
_READS = ["uint8", "var_uint", "var_int", "bytes", "var_bytes", "var_bytes_capped", "var_string", "rest"]


@FUZZ
@given(
    st.binary(max_size=256), st.lists(st.sampled_from(_READS), min_size=1, max_size=20), st.integers(0, 64)
)
def test_lib0_decoder_reads_or_raises_decode_error(data: bytes, reads: list[str], n: int) -> None:
    decoder = Decoder(data)
    for read in reads:
        before = decoder.pos
        outcome = bounded(lambda read=read: _read(decoder, read, n))  # type: ignore[misc]
        if isinstance(outcome, CoreError):
            assert isinstance(outcome, DecodeError)
            return
        assert before <= decoder.pos <= len(data), "the decoder moved outside the buffer"
        if read == "var_uint":
            assert isinstance(outcome, int) and 0 <= outcome < 2**70
        if read == "var_bytes_capped":
            assert isinstance(outcome, bytes) and len(outcome) <= n


def _read(decoder: Decoder, read: str, n: int) -> object:
    match read:
        case "uint8":
            return decoder.read_uint8()
        case "var_uint":
            return decoder.read_var_uint()
        case "var_int":
            return decoder.read_var_int()
        case "bytes":
            return decoder.read_bytes(n)
        case "var_bytes":
            return decoder.read_var_bytes()
        case "var_bytes_capped":
            return decoder.read_var_bytes(n)
        case "var_string":
            return decoder.read_var_string(1 << 20)
        case _:
            return decoder.read_rest()


def test_lib0_varint_caps_are_constant_time() -> None:
    for data in (b"\x80" * 200_000, b"\xff" * 1_000_000 + b"\x01"):
        for read in ("var_uint", "var_int", "var_bytes", "var_string"):
            outcome = bounded(lambda read=read, data=data: _read(Decoder(data), read, 0))  # type: ignore[misc]
            assert isinstance(outcome, DecodeError)


# -- y-websocket messages --------------------------------------------------------------------------
@FUZZ
@given(any_bytes(MESSAGES), st.sampled_from([1 << 26, 1 << 10, 16]))
def test_decode_message_returns_a_message_or_a_decode_error(frame: bytes, cap: int) -> None:
    outcome = bounded(lambda: decode_message(frame, cap))
    if isinstance(outcome, CoreError):
        assert isinstance(outcome, DecodeError)
        assert outcome.close_code in (1002, 1003, 1009)
        return
    again = decode_message(encode_message(outcome), cap)  # a decoded message survives re-encoding
    assert again == outcome
    for field in ("state_vector", "update", "payload"):
        assert len(getattr(outcome, field, b"")) <= cap


@pytest.mark.parametrize("seed", MESSAGES, ids=lambda m: m[:2].hex())
def test_every_truncation_of_a_real_message_is_refused_cleanly(seed: bytes) -> None:
    for end in range(len(seed)):
        outcome = bounded(lambda end=end: decode_message(seed[:end]))  # type: ignore[misc]
        if not isinstance(outcome, CoreError):  # a shorter prefix may itself be a whole message
            assert encode_message(outcome) == seed[:end]


@FUZZ
@given(any_bytes(MESSAGES), st.sampled_from(list(Role)), st.booleans(), st.booleans())
def test_sync_session_receive_data(frame: bytes, role: Role, read_only: bool, acks: bool) -> None:
    session = SyncSession(role, read_only=read_only, acks=acks, max_message_size=1 << 16)
    before = session.updates_received
    outcome: Event | CoreError | None = bounded(lambda: session.receive_data(frame))
    if isinstance(outcome, CoreError):
        assert isinstance(outcome, DecodeError | UnsupportedMessage)
        assert session.updates_received == before
        return
    assert session.updates_received - before in (0, 1)
    for sent in session.data_to_send():  # what the session queued (a refusal) is well-formed
        decode_message(sent)


@FUZZ
@given(st.lists(any_bytes(MESSAGES), min_size=2, max_size=30))
def test_sync_session_survives_a_stream_of_hostile_frames(frames: list[bytes]) -> None:
    session = SyncSession(Role.SERVER, acks=True)
    for frame in frames:
        bounded(lambda frame=frame: session.receive_data(frame))  # type: ignore[misc]
        session.acknowledge(session.updates_received)
    assert session.updates_final == session.updates_received


# -- awareness -------------------------------------------------------------------------------------
@FUZZ
@given(any_bytes([AWARENESS, encode_awareness([])]), st.integers(0, 70))
def test_decode_awareness(payload: bytes, max_entries: int) -> None:
    limits = AwarenessLimits(max_entries=max_entries, max_state_bytes=256)
    outcome = bounded(lambda: decode_awareness(payload, limits))
    if isinstance(outcome, CoreError):
        assert isinstance(outcome, DecodeError)
        return
    assert len(outcome) <= max_entries
    for entry in outcome:
        assert 0 <= entry.client_id <= MAX_SAFE_INTEGER and 0 <= entry.clock <= MAX_SAFE_INTEGER
        assert len(entry.state.encode()) <= 256
    assert decode_awareness(encode_awareness(outcome), limits) == outcome


def test_awareness_hostile_json_is_bounded() -> None:
    for state in (b"[" * 16_000, b'{"a":' * 3000, b'"' + b"\\u0000" * 2000 + b'"', b"1e999999", b"NaN"):
        payload = encode_var_uint(1) + encode_var_uint(5) + encode_var_uint(1) + encode_var_bytes(state)
        bounded(lambda payload=payload: decode_awareness(payload))  # type: ignore[misc]


# -- the validator ----------------------------------------------------------------------------------
KNOWN_STATES = [None, {}, {4_242_424: 5}, {4_242_424: 10**6, 7: 3}]


@FUZZ
@given(any_bytes(UPDATES), st.sampled_from(KNOWN_STATES), st.booleans())
def test_validate_update(data: bytes, known: dict[int, int] | None, owned: bool) -> None:
    owned_clients = frozenset({4_242_424}) if owned else frozenset()
    foreign = frozenset() if owned else frozenset({4_242_424})
    outcome = bounded(lambda: validate_update(data, known, owned_clients, foreign))
    if isinstance(outcome, CoreError):
        assert isinstance(outcome, InvalidUpdate)
        assert outcome.close_code == 1007
        return
    for client, (first, end) in outcome.clients.items():
        assert 0 <= client <= MAX_SAFE_INTEGER
        assert 0 <= first <= end <= MAX_CLOCK
    for client, ranges in outcome.deleted.items():
        assert all(clock >= 0 and length > 0 and clock + length <= MAX_CLOCK for clock, length in ranges)
        assert 0 <= client <= MAX_SAFE_INTEGER
    assert outcome.struct_count <= UpdateLimits().max_structs


@FUZZ
@given(st.one_of(any_bytes([STATE_VECTOR, b"\x00"]), st.binary(max_size=64)))
def test_validate_state_vector(data: bytes) -> None:
    outcome = bounded(lambda: validate_state_vector(data))
    if isinstance(outcome, CoreError):
        assert isinstance(outcome, InvalidUpdate)
        return
    assert all(0 <= c <= MAX_SAFE_INTEGER and 0 <= k <= MAX_CLOCK for c, k in outcome.items())


HOSTILE_UPDATES = {  # the repros and their big siblings: refused, in bounded time
    "deep any": bytes.fromhex("010101000801016101" + "7501" * 30000 + "7e00"),
    "deeper any": bytes.fromhex("010101000801016101" + "7501" * 500_000 + "7e00"),
    "deep json embed": b"\x01\x01\x01\x00\x05\x01\x01t" + encode_var_string("[" * 200_000),
    "poisoning": bytes.fromhex("0101d2090000808080808080801000"),
    "clock wrap": bytes.fromhex("01014d0500ffffffffffffffffff0100"),
    "amplification": bytes.fromhex("80808040"),
    "quadratic varint": encode_var_uint(1) + b"\x80" * 199_999 + b"\x01",
    "many clients": encode_var_uint(10_000) + b"\x01" * 100_000,
    "many structs": b"\x01" + encode_var_uint(10**6) + b"\x05\x00" + b"\x0a\x01" * 10**6 + b"\x00",
    "many delete ranges": b"\x00\x01\x05" + encode_var_uint(10**6) + b"\x00\x01" * 10**6,
    "random megabyte": bytes(range(256)) * 4096,
}


@pytest.mark.parametrize("name", list(HOSTILE_UPDATES))
def test_hostile_updates_are_refused_in_bounded_time(name: str) -> None:
    data = HOSTILE_UPDATES[name]
    knowns: list[dict[int, int] | None] = [None, {}]
    for known in knowns:
        outcome = bounded(lambda known=known: validate_update(data, known))  # type: ignore[misc]
        if name not in ("many structs", "many delete ranges"):  # those two are well-formed
            assert isinstance(outcome, InvalidUpdate), name


# -- Hocuspocus frames ------------------------------------------------------------------------------
@FUZZ
@given(any_bytes(HOCUSPOCUS), st.sampled_from(list(Sender)))
def test_hocuspocus_decode_frame(frame: bytes, sender: Sender) -> None:
    outcome = bounded(lambda: decode_frame(frame, sender))
    if isinstance(outcome, CoreError):
        assert isinstance(outcome, DecodeError | MessageTooLarge | UnsupportedMessage)
