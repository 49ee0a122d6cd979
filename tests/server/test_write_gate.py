"""The room's write gate: a connection may not author the future of a client id another one claimed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pycrdt import Doc, Text

from crdt.awareness import AwarenessEntry, AwarenessRegistry
from crdt.errors import InvalidUpdate
from crdt.validation import UpdateLimits
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
