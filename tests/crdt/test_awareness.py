"""Awareness codec and registry: ownership of client ids, clocks, caps, removal on release."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt.awareness import (
    NULL_STATE,
    AwarenessEntry,
    AwarenessLimits,
    AwarenessRegistry,
    decode_awareness,
    encode_awareness,
)
from crdt.errors import DecodeError, MessageTooLarge

entries = st.lists(
    st.builds(
        AwarenessEntry,
        st.integers(0, 2**53 - 1),
        st.integers(0, 2**53 - 1),
        st.sampled_from([NULL_STATE, '{"user":{"name":"Ana"}}', "{}", '{"cursor":[1,2]}']),
    ),
    max_size=10,
)


@given(entries)
def test_round_trip(items: list[AwarenessEntry]) -> None:
    assert decode_awareness(encode_awareness(items)) == items


def test_refuses_non_json_and_oversized_states() -> None:
    with pytest.raises(DecodeError):
        decode_awareness(encode_awareness([AwarenessEntry(1, 1, "{not json")]))
    big = AwarenessEntry(1, 1, '"' + "x" * 20_000 + '"')
    with pytest.raises(MessageTooLarge):
        decode_awareness(encode_awareness([big]), AwarenessLimits(max_state_bytes=1000))


def test_first_claim_wins_and_spoofing_is_dropped() -> None:
    registry = AwarenessRegistry()
    assert registry.apply("alice", [AwarenessEntry(7, 1, '{"n":"a"}')])
    assert registry.apply("mallory", [AwarenessEntry(7, 99, NULL_STATE)]) == []
    assert registry.states() == {7: '{"n":"a"}'}
    assert registry.owner_of(7) == "alice"


def test_older_clock_is_ignored_and_newer_wins() -> None:
    registry = AwarenessRegistry()
    registry.apply("a", [AwarenessEntry(1, 5, '{"v":5}')])
    assert registry.apply("a", [AwarenessEntry(1, 4, '{"v":4}')]) == []
    assert registry.apply("a", [AwarenessEntry(1, 6, '{"v":6}')])
    assert registry.states() == {1: '{"v":6}'}


def test_release_broadcasts_removal_with_a_newer_clock() -> None:
    registry = AwarenessRegistry()
    registry.apply("a", [AwarenessEntry(1, 3, "{}"), AwarenessEntry(2, 1, NULL_STATE)])
    assert registry.release("a") == [AwarenessEntry(1, 4, NULL_STATE)]
    assert registry.states() == {}
    assert registry.owner_of(1) is None
    assert registry.encode_all() is None


def test_a_connection_claims_a_bounded_number_of_ids() -> None:
    registry = AwarenessRegistry(AwarenessLimits(max_clients_per_connection=2))
    accepted = registry.apply("a", [AwarenessEntry(i, 1, "{}") for i in range(5)])
    assert [e.client_id for e in accepted] == [0, 1]


def test_a_null_state_never_claims_an_id() -> None:
    registry = AwarenessRegistry()
    assert registry.apply("echo", [AwarenessEntry(5, 9, NULL_STATE)]) == []
    assert registry.owner_of(5) is None


def test_echoes_of_other_clients_never_claim_their_ids() -> None:
    """y-websocket providers re-broadcast every state they learn, so a peer's connection relays ours."""
    registry = AwarenessRegistry()
    registry.apply("a", [AwarenessEntry(1, 1, '{"who":"a"}')])
    registry.apply("b", [AwarenessEntry(2, 1, '{"who":"b"}')])
    registry.release("a")
    assert registry.apply("b", [AwarenessEntry(1, 2, NULL_STATE), AwarenessEntry(1, 1, '{"who":"a"}')]) == []
    assert registry.owner_of(1) is None
    assert registry.apply("a-again", [AwarenessEntry(1, 1, '{"who":"a"}')]) == [
        AwarenessEntry(1, 3, '{"who":"a"}')  # bumped past the removal (clock 2) peers have seen
    ]
    assert registry.owner_of(1) == "a-again"
