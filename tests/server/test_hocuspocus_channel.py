"""The Hocuspocus channel in-process (real hub and rooms, fake socket): handshake order, SyncStatus only
after the commit, read-only, auth, multiplexing, Close, caps, names, stateless, ping, guard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from pycrdt import Doc, Text

from crdt.hocuspocus import (
    Authenticated,
    Close,
    DocumentMessage,
    PermissionDenied,
    Stateless,
    SyncStatus,
    Token,
)
from crdt.messages import AwarenessMessage, QueryAwareness, SyncStep1, SyncStep2, SyncUpdate
from server.auth import Role
from server.ops_api import register_server_metrics
from tests.support.hocuspocus import Client, InProcessServer, start_server

ROLES = {"ana": {"*": Role.EDITOR}, "vic": {"*": Role.VIEWER}, "nobody": {}}


@pytest.fixture
async def server() -> AsyncIterator[InProcessServer]:
    running = start_server(ROLES, hocuspocus_ping_interval=0)
    yield running
    await running.close()


def text_update(content: str, client_id: int = 1) -> bytes:
    doc: Doc[Any] = Doc(client_id=client_id)
    doc.get("t", type=Text).insert(0, content)
    return doc.get_update()


def is_(kind: type, **fields: Any) -> Any:
    return lambda m: isinstance(m, kind) and all(getattr(m, k) == v for k, v in fields.items())


async def opened(client: Client, address: str, token: str = "ana") -> None:
    """Authenticate `address` and complete the handshake as a provider does."""
    client.send(address, Token(token, "4.8.0"), SyncStep1(b"\x00"))
    await client.wait_for(address, is_(SyncStep2), "the server's step 2")
    client.send(address, SyncStep2(b"\x00\x00"))
    await client.wait_for(address, is_(SyncStatus), "the status of the client's step 2")


async def test_handshake_authenticated_then_step1_then_step2(server: InProcessServer) -> None:
    client = server.connect()
    client.send("doc", Token("ana", "4.8.0"), SyncStep1(b"\x00"))  # both before the auth completes
    await client.wait_for("doc", is_(SyncStep2))
    kinds = [type(m) for m in client.messages("doc")]
    assert kinds == [Authenticated, SyncStep1, SyncStep2]
    assert client.messages("doc")[0] == Authenticated("read-write")
    client.send("doc", SyncStep2(b"\x00\x00"))
    await client.wait_for("doc", is_(SyncStatus, applied=True))


async def test_sync_status_is_sent_only_after_the_commit(server: InProcessServer) -> None:
    client = server.connect()
    await opened(client, "doc")
    server.storage.gate.clear()
    server.storage.appending.clear()
    client.send("doc", SyncUpdate(text_update("hello")))
    await asyncio.wait_for(server.storage.appending.wait(), 5)
    assert [m for m in client.messages("doc") if isinstance(m, SyncStatus)] == [SyncStatus(True)]
    assert await server.storage.rows("doc") == 0  # the commit is held: no status for the update yet
    server.storage.gate.set()
    await server.signal.until(lambda: client.messages("doc").count(SyncStatus(True)) == 2)
    assert await server.storage.rows("doc") == 1


async def test_read_only_handshake_is_applied_but_edits_are_refused(server: InProcessServer) -> None:
    editor = server.connect()
    await opened(editor, "doc")
    editor.send("doc", SyncUpdate(text_update("kept")))
    await server.signal.until(lambda: editor.messages("doc").count(SyncStatus(True)) == 2)
    viewer = server.connect()
    viewer.send("doc", Token("vic"), SyncStep1(b"\x00"))
    await viewer.wait_for("doc", is_(SyncStep2))
    assert viewer.messages("doc")[0] == Authenticated("readonly")
    server_copy = viewer.messages("doc")[-1]
    assert isinstance(server_copy, SyncStep2)
    viewer.send("doc", SyncStep2(server_copy.update))  # holds nothing new: "applied"
    await viewer.wait_for("doc", is_(SyncStatus, applied=True))
    viewer.send("doc", SyncUpdate(text_update("vandal", client_id=9)), SyncStep2(text_update("x", 8)))
    await server.signal.until(lambda: viewer.messages("doc").count(SyncStatus(False)) == 2)
    assert await server.storage.rows("doc") == 1


async def test_refused_auth_drops_the_documents_frames_until_a_new_auth(server: InProcessServer) -> None:
    client = server.connect()
    client.send("doc", Token("stranger"), SyncStep1(b"\x00"))
    await client.wait_for("doc", is_(PermissionDenied, reason="unknown token"))
    client.send("doc", SyncUpdate(text_update("dropped")))
    client.send("other", Token("nobody"))
    await client.wait_for("other", is_(PermissionDenied))
    assert client.wire.open and client.channel.pending_messages == 0
    assert await server.storage.rows("doc") == 0
    await opened(client, "doc")  # a new Auth is checked again
    assert client.messages("doc").count(Authenticated("read-write")) == 1


async def test_three_documents_on_one_socket(server: InProcessServer) -> None:
    multi, single = server.connect(), server.connect()
    for address in ("a", "b", "c"):
        await opened(multi, address)
    await opened(single, "b")
    single.send("b", SyncUpdate(text_update("to b")))
    await multi.wait_for("b", is_(SyncUpdate))
    multi.send("c", SyncUpdate(text_update("to c", 2)))
    await multi.wait_for("c", lambda m: m == SyncStatus(True) and multi.messages("c").count(m) == 2)
    assert not any(isinstance(m, SyncUpdate) for m in multi.messages("a") + multi.messages("c"))
    assert not any(isinstance(m, SyncUpdate) for m in single.messages("b"))  # the sender's own edit


async def test_peers_of_one_document_share_one_encoded_frame(server: InProcessServer) -> None:
    first, second, writer = server.connect(), server.connect(), server.connect()
    for client in (first, second, writer):
        await opened(client, "shared")
    writer.send("shared", SyncUpdate(text_update("once")))
    for client in (first, second):
        await client.wait_for("shared", is_(SyncUpdate))
    assert first.wire.raw[-1] is second.wire.raw[-1]


async def test_close_leaves_that_document_only(server: InProcessServer) -> None:
    leaving, staying = server.connect(), server.connect()
    await opened(leaving, "x")
    await opened(leaving, "y")
    await opened(staying, "x")
    leaving.send("x", AwarenessMessage(b'\x01\x2a\x01\x0b{"u":"ana"}'))
    await staying.wait_for("x", is_(AwarenessMessage))
    leaving.send("x", Close())
    await staying.wait_for("x", is_(AwarenessMessage, payload=b"\x01\x2a\x02\x04null"))
    leaving.send("x", SyncUpdate(text_update("after close")))  # pending again: never applied
    leaving.send("y", SyncUpdate(text_update("still open")))
    await server.signal.until(lambda: leaving.messages("y").count(SyncStatus(True)) == 2)
    assert await server.storage.rows("x") == 0 and await server.storage.rows("y") == 1


@pytest.mark.parametrize(
    ("settings", "flood", "reason"),
    [
        ({"hocuspocus_pending_documents": 3}, [(f"d{i}", SyncStep1(b"\x00")) for i in range(4)], "awaiting"),
        ({"hocuspocus_pending_messages": 5}, [("d", SyncStep1(b"\x00"))] * 6, "messages"),
        ({"hocuspocus_pending_bytes": 100}, [("d", Stateless("x" * 120))], "bytes"),
        ({"hocuspocus_max_documents": 2}, [(f"n{i}", Token("nobody")) for i in range(3)], "documents"),
    ],
)
async def test_caps_close_the_socket_with_1008_and_count_the_limit(
    settings: dict[str, int], flood: list[tuple[str, DocumentMessage]], reason: str
) -> None:
    server = start_server(ROLES, hocuspocus_ping_interval=0, **settings)
    register_server_metrics(server.hub)
    try:
        flooder, bystander = server.connect(), server.connect()
        await opened(bystander, "calm")
        for address, message in flood:
            flooder.send(address, message)
        await flooder.wait_closed()
        assert flooder.wire.close_code == 1008 and reason in flooder.wire.close_reason
        limit = next(iter(settings)).replace("_max_", "_")  # e.g. hocuspocus_pending_bytes
        scraped = server.hub.metrics.render().decode()
        assert f'cocreate_limit_triggered_total{{limit="{limit}"}} 1.0' in scraped
        bystander.send("calm", SyncUpdate(text_update("fine")))
        await server.signal.until(lambda: bystander.messages("calm").count(SyncStatus(True)) == 2)
    finally:
        await server.close()


@pytest.mark.parametrize(
    "address", ["", "a//b", "a/../b", "/x", "n" * 201, "tab\there", "doc\x00", "doc\x00" + "s" * 65]
)
async def test_invalid_names_are_refused_per_document(server: InProcessServer, address: str) -> None:
    client = server.connect()
    client.send(address, Token("ana"), SyncStep1(b"\x00"))
    await client.wait_for(address, is_(PermissionDenied))
    refusal = client.messages(address)[0]
    assert isinstance(refusal, PermissionDenied)
    assert "invalid" in refusal.reason and client.wire.open
    await opened(client, "fine")


async def test_session_aware_addresses_share_the_document(server: InProcessServer) -> None:
    one, two = server.connect(), server.connect()
    await opened(one, "doc\x00sessionA")
    await opened(two, "doc")
    two.send("doc", SyncUpdate(text_update("hi")))
    await one.wait_for("doc\x00sessionA", is_(SyncUpdate))


async def test_query_awareness_answers_every_state(server: InProcessServer) -> None:
    present, asking = server.connect(), server.connect()
    await opened(present, "doc")
    present.send("doc", AwarenessMessage(b'\x01\x07\x01\x0b{"u":"ana"}'))
    await present.wait_for("doc", is_(AwarenessMessage))  # echoed to the sender too
    await opened(asking, "doc")
    before = len(asking.messages("doc"))
    asking.send("doc", QueryAwareness())
    await server.signal.until(lambda: len(asking.messages("doc")) > before)
    assert asking.messages("doc")[-1] == AwarenessMessage(b'\x01\x07\x01\x0b{"u":"ana"}')


async def test_stateless_goes_to_the_documents_other_peers(server: InProcessServer) -> None:
    sender, receiver, elsewhere = server.connect(), server.connect(), server.connect()
    await opened(sender, "doc")
    await opened(receiver, "doc")
    await opened(elsewhere, "other")
    sender.send("doc", Stateless('{ "cocreate" : "event", "kind": "comment.deleted", "data": {}}'))  # spoofed
    sender.send("doc", Stateless('{"hello":1}'))
    await receiver.wait_for("doc", is_(Stateless, payload='{"hello":1}'))
    assert [m for m in receiver.messages("doc") if isinstance(m, Stateless)] == [Stateless('{"hello":1}')]
    assert not [m for m in sender.messages("doc") + elsewhere.messages("other") if isinstance(m, Stateless)]


async def test_document_events_reach_that_documents_peers_as_stateless(server: InProcessServer) -> None:
    first, second, elsewhere = server.connect(), server.connect(), server.connect()
    await opened(first, "doc")
    await opened(first, "doc\x00session-2")  # the same document under a session-aware address
    await opened(second, "doc")
    await opened(elsewhere, "other")
    server.hub.events.publish("doc", "comment.created", {"id": "c1", "body": "hi"})
    payload = '{"cocreate":"event","kind":"comment.created","data":{"id":"c1","body":"hi"}}'
    for client, address in ((first, "doc"), (first, "doc\x00session-2"), (second, "doc")):
        await client.wait_for(address, is_(Stateless, payload=payload), f"the event at {address!r}")
    assert not [m for m in elsewhere.messages("other") if isinstance(m, Stateless)]
    second.disconnect()
    first.send("doc", Close())
    first.send("doc\x00session-2", Close())
    assert set(server.endpoint.relay._unlisten) == {"other"}  # the last peer of "doc" stopped listening


async def test_ping_only_for_version_4_providers() -> None:
    server = start_server(ROLES, hocuspocus_ping_interval=0.01)
    try:
        modern, legacy = server.connect(), server.connect()
        modern.send("doc", Token("ana", "4.8.0"))
        legacy.send("doc", Token("ana"))  # providers 2 and 3 send no version and cannot parse a ping
        await server.signal.until(lambda: modern.pings() >= 3, what="three pings")
        assert legacy.pings() == 0
        modern.channel.receive(b"\x0a")  # Pong: nothing happens
        assert modern.wire.open
    finally:
        await server.close()


async def test_disconnect_leaves_every_room(server: InProcessServer) -> None:
    client = server.connect()
    await opened(client, "a")
    await opened(client, "b")
    rooms = [server.hub.registry.get(name) for name in ("a", "b")]
    client.disconnect()
    for room in rooms:
        assert room is not None
        await asyncio.wait_for(room.finished.wait(), 5)


async def test_room_closing_a_document(server: InProcessServer) -> None:
    client = server.connect()
    await opened(client, "gone")
    await opened(client, "busy")
    await server.hub.registry.evict("gone", 4404, "document deleted")
    await client.wait_for("gone", is_(Close, reason="document deleted"))
    assert client.wire.open
    await server.hub.registry.evict("busy", 1013, "storage unavailable")
    await client.wait_closed()
    assert client.wire.close_code == 1013  # retryable: the provider reconnects every document


async def test_live_access_changes(server: InProcessServer) -> None:
    client = server.connect()
    await opened(client, "doc", token="ana")
    await opened(client, "other", token="ana")

    def next_message(predicate: Callable[[Any], bool]) -> Coroutine[Any, Any, Any]:
        """The first message on "doc" after the ones seen so far (now) that satisfies `predicate`."""
        seen = len(client.messages("doc"))

        async def wait() -> Any:
            await client.signal.until(lambda: any(predicate(m) for m in client.messages("doc")[seen:]))
            return next(m for m in client.messages("doc")[seen:] if predicate(m))

        return wait()

    ROLES["ana"]["doc"] = Role.VIEWER
    try:
        seen = len(client.messages("doc"))
        await server.hub.guard.changed("doc")  # a downgrade closes that document only
        reason = "your role on this document changed to viewer; reconnect"
        await client.wait_for("doc", is_(Close, reason=reason))
        assert client.messages("doc")[seen:] == [PermissionDenied(reason), Close(reason)]
        client.send("other", SyncUpdate(text_update("still open")))
        await client.wait_for("other", is_(SyncStatus, applied=True))
        assert client.wire.open
        waiting = next_message(is_(Authenticated))
        client.send("doc", Token("ana", "4.8.0"), SyncStep1(b"\x00"))  # a new Auth: admitted read-only
        assert await waiting == Authenticated("readonly")
        waiting = next_message(is_(SyncStatus))
        client.send("doc", SyncStep2(b"\x00\x00"))  # completes the handshake as a provider does
        assert await waiting == SyncStatus(True)
        waiting = next_message(is_(SyncStatus))
        client.send("doc", SyncUpdate(text_update("refused")))
        assert await waiting == SyncStatus(False)
        ROLES["ana"]["doc"] = Role.EDITOR
        waiting = next_message(is_(Authenticated))
        await server.hub.guard.changed("doc")  # an upgrade applies in place
        assert await waiting == Authenticated("read-write")
        ROLES["ana"]["doc"] = Role.NONE
        waiting = next_message(is_(Close))
        await server.hub.guard.changed("doc")
        assert await waiting == Close("your access to this document was revoked")
        assert client.wire.open
    finally:
        del ROLES["ana"]["doc"]
