"""Property: Python clients editing concurrently through the real server, with random disconnects,
always converge to one state, equal to what the server serves a late joiner."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from client import connect
from tests.support.server_process import ServerProcess

_names = itertools.count()

#: (kind, client, value, position); positions are reduced modulo the current length.
operation = st.one_of(
    st.tuples(
        st.just("text"), st.integers(0, 3), st.text("ab é😀", min_size=1, max_size=3), st.integers(0, 99)
    ),
    st.tuples(st.just("map"), st.integers(0, 3), st.sampled_from(["x", "y", "z"]), st.just(0)),
    st.tuples(st.just("unmap"), st.integers(0, 3), st.sampled_from(["x", "y", "z"]), st.just(0)),
    st.tuples(st.just("array"), st.integers(0, 3), st.integers(0, 100), st.integers(0, 99)),
    st.tuples(st.just("unarray"), st.integers(0, 3), st.integers(1, 3), st.integers(0, 99)),
    st.tuples(st.just("delete"), st.integers(0, 3), st.integers(1, 5), st.integers(0, 99)),
    st.tuples(st.just("drop"), st.integers(0, 3), st.just(0), st.just(0)),
)


def content(doc: Doc[Any]) -> tuple[str, dict[str, Any], list[Any]]:
    return (
        str(doc.get("t", type=Text)),
        doc.get("m", type=Map).to_py() or {},
        doc.get("a", type=Array).to_py() or [],
    )


def edit(doc: Doc[Any], kind: str, value: Any, where: int, who: int) -> None:
    """One edit at a random place. pycrdt indexes Y.Text in UTF-8 bytes: positions are picked in
    code points and turned into the byte offsets of character boundaries."""
    text, cells, items = doc.get("t", type=Text), doc.get("m", type=Map), doc.get("a", type=Array)
    current = str(text)
    if kind == "text":
        at = where % (len(current) + 1)
        text.insert(len(current[:at].encode()), value)
    elif kind == "delete" and current:
        start = where % len(current)
        del text[len(current[:start].encode()) : len(current[: start + value].encode())]
    elif kind == "map":
        cells[value] = who
    elif kind == "unmap" and value in cells:
        del cells[value]
    elif kind == "array":
        items.insert(where % (len(items) + 1), value)
    elif kind == "unarray" and len(items):
        start = where % len(items)
        del items[start : min(len(items), start + value)]


async def run_session(server: ServerProcess, script: list[tuple[str, int, Any, int]]) -> None:
    url = server.ws(f"prop/{next(_names)}")
    docs: list[Doc[Any]] = [Doc() for _ in range(4)]
    async with contextlib_all([connect(url, doc) for doc in docs]) as clients:
        for kind, who, value, where in script:
            if kind == "drop":
                clients[who].interrupt()
            else:
                edit(docs[who], kind, value, where, who)
            await asyncio.sleep(0)  # let the event loop interleave sends, receives and reconnects
        for client in clients:
            await client.flushed(timeout=15)
        late = Doc()
        async with connect(url, late):
            expected = content(late)
        for client, doc in zip(clients, docs, strict=True):
            await client.wait_for(lambda doc=doc: content(doc) == expected)  # type: ignore[misc]
            assert content(doc) == expected


class contextlib_all:
    """Enter several async context managers, exit them all."""

    def __init__(self, managers: list[Any]) -> None:
        self.managers = managers

    async def __aenter__(self) -> list[Any]:
        return [await m.__aenter__() for m in self.managers]

    async def __aexit__(self, *exc: object) -> None:
        for manager in reversed(self.managers):
            await manager.__aexit__(None, None, None)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(operation, min_size=1, max_size=30))
def test_random_concurrent_edits_converge(
    server: ServerProcess, script: list[tuple[str, int, Any, int]]
) -> None:
    asyncio.run(run_session(server, script))
