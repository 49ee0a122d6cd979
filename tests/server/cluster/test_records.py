"""The stream record codec: round trips, and clear errors for anything malformed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.cluster.records import (
    AccessChanged,
    AwarenessQuery,
    AwarenessRelay,
    CommittedUpdates,
    Eviction,
    Record,
    RecordError,
    RelayedEvent,
    decode_record,
    encode_record,
)

origins = st.text(min_size=1, max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
records = st.one_of(
    st.builds(
        CommittedUpdates,
        st.integers(1, 2**40),
        st.lists(st.binary(max_size=300), min_size=1, max_size=20).map(tuple),
        origins,
    ),
    st.builds(AwarenessRelay, st.binary(max_size=200), origins),
    st.builds(AwarenessQuery, origins),
    st.builds(
        RelayedEvent,
        st.text(max_size=30),
        st.text(max_size=20),
        st.dictionaries(st.text(max_size=8), json_values, max_size=5),
        origins,
    ),
    st.builds(Eviction, st.text(max_size=30), st.integers(1000, 4999), st.text(max_size=40), origins),
    st.builds(AccessChanged, st.text(max_size=30), origins),
)


@given(records)
def test_every_record_survives_a_round_trip(record: Record) -> None:
    fields = encode_record(record)
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in fields.items())
    assert decode_record(fields) == record


def test_the_seq_range_of_committed_updates() -> None:
    record = CommittedUpdates(7, (b"a", b"b", b"c"), "n1")
    assert record.last_seq == 9


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {b"k": b"u", b"o": b"n"},
        {b"k": b"u", b"o": b"n", b"s": b"x", b"d": b"\x01\x00"},
        {b"k": b"u", b"o": b"n", b"s": b"0", b"d": b"\x01\x00"},
        {b"k": b"u", b"o": b"n", b"s": b"3", b"d": b"\x00"},
        {b"k": b"u", b"o": b"n", b"s": b"3", b"d": b"\x01\x05ab"},
        {b"k": b"u", b"o": b"n", b"s": b"3", b"d": b"\x01\x01ab"},
        {b"k": b"u", b"o": b"n", b"s": b"3", b"d": b"\xff\xff\xff\xff\x0f"},
        {b"k": b"e", b"o": b"n", b"d": b"{"},
        {b"k": b"e", b"o": b"n", b"d": b"[]"},
        {b"k": b"x", b"o": b"n", b"d": b'{"document": "d", "code": "x", "reason": ""}'},
        {b"k": b"z", b"o": b"n"},
        {b"k": b"a", b"o": b"\xff"},
    ],
)
def test_malformed_entries_raise_record_error(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(RecordError):
        decode_record(fields)
