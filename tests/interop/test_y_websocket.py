"""Acceptance of the sync hub with the real Yjs ecosystem: stock y-websocket v3 providers (Node) and our
Python client editing one document through a real `cocreate serve` process.

Nothing sleeps: every wait is for a condition (Node: `waitFor`, re-checked on document, awareness
and provider events; Python: re-checked on document changes and handled messages), with a timeout.
Convergence uses a barrier: each writer sets `barrier[key]` after its edits; as each connection's
messages are applied and relayed in order, a replica that has every writer's key has every edit.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.interop.conftest import Peers
from tests.interop.node_client import UNKNOWN_MESSAGE, NodeClient
from tests.interop.py_peer import PyPeer, new_doc, python_peer
from tests.support.server_process import ServerProcess, running_server

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One `cocreate serve` (SQLite) for this module: each test works on its own document
    (`peers.document`); the restart tests stop and start it on the same port and database."""
    with running_server(tmp_path_factory.mktemp("interop-server")) as process:
        yield process


EMPTY = {"t": "", "m": {}, "a": [], "barrier": {}}


async def converge(tag: str, nodes: list[NodeClient], pythons: list[PyPeer]) -> dict[str, Any]:
    """Every participant writes its barrier key, waits for everyone's, then all contents must be equal.
    Returns that content (barrier map included)."""
    keys = [f"{tag}:{n.name}" for n in nodes] + [f"{tag}:py{i}" for i in range(len(pythons))]
    await asyncio.gather(*(n.map_set("barrier", f"{tag}:{n.name}", True) for n in nodes))
    for i, peer in enumerate(pythons):
        peer.barrier[f"{tag}:py{i}"] = True
    dumps = await asyncio.gather(*(n.wait_for(mapKeys={"barrier": keys}) for n in nodes))
    for peer in pythons:
        await peer.wait_barrier(keys)
    contents = {n.name: d["roots"] for n, d in zip(nodes, dumps, strict=True)}
    contents.update({f"py{i}": peer.content() for i, peer in enumerate(pythons)})
    first = next(iter(contents.values()))
    assert all(content == first for content in contents.values()), _show(contents)
    return dict(first)


def _show(contents: dict[str, Any]) -> str:
    return "replicas differ:\n" + "\n".join(
        f"  {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in contents.items()
    )


def without_barrier(content: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in content.items() if k != "barrier"}


async def late_joiners_see(peers: Peers, expected: dict[str, Any]) -> None:
    """A fresh Node provider and a fresh Python client both get exactly `expected` from the server."""
    late_node = await peers.node(name="late-node")
    assert (await late_node.dump())["roots"] == expected
    async with python_peer(peers.url()) as late_python:
        assert late_python.content() == expected


# -- 1. concurrent edits ---------------------------------------------------------------------------
async def test_concurrent_edits_on_text_map_array_converge(peers: Peers) -> None:
    n1 = await peers.node(name="n1")
    n2 = await peers.node(name="n2")
    py = await peers.python()

    seed_text = "héllo wörld 👋"
    await n1.transact(
        {"op": "insertText", "root": "t", "text": seed_text},
        {"op": "mapSet", "root": "m", "key": "gone", "value": "seed"},
        {"op": "mapSet", "root": "m", "key": "nested", "value": {"list": [1, "ü", None], "ok": True}},
        {"op": "arrayInsert", "root": "a", "values": [1, 2, 3]},
    )
    await converge("seed", [n1, n2], [py])

    # Everyone edits the same places at once; none has seen the others' edits when it makes its own.
    inserted: list[str] = []
    array_added: list[Any] = []
    for round_ in range(3):
        t1, t2, t3 = f"Ω{round_}🅰", f"Б{round_}🎉", f"中{round_}🐍"
        inserted += [t1, t2, t3, f"<{round_}>"]
        n1_ops: list[dict[str, Any]] = []
        if round_ == 0:
            n1_ops.append({"op": "deleteText", "root": "t", "index": 6, "length": 5})  # "wörld" (UTF-16)
        n1_ops += [
            {"op": "insertText", "root": "t", "index": 0, "text": t1},
            {"op": "mapSet", "root": "m", "key": "winner", "value": f"n1-{round_}"},
            {"op": "mapSet", "root": "m", "key": f"n1-{round_}", "value": {"emoji": "🦊", "n": round_}},
            {"op": "arrayInsert", "root": "a", "index": 0, "values": [f"n1-{round_}"]},
        ]
        n2_ops: list[dict[str, Any]] = [
            {"op": "insertText", "root": "t", "index": 0, "text": t2},
            {"op": "insertText", "root": "t", "text": f"<{round_}>"},
            {"op": "mapSet", "root": "m", "key": "winner", "value": f"n2-{round_}"},
            {"op": "mapSet", "root": "m", "key": "gone", "value": f"n2-{round_}"},
            {"op": "arrayInsert", "root": "a", "values": [{"n2": round_}]},
        ]
        if round_ == 0:
            n2_ops.append({"op": "arrayDelete", "root": "a", "index": 0, "length": 1})  # the seed's 1
        array_added += [f"n1-{round_}", {"n2": round_}, f"py-{round_}"]
        sent = asyncio.gather(n1.transact(*n1_ops), n2.transact(*n2_ops))
        py.insert_text_at_char(0, t3)
        py.map["winner"] = f"py-{round_}"
        py.map[f"py-{round_}"] = ["ß", round_]
        if round_ == 0:
            del py.map["gone"]  # concurrent with n2 setting it: n2's set must survive everywhere
        py.array.insert(0, f"py-{round_}")
        await sent
    final = await converge("edits", [n1, n2], [py])
    await py.client.flushed()

    text = final["t"]
    expected_chars = Counter("héllo  👋") + Counter("".join(inserted))
    assert Counter(text) == expected_chars, text
    for piece in inserted:
        assert text.count(piece) == 1, (piece, text)
    assert final["m"]["winner"] in {"n1-2", "n2-2", "py-2"}
    assert final["m"]["gone"] == "n2-2"
    assert final["m"]["nested"] == {"list": [1, "ü", None], "ok": True}
    assert final["m"]["n1-1"] == {"emoji": "🦊", "n": 1}
    assert final["m"]["py-2"] == ["ß", 2]
    array_items = Counter(json.dumps(v, sort_keys=True) for v in final["a"])
    assert array_items == Counter(json.dumps(v, sort_keys=True) for v in [2, 3, *array_added])

    await late_joiners_see(peers, final)


async def test_utf16_and_utf8_positions_agree(peers: Peers) -> None:
    """Yjs counts UTF-16 code units, pycrdt UTF-8 bytes: the same character position on both sides."""
    n1 = await peers.node(name="n1")
    py = await peers.python()
    await n1.insert_text("t", "a😀b€c")
    await py.wait_content({**EMPTY, "t": "a😀b€c"})
    py.insert_text_at_char(2, "X")  # after the emoji: byte offset 5, UTF-16 offset 3
    await n1.wait_for(roots={"t": "a😀Xb€c"})
    await n1.insert_text("t", "Y", index=6)  # after "€" (UTF-16 offset 6)
    await py.wait_content({**EMPTY, "t": "a😀Xb€Yc"})
    await n1.delete_text("t", 1, 2)  # the emoji: two UTF-16 units
    await py.wait_content({**EMPTY, "t": "aXb€Yc"})
    await py.client.flushed()
    await late_joiners_see(peers, {**EMPTY, "t": "aXb€Yc"})


# -- 2. offline edits ---------------------------------------------------------------------------------
async def test_node_client_offline_edits_merge_on_reconnect(peers: Peers) -> None:
    n1 = await peers.node(name="n1")
    n2 = await peers.node(name="n2")
    py = await peers.python()
    await n1.transact(
        {"op": "insertText", "root": "t", "text": "shared ✓"},
        {"op": "arrayInsert", "root": "a", "values": ["seed"]},
    )
    await converge("seed", [n1, n2], [py])

    await n1.disconnect()
    await n1.wait_for(connected=False)
    await n1.transact(
        {"op": "insertText", "root": "t", "index": 0, "text": "[n1 offline 🛫]"},
        {"op": "mapSet", "root": "m", "key": "offline", "value": "n1"},
        {"op": "arrayInsert", "root": "a", "index": 0, "values": ["n1-offline"]},
        {
            "op": "deleteText",
            "root": "t",
            "index": len("[n1 offline 🛫]".encode("utf-16-le")) // 2,
            "length": 6,
        },
    )
    await n2.insert_text("t", "[n2 online]", index=0)
    py.text += "[py online ü]"
    py.map["online"] = "py"
    py.array.append("py-online")
    await py.client.flushed()
    await n2.wait_for(roots={"m": {"online": "py"}})
    offline_view = (await n1.dump())["roots"]
    assert "[n2 online]" not in offline_view["t"] and offline_view["m"] == {"offline": "n1"}

    await n1.connect()
    await n1.wait_synced()
    final = await converge("back", [n1, n2], [py])
    text = final["t"]
    assert Counter(text) == Counter("[n1 offline 🛫] ✓[n2 online][py online ü]"), text
    assert final["m"] == {"offline": "n1", "online": "py"}
    assert Counter(final["a"]) == Counter(["seed", "n1-offline", "py-online"])
    await late_joiners_see(peers, final)


async def test_python_client_offline_edits_merge_on_reconnect(peers: Peers) -> None:
    n1 = await peers.node(name="n1")
    doc = new_doc()
    # (No awareness state here: see test_reconnecting_python_client_is_not_locked_out below.)
    async with python_peer(peers.url(), doc) as py:
        py.text += "base·"
        await py.client.flushed()
        await n1.wait_for(roots={"t": "base·"})

    # Offline: the Python replica and the Node replica edit the same document independently.
    py.text.insert(0, "🐍py-offline|")
    py.map["who"] = {"py": True}
    py.array.extend(["p1", "p2"])
    await n1.transact(
        {"op": "insertText", "root": "t", "text": "|node-online"},
        {"op": "mapSet", "root": "m", "key": "node", "value": 1},
        {"op": "arrayInsert", "root": "a", "index": 0, "values": ["n1"]},
    )

    async with python_peer(peers.url(), doc) as py:
        await n1.wait_for(roots={"m": {"who": {"py": True}, "node": 1}})
        final = await converge("back", [n1], [py])
        assert final["t"] == "🐍py-offline|base·|node-online"
        assert Counter(final["a"]) == Counter(["n1", "p1", "p2"])
        py.text += "!"
        await py.client.flushed()
        await n1.wait_for(roots={"t": "🐍py-offline|base·|node-online!"})
        final = await converge("after", [n1], [py])
    await late_joiners_see(peers, final)


# -- 3. late joiners --------------------------------------------------------------------------------
async def test_late_joiners_get_the_full_state(peers: Peers) -> None:
    n1 = await peers.node(name="n1")
    py = await peers.python()
    # Many small updates from both kinds of client (the server's log, not one snapshot).
    for i in range(40):
        await n1.transact(
            {"op": "insertText", "root": "t", "text": f"n{i}é "},
            {"op": "mapSet", "root": "m", "key": f"n{i}", "value": [i, "ñ"]},
        )
        py.text += f"p{i}😀 "
        py.array.append({"i": i})
    await n1.delete_text("t", 0, 3)
    del py.map["n0"]
    await py.client.flushed()
    final = await converge("done", [n1], [py])
    assert len(final["a"]) == 40 and len(final["m"]) == 39
    await late_joiners_see(peers, final)
    # Late joiners after every earlier client left: the room is reloaded from the database.
    await peers.close_all()
    await late_joiners_see(peers, final)


# -- 4. awareness --------------------------------------------------------------------------------------
async def test_awareness_reaches_everyone_and_is_removed_on_disconnect(peers: Peers) -> None:
    n1 = await peers.node(name="n1")
    n2 = await peers.node(name="n2")
    py = await peers.python()
    id1, id2, idp = str(n1.client_id), str(n2.client_id), str(py.client_id)

    ana = {"user": {"name": "Ana 🦊", "color": "#f00"}, "cursor": {"anchor": 3, "head": 5}}
    await n1.set_awareness(ana)
    await n2.wait_for(awarenessStates={id1: ana})
    await py.until(lambda: py.client.remote_states.get(n1.client_id) == ana, what="n1's awareness")

    bob = {"user": {"name": "Bob"}, "cursor": None}
    py.client.set_awareness(bob)
    await n1.wait_for(awarenessStates={idp: bob})
    await n2.wait_for(awarenessStates={idp: bob})

    # A late joiner gets the current states from the server.
    n3 = await peers.node(name="n3")
    await n3.wait_for(awarenessStates={id1: ana, idp: bob})

    # A killed process says no goodbye: the server broadcasts the removal of its client id.
    cy = {"user": {"name": "Cy"}}
    await n2.set_awareness(cy)
    await n1.wait_for(awarenessStates={id2: cy})
    await n3.wait_for(awarenessStates={id2: cy})
    await py.until(lambda: py.client.remote_states.get(n2.client_id) == cy, what="n2's awareness")
    await n2.kill()
    await n1.wait_for(awarenessLacks=[id2])
    await n3.wait_for(awarenessLacks=[id2])
    await py.until(lambda: n2.client_id not in py.client.remote_states, what="killed n2's awareness removed")

    # provider.disconnect() (the provider sends its own removal, the server relays it). Reconnecting
    # the same provider afterwards: see the regression tests at the end.
    await n1.disconnect()
    await n3.wait_for(awarenessLacks=[id1])
    await py.until(lambda: n1.client_id not in py.client.remote_states, what="n1's awareness removed")

    # The Python client clears its state: removed from the Node clients.
    py.client.set_awareness(None)
    await n3.wait_for(awarenessLacks=[idp])
    # ... and when it closes after setting one.
    async with python_peer(peers.url()) as py2:
        py2.client.set_awareness({"user": "py2"})
        await n3.wait_for(awarenessStates={str(py2.client_id): {"user": "py2"}})
        await py.until(lambda: py.client.remote_states.get(py2.client_id) == {"user": "py2"}, what="py2")
    await n3.wait_for(awarenessLacks=[str(py2.client_id)])
    await py.until(lambda: py2.client_id not in py.client.remote_states, what="py2's awareness removed")
    assert (await n3.dump())["awareness"] == {str(n3.client_id): {}}


# -- 5. restart ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_server_restart_does_not_duplicate_content(peers: Peers, how: str) -> None:
    """`stop`: SIGTERM, graceful shutdown; `kill`: SIGKILL (what was acknowledged must survive)."""
    stop = peers.server.stop if how == "stop" else peers.server.kill
    n1 = await peers.node(name="n1")
    n2 = await peers.node(name="n2")
    py = await peers.python(reconnect=True)
    await n1.transact(
        {"op": "insertText", "root": "t", "text": "Ünïcödé text 📝 before restart."},
        {"op": "mapSet", "root": "m", "key": "k", "value": "v"},
        {"op": "arrayInsert", "root": "a", "values": ["a", "b"]},
    )
    py.text += " Python was here ✓."
    await py.client.flushed()
    before = await converge("before", [n1, n2], [py])
    step2_before = py.step2_received

    await asyncio.to_thread(stop)
    await n1.wait_for(connected=False)
    await n2.wait_for(connected=False)
    await py.wait_disconnected()
    # Edits while the server is down: they travel in each client's sync step 2 on reconnect.
    await n1.insert_text("t", " [n1 during outage]")
    py.array.append("py during outage")
    await asyncio.to_thread(peers.server.start)

    await n1.wait_synced(timeout=15)
    await n2.wait_synced(timeout=15)
    await py.wait_resynced(step2_before)
    await py.client.flushed()
    after = await converge("after", [n1, n2], [py])

    expected_text = before["t"] + " [n1 during outage]"
    assert after["t"] == expected_text, after["t"]
    assert after["t"].count("before restart") == 1
    assert after["m"] == before["m"]
    assert after["a"] == ["a", "b", "py during outage"]
    await late_joiners_see(peers, after)

    if how == "kill":
        return
    # A second restart with nobody editing: the old replicas resync without duplicating anything.
    step2_before = py.step2_received
    await asyncio.to_thread(stop)
    await n1.wait_for(connected=False)
    await n2.wait_for(connected=False)
    await py.wait_disconnected()
    await asyncio.to_thread(peers.server.start)
    await n1.wait_synced(timeout=15)
    await n2.wait_synced(timeout=15)
    await py.wait_resynced(step2_before)
    again = await converge("again", [n1, n2], [py])
    assert without_barrier(again) == without_barrier(after)
    await late_joiners_see(peers, again)


# -- 6. no unknown message types for stock clients -------------------------------------------------------
async def test_stock_clients_get_no_unknown_message_types(peers: Peers) -> None:
    n1 = await peers.node(name="n1")
    py = await peers.python()  # asks for acks: the server acknowledges each of its updates
    for i in range(5):
        await n1.insert_text("t", f"n{i}")
        py.text += f"p{i}"
        await py.client.flushed()
    py.client.set_awareness({"p": 1})
    await n1.set_awareness({"n": 1})
    await converge("done", [n1], [py])
    assert n1.unknown_message_errors() == []
    assert n1.console_errors() == []

    # The detection is not vacuous: a stock provider that opts in to acks does see them as unknown.
    opted_in = await peers.node(name="acks-opt-in", params={"acks": "1"}, expect_unknown_messages=True)
    await opted_in.insert_text("t", "!")
    dump = await opted_in.wait_for(consoleIncludes=UNKNOWN_MESSAGE)
    assert any(UNKNOWN_MESSAGE in e["text"] for e in dump["consoleErrors"])
    await converge("end", [n1, opted_in], [py])
    assert n1.unknown_message_errors() == []


# -- 7. regressions: echoed awareness must not lock a reconnecting client out -------------------------------
# The providers echo the awareness removal the server broadcasts when a connection drops; the echo
# arrives after the release. It must not let the echoing connection claim the dropped client's id:
# the client, back, would have its awareness dropped as spoofing and its edits refused (1007) forever.


async def test_node_client_can_edit_after_a_network_drop(peers: Peers) -> None:
    n1 = await peers.node(name="n1")
    n2 = await peers.node(name="n2")
    await n1.set_awareness({"user": "n1"})
    await n1.insert_text("t", "a")
    await n2.wait_for(roots={"t": "a"}, awarenessStates={str(n1.client_id): {"user": "n1"}})
    await n1.drop_socket()  # no close frame: the server releases n1's id and broadcasts its removal
    await n2.wait_for(awarenessLacks=[n1.client_id])
    await n1.wait_synced()
    await n1.insert_text("t", "b")
    await n1.set_awareness({"user": "n1", "back": True})
    await n2.wait_for(
        timeout=3, roots={"t": "ab"}, awarenessStates={str(n1.client_id): {"user": "n1", "back": True}}
    )


async def test_reconnecting_python_client_is_not_locked_out(peers: Peers) -> None:
    n1 = await peers.node(name="n1")
    py = await peers.python(reconnect=True)
    py.client.set_awareness({"user": "py"})
    await n1.wait_for(awarenessStates={str(py.client_id): {"user": "py"}})
    py.text += "a"
    await py.client.flushed()
    step2_before = py.step2_received
    py.client.interrupt()  # a network failure: no close frame, no awareness goodbye
    await n1.wait_for(awarenessLacks=[py.client_id])
    await py.wait_resynced(step2_before)
    py.text += "b"
    await py.client.flushed(timeout=3)
    await n1.wait_for(timeout=3, roots={"t": "ab"}, awarenessStates={str(py.client_id): {"user": "py"}})
