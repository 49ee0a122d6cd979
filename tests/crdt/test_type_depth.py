"""Shared types nested one level per update are bounded across the whole document."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from crdt.document import Document, encode_state_vector
from crdt.errors import InvalidUpdate
from crdt.type_depth import TypeDepths


class Served:
    """A server-side document with its depth index, fed the way the room feeds it."""

    def __init__(self, limit: int, document: Document | None = None) -> None:
        self.document = document or Document()
        self.depths = TypeDepths(limit)

    def read_client(self, client: int, from_clock: int) -> bytes:
        state = dict(self.document.clock_state())
        state[client] = from_clock
        return self.document.diff(encode_state_vector(state))

    def receive(self, update: bytes) -> None:
        self.depths.admit(update, self.read_client)
        self.document.apply(update)


def recorded(doc: Doc[Any]) -> list[bytes]:
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    return updates


def nest_maps(levels: int) -> tuple[Doc[Any], list[bytes], Map]:
    """One update per level: m["c"] = Map() on the innermost map."""
    doc: Doc[Any] = Doc(client_id=11)
    updates = recorded(doc)
    inner = doc.get("m", type=Map)
    for _ in range(levels):
        child: Map = Map()
        inner["c"] = child
        inner = child
    return doc, updates, inner


def test_a_chain_built_one_level_per_update_stops_at_the_limit() -> None:
    _, updates, _ = nest_maps(20)
    served = Served(limit=16)
    for update in updates[:16]:
        served.receive(update)
    with pytest.raises(InvalidUpdate, match="nested deeper than 16"):
        served.receive(updates[16])


def test_the_limit_holds_after_a_reload_reading_levels_from_the_document() -> None:
    _, updates, _ = nest_maps(20)
    loaded = Document()
    for update in updates[:10]:
        loaded.apply(update)  # from the log: never checked here
    served = Served(limit=16, document=loaded)
    for update in updates[10:16]:
        served.receive(update)
    with pytest.raises(InvalidUpdate):
        served.receive(updates[16])


def test_siblings_and_replaced_values_keep_their_level() -> None:
    doc: Doc[Any] = Doc(client_id=12)
    updates = recorded(doc)
    rows = doc.get("rows", type=Array)
    text = doc.get("text", type=Text)
    for _ in range(300):
        row: Map = Map()
        rows.append(row)
        row["cells"] = Array()
        row["cells"] = Map()  # a new value for the key: origin is the old one, same level
        text.insert(len(text), "x")  # fast-path structs in between
    served = Served(limit=3)
    for update in updates:
        served.receive(update)


def test_levels_match_the_real_nesting_of_random_documents() -> None:
    rng = random.Random(7)
    for _ in range(20):
        doc: Doc[Any] = Doc(client_id=rng.randrange(1, 1000))
        updates = recorded(doc)
        containers: list[tuple[Any, int]] = [(doc.get("a", type=Array), 0), (doc.get("m", type=Map), 0)]
        deepest = 1  # the level of a root type's children
        for step in range(60):
            parent, level = rng.choice(containers)
            child: Any = Map() if rng.random() < 0.5 else Array()
            if isinstance(parent, Array):
                parent.insert(rng.randint(0, len(parent)), child)
            else:
                parent[f"k{step}"] = child  # a new key: every container stays alive
            containers.append((child, level + 1))
            deepest = max(deepest, level + 1)
        tight = Served(limit=deepest)
        for update in updates:
            tight.receive(update)
        low = Served(limit=deepest - 1)
        with pytest.raises(InvalidUpdate):
            for update in updates:
                low.receive(update)
