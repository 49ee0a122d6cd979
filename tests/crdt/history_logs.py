"""Random collaborative histories for history tests, logged the way a room logs them."""

# Random collaborative histories for history tests: clients editing concurrently, syncing through a
# server document whose transactions form the log (like a room's), non-ASCII text included.

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from pycrdt import Doc, Text

ALPHABET = "abcdef  \n\u00e9\u00df\u20ac\U0001f600"


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    data: bytes
    author: str
    created_at: float


def text_of(doc: Doc[Any], root: str = "t") -> str:
    return str(doc.get(root, type=Text))


def local_edit(rng: random.Random, doc: Doc[Any], root: str = "t") -> None:
    """One insertion or deletion at a random code point position (pycrdt takes UTF-8 offsets)."""
    text = doc.get(root, type=Text)
    current = str(text)
    if current and rng.random() < 0.35:
        start = rng.randrange(len(current))
        end = start + rng.randint(1, min(6, len(current) - start))
        del text[len(current[:start].encode()) : len(current[:end].encode())]
    else:
        at = rng.randint(0, len(current))
        text.insert(
            len(current[:at].encode()), "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 4)))
        )


def make_log(
    seed: int, clients: int = 3, steps: int = 80, start: float = 1_700_000_000.0
) -> tuple[list[Row], Doc[Any]]:
    """A log built the way a room builds one: each row is one server transaction's update,
    authored by the client whose message it integrated; clients sync with the server and with
    each other at random, so rows carry concurrent edits and other clients' structs."""
    rng = random.Random(seed)
    server: Doc[Any] = Doc()
    rows: list[Row] = []
    author = [""]
    clock = [start]

    def logged(event: Any) -> None:
        clock[0] += rng.choice((0.2, 0.5, 1.0, 3.0, 45.0))
        rows.append(Row(len(rows) + 1, event.update, author[0], clock[0]))

    server.observe(logged)
    docs: list[Doc[Any]] = [Doc(client_id=rng.randrange(1, 2**40)) for _ in range(clients)]
    for _ in range(steps):
        c = rng.randrange(clients)
        roll = rng.random()
        if roll < 0.55:
            local_edit(rng, docs[c])
        elif roll < 0.8:
            author[0] = f"user{c}"
            server.apply_update(docs[c].get_update(server.get_state()))
        elif roll < 0.9:
            other = docs[rng.randrange(clients)]
            other.apply_update(docs[c].get_update(other.get_state()))
        else:
            docs[c].apply_update(server.get_update(docs[c].get_state()))
    for c in range(clients):
        author[0] = f"user{c}"
        server.apply_update(docs[c].get_update(server.get_state()))
    return rows, server


def texts_after_each(rows: list[Row], root: str = "t") -> list[str]:
    """texts[i] = the text after rows[:i] (texts[0] = "")."""
    doc: Doc[Any] = Doc()
    out = [""]
    for row in rows:
        doc.apply_update(row.data)
        out.append(text_of(doc, root))
    return out


seeds = st.integers(min_value=0, max_value=2**32 - 1)
