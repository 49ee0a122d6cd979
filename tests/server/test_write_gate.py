"""The room's write gate: a connection may not author the future of a client id another one claimed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pycrdt import Doc, Text, merge_updates

from crdt.awareness import AwarenessEntry, AwarenessRegistry
from crdt.errors import InvalidUpdate
from crdt.validation import UpdateLimits, validate_update
from server.write_gate import WriteGate


def edit(client_id: int, text: str, after: Doc[Any] | None = None) -> tuple[Doc[Any], bytes]:
    doc: Doc[Any] = after or Doc(client_id=client_id)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    shared = doc.get("t", type=Text)
    shared.insert(len(shared), text)
    doc.unobserve(subscription)
    return doc, updates[0]


def test_the_first_writer_of_an_id_owns_it_until_it_leaves() -> None:
    gate = WriteGate(AwarenessRegistry(), UpdateLimits())
    doc, first = edit(7, "ab")
    summary = gate.validate(1, 1, first, {})
    gate.claim(1, summary.clients)
    _, second = edit(7, "cd", after=doc)
    with pytest.raises(InvalidUpdate):  # connection 2 may not write client 7's next clocks
        gate.validate(2, 1, second, {7: 2})
    assert gate.validate(1, 2, second, {7: 2}).clients == {7: (2, 4)}
    gate.release(1)
    assert gate.validate(2, 1, second, {7: 2}).clients == {7: (2, 4)}  # unclaimed once 1 left


def test_an_awareness_claim_protects_an_id_that_has_not_written_yet() -> None:
    awareness = AwarenessRegistry()
    awareness.apply(1, [AwarenessEntry(9, 1, "{}")])
    gate = WriteGate(awareness, UpdateLimits())
    _, update = edit(9, "x")
    with pytest.raises(InvalidUpdate):
        gate.validate(2, 1, update, {})
    assert gate.validate(1, 1, update, {}).struct_count == 1


def test_a_verdict_from_the_worker_is_used_once_for_its_update() -> None:
    gate = WriteGate(AwarenessRegistry(), UpdateLimits())
    _, update = edit(5, "y" * 10)
    asyncio.run(gate.prevalidate(1, 4, b"\x01\x01\x05\x00\x04", {}))  # truncated: refused by the worker
    with pytest.raises(InvalidUpdate):
        gate.validate(1, 4, update, {})  # the stored verdict applies to index 4, whatever is passed now
    assert gate.validate(1, 4, update, {}).struct_count == 1  # used once, then validated normally


def test_structs_of_an_id_another_user_claimed_are_left_out_not_refused() -> None:
    gate = WriteGate(AwarenessRegistry(), UpdateLimits(), user_claims=True)
    gate.claims = {7: "ana"}
    victim, first = edit(7, "ab")
    _, offline = edit(7, "cd", after=victim)
    _, own = edit(8, "xy")
    forged = merge_updates(offline, own)
    update, summary = gate.admit(1, "bo", 1, forged, {7: 2})
    assert set(summary.clients) == {8} and gate.stripped_sections == 1
    assert validate_update(update).clients == {8: (0, 2)}
    assert gate.admit(2, "ana", 1, forged, {7: 2})[1].clients == {7: (2, 4), 8: (0, 2)}  # her own id
    assert gate.admit(1, "bo", 2, first, {7: 2})[0] == first  # what the server has passes unchanged


def test_ids_claimed_by_the_same_user_pass_from_any_connection() -> None:
    awareness = AwarenessRegistry()
    awareness.apply(1, [AwarenessEntry(9, 1, "{}")])  # connection 1 (ana's new tab) announces 9
    gate = WriteGate(awareness, UpdateLimits(max_clock_advance=4), user_claims=True)
    gate.claims = {5: "ana", 9: "ana"}
    _, old_tab = edit(5, "offline edits of a reloaded page")
    update, summary = gate.admit(1, "ana", 1, old_tab, {})
    assert update == old_tab and summary.clients == {5: (0, 32)}  # past max_clock_advance: hers


def test_without_user_claims_nothing_is_left_out() -> None:
    gate = WriteGate(AwarenessRegistry(), UpdateLimits())
    gate.claims = {7: "ana"}
    _, update = edit(7, "ab")
    assert gate.admit(1, "bo", 1, update, {}) == (update, gate.validate(1, 2, update, {}))


def test_a_large_update_is_filtered_by_the_worker() -> None:
    gate = WriteGate(AwarenessRegistry(), UpdateLimits(), user_claims=True)
    gate.claims = {7: "ana"}
    victim, _ = edit(7, "ab")
    _, offline = edit(7, "cd", after=victim)
    _, own = edit(8, "xy")
    forged = merge_updates(offline, own)
    asyncio.run(gate.prevalidate(1, 3, forged, {7: 2}, "bo"))
    update, summary = gate.admit(1, "bo", 3, b"ignored: the worker's result applies to index 3", {7: 2})
    assert set(summary.clients) == {8} and validate_update(update).clients == {8: (0, 2)}
    assert gate.stripped_sections == 1
    asyncio.run(gate.prevalidate(1, 4, forged, {7: 2}, "bo"))
    gate.release(1)  # the peer left before its update was handled: nothing is kept for it
    assert gate.admit(1, "bo", 4, own, {7: 2}) == (own, validate_update(own))
