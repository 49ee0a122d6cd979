"""The validator's fast path gives the general parser's verdict and summary, or steps aside."""

from __future__ import annotations

import random
from collections.abc import Container, Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from crdt.common_updates import MAX_CLOCK, common_shape
from crdt.errors import DecodeError, InvalidUpdate
from crdt.lib0 import MAX_SAFE_INTEGER, encode_var_uint
from crdt.validation import UpdateLimits, _Parser, validate_update

u = encode_var_uint
Outcome = tuple[str, Any]
DEFAULT_LIMITS = UpdateLimits()


def general(
    data: bytes,
    known: Mapping[int, int] | None,
    owned: Container[int],
    foreign: Container[int],
    limits: UpdateLimits,
) -> Outcome:
    try:
        summary = _Parser(data, limits).parse(known, owned, foreign)
    except (InvalidUpdate, DecodeError) as exc:
        return "refused", type(exc)
    fields = (summary.clients, summary.struct_count, summary.deleted, summary.string_bytes)
    return "ok", (*fields, summary.delete_range_count, summary.type_count, summary.subdoc_count)


def agree(
    data: bytes,
    known: Mapping[int, int] | None = None,
    owned: Container[int] = frozenset(),
    foreign: Container[int] = frozenset(),
    limits: UpdateLimits = DEFAULT_LIMITS,
) -> bool:
    """Assert the fast path agrees with the general parser; return whether it took the update."""
    expected = general(data, known, owned, foreign, limits)
    shape = common_shape(data, known, owned, foreign, limits)
    if shape is not None:
        runs, structs, deleted, string_bytes, ranges = shape
        assert expected == ("ok", (runs, structs, deleted, string_bytes, ranges, 0, 0)), data.hex()
    try:
        summary = validate_update(data, known, owned, foreign, limits)
    except InvalidUpdate as exc:
        assert expected[0] == "refused", data.hex()
        assert isinstance(exc, InvalidUpdate)
    else:
        assert expected[0] == "ok", data.hex()
        assert expected[1][:5] == (
            summary.clients,
            summary.struct_count,
            summary.deleted,
            summary.string_bytes,
            summary.delete_range_count,
        )
    return shape is not None


def typing_session(seed: int, steps: int = 300) -> tuple[list[bytes], list[dict[int, int]]]:
    """Two writers typing and deleting (ASCII, accents, emoji) into one text; every update with the
    state the server held before it."""
    rng = random.Random(seed)
    clients = [rng.choice([1, 300, 2**31 + 7, MAX_SAFE_INTEGER - rng.randrange(1000)]) for _ in range(2)]
    docs: list[Doc[Any]] = [Doc(client_id=c) for c in clients]
    updates: list[bytes] = []
    local = [True]  # record the writer's own transactions, not their echo on the other replica
    for doc in docs:
        doc.observe(lambda event: updates.append(event.update) if local[0] else None)
    texts = [doc.get("t", type=Text) for doc in docs]
    states: list[dict[int, int]] = []
    known: dict[int, int] = {}
    for _ in range(steps):
        writer = rng.randrange(2)
        text = texts[writer]
        before = len(updates)
        chars = str(text)
        offsets = [len(chars[:i].encode()) for i in range(len(chars) + 1)]  # pycrdt indexes UTF-8
        if len(chars) > 3 and rng.random() < 0.3:
            start = rng.randrange(len(chars) - 1)
            del text[offsets[start] : offsets[start + rng.randint(1, 2)]]
        else:
            text.insert(rng.choice(offsets), rng.choice(["a", "bc", "é", "😀", "xyz "]))
        for update in updates[before:]:
            local[0] = False
            docs[1 - writer].apply_update(update)
            local[0] = True
            states.append(dict(known))
            summary = validate_update(update, known)
            for client, (_, end) in summary.clients.items():
                known[client] = max(known.get(client, 0), end)
    return updates, states


def test_live_edits_take_the_fast_path_with_the_same_summary() -> None:
    for seed in range(3):
        updates, states = typing_session(seed)
        taken = sum(agree(update, state) for update, state in zip(updates, states, strict=True))
        assert taken >= len(updates) - 2  # all but the first insertions (parent written out)


def test_mutated_live_edits_get_the_general_verdict() -> None:
    updates, states = typing_session(7, steps=120)
    rng = random.Random(1)
    for update, state in zip(updates, states, strict=True):
        for _ in range(20):
            data = bytearray(update)
            i = rng.randrange(len(data))
            data[i] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
            if rng.random() < 0.3:
                del data[rng.randrange(len(data) + 1) :]
            agree(bytes(data), state)
            agree(bytes(data), None)


# -- generated updates of the common shape, with edge values everywhere --------------------------
edge_uint = st.one_of(
    st.integers(0, 130),
    st.integers(1, 20),
    st.integers(1, 20),
    st.sampled_from([MAX_CLOCK - 1, MAX_CLOCK, MAX_CLOCK + 1, MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, 2**64]),
    st.integers(0, 2**70),
)
client_id = st.sampled_from([0, 5, 300, 2**31, MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1])


@st.composite
def item(draw: st.DrawFn, run_client: int) -> bytes:
    info = draw(st.sampled_from([0x84, 0xC4, 0x44, 0x81, 0xC1, 0x41, 0xA4, 0x04, 0x01, 0x00, 0x88, 0x0A]))
    out = bytes([info])
    for flag in (0x80, 0x40):
        if info & flag:
            out += u(draw(st.one_of(st.just(run_client), client_id))) + u(draw(edge_uint))
    if not info & 0xC0:
        out += u(1) + u(1) + b"t"
    if info & 0x1F == 4:
        text = draw(st.sampled_from(["", "a", "hello", "é", "😀x"])).encode()
        if draw(st.booleans()):
            out += u(len(text)) + text
        else:  # a lying length, invalid UTF-8 or a cut surrogate
            out += u(draw(st.integers(0, 8))) + draw(st.sampled_from([text, b"\xff", b"\xf0\x9f"]))
    else:
        out += u(draw(edge_uint))
    return out


@st.composite
def common_update(draw: st.DrawFn) -> bytes:
    out = b""
    clients = draw(st.sampled_from([0, 1, 1, 1, 2]))
    out += u(clients)
    for _ in range(clients):
        client = draw(client_id)
        items = draw(st.lists(item(client), min_size=0, max_size=3))
        out += u(len(items)) + u(client) + u(draw(edge_uint)) + b"".join(items)
    deletes = draw(
        st.lists(st.tuples(client_id, st.lists(st.tuples(edge_uint, edge_uint), max_size=3)), max_size=3)
    )
    out += u(len(deletes))
    for client, ranges in deletes:
        out += u(client) + u(len(ranges)) + b"".join(u(k) + u(n) for k, n in ranges)
    if draw(st.integers(0, 9)) == 0:
        out += draw(st.binary(max_size=3))
    return out


known_states = st.one_of(st.none(), st.dictionaries(client_id, st.sampled_from([0, 1, 5, 100, MAX_CLOCK])))
small_limits = st.builds(
    UpdateLimits,
    max_structs=st.sampled_from([1, 2, 1_000_000]),
    max_clients=st.sampled_from([0, 1, 2, 10_000]),
    max_delete_ranges=st.sampled_from([0, 1, 1_000_000]),
    max_string_bytes=st.sampled_from([0, 2, 1 << 24]),
    max_clock_advance=st.sampled_from([0, 3, 1 << 24]),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    common_update(),
    known_states,
    st.sets(client_id, max_size=2),
    st.sets(client_id, max_size=2),
    st.one_of(st.just(UpdateLimits()), small_limits),
)
def test_generated_updates_get_the_same_verdict_and_summary(
    data: bytes,
    known: dict[int, int] | None,
    owned: set[int],
    foreign: set[int],
    limits: UpdateLimits,
) -> None:
    agree(data, known, frozenset(owned), frozenset(foreign), limits)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40), known_states)
def test_arbitrary_bytes_get_the_same_verdict(data: bytes, known: dict[int, int] | None) -> None:
    agree(data, known)


def test_a_well_formed_insertion_and_deletion_take_the_fast_path() -> None:
    client = MAX_SAFE_INTEGER
    insert = u(1) + u(1) + u(client) + u(5) + b"\x84" + u(client) + u(4) + u(1) + b"a" + u(0)
    delete = u(0) + u(1) + u(client) + u(1) + u(2) + u(3)
    assert agree(insert, {client: 5})
    assert agree(delete, {client: 6})
    assert not agree(delete, {client: 4})  # past the known state: the general parser refuses it
