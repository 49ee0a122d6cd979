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

operation = st.one_of(
    st.tuples(st.just("text"), st.integers(0, 3), st.text("ab é😀", min_size=1, max_size=3)),
    st.tuples(st.just("map"), st.integers(0, 3), st.sampled_from(["x", "y", "z"])),
    st.tuples(st.just("array"), st.integers(0, 3), st.integers(0, 100)),
    st.tuples(st.just("delete"), st.integers(0, 3), st.integers(0, 5)),
    st.tuples(st.just("drop"), st.integers(0, 3), st.just(0)),
)


def content(doc: Doc[Any]) -> tuple[str, dict[str, Any], list[Any]]:
    return (
        str(doc.get("t", type=Text)),
        doc.get("m", type=Map).to_py() or {},
        doc.get("a", type=Array).to_py() or [],
    )


def edit(doc: Doc[Any], kind: str, value: Any, who: int) -> None:
    text = doc.get("t", type=Text)
    if kind == "text":
        text.insert(len(str(text).encode()), value)  # pycrdt indexes UTF-8 bytes: append at the end
    elif kind == "map":
        doc.get("m", type=Map)[value] = who
    elif kind == "array":
        doc.get("a", type=Array).append(value)
    elif kind == "delete":
        current = str(text)
        if current:
            end = len(current[:value].encode()) or len(current[0].encode())
            del text[0:end]


async def run_session(server: ServerProcess, script: list[tuple[str, int, Any]]) -> None:
    url = server.ws(f"prop/{next(_names)}")
    docs: list[Doc[Any]] = [Doc() for _ in range(4)]
    async with contextlib_all([connect(url, doc) for doc in docs]) as clients:
        for kind, who, value in script:
            if kind == "drop":
                clients[who].interrupt()
            else:
                edit(docs[who], kind, value, who)
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
def test_random_concurrent_edits_converge(server: ServerProcess, script: list[tuple[str, int, Any]]) -> None:
    asyncio.run(run_session(server, script))
