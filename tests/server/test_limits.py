"""Limits: token buckets, connections per address, idle timeout, throttling, document size, offloading."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from client import connect
from crdt.awareness import AwarenessEntry, AwarenessLimits, encode_awareness
from crdt.messages import Ack, AwarenessMessage, SyncUpdate, decode_message, encode_message
from crdt.validation import UpdateLimits
from persistence.memory import MemoryStorage
from server.limits import TokenBucket
from server.rooms import RoomRegistry
from server.settings import Settings
from tests.support.server_process import running_server


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    assert all(bucket.take(1, now=0.0) == 0 for _ in range(5))
    assert bucket.take(1, now=0.0) == pytest.approx(0.1)
    assert bucket.take(1, now=1.0) == 0  # refilled
    assert TokenBucket(rate=0, burst=0).take(100, now=0.0) == 0  # rate 0: unlimited


def test_a_token_bucket_debt_is_paid_back_not_forgiven() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    for _ in range(5):
        bucket.take(1, now=0.0)
    assert bucket.take(1, now=0.0) == pytest.approx(0.1)  # in debt
    assert bucket.take(1, now=0.1) == pytest.approx(0.1)  # the wait paid the debt only: no new burst
    sent = sum(bucket.take(1, now=0.2) == 0 for _ in range(100))
    assert sent == 0, f"{sent} messages passed right after a throttle"


def test_try_take_refuses_without_debt() -> None:
    bucket = TokenBucket(rate=10, burst=2)
    assert [bucket.try_take(1, now=0.0) for _ in range(2)] == [0, 0]
    assert bucket.try_take(1, now=0.0) == pytest.approx(0.1)
    assert bucket.try_take(1, now=0.05) == pytest.approx(0.05)  # refusals cost nothing
    assert bucket.try_take(1, now=0.1) == 0


async def closed_code(ws: object, timeout: float = 10) -> int | None:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()  # type: ignore[attr-defined]
    except ConnectionClosed:
        pass
    return ws.close_code  # type: ignore[attr-defined]


async def test_connections_per_address(tmp_path: Path) -> None:
    with running_server(tmp_path, None, "--connections-per-address", "3") as server:
        sockets = [await ws_connect(server.ws(f"cap/{i}")) for i in range(3)]
        with pytest.raises(InvalidStatus) as refused:
            await ws_connect(server.ws("cap/x"))
        assert refused.value.response.status_code == 429
        await sockets[0].close()
        await sockets[0].wait_closed()
        again = await ws_connect(server.ws("cap/again"))  # a slot was freed
        for ws in [*sockets[1:], again]:
            await ws.close()


async def test_idle_connection_is_closed(tmp_path: Path) -> None:
    with running_server(tmp_path, None, "--idle-timeout", "1", "--ping-interval", "0") as server:
        async with ws_connect(server.ws("idle"), ping_interval=None) as ws:
            assert await closed_code(ws) == 1001


async def test_server_pings_keep_a_quiet_client_alive(tmp_path: Path) -> None:
    with running_server(tmp_path, None, "--idle-timeout", "1.5", "--ping-interval", "0.3") as server:
        doc: Doc = Doc()
        async with connect(server.ws("quiet"), doc) as client:
            await asyncio.sleep(3)  # silence twice the idle timeout: the pongs keep it open
            assert client.connections == 1


async def test_flood_is_throttled_not_dropped(tmp_path: Path) -> None:
    args = ("--message-rate", "200", "--message-burst", "20")
    with running_server(tmp_path, None, *args) as server:
        doc: Doc = Doc()
        async with connect(server.ws("flood"), doc) as client:
            text = doc.get("t", type=Text)
            for i in range(300):
                text.insert(i, "x")  # 300 updates, far over the burst
            await client.flushed(timeout=30)
        assert server.wait_for_log("limit message_rate triggered")
        late: Doc = Doc()
        async with connect(server.ws("flood"), late):
            assert str(late.get("t", type=Text)) == "x" * 300


async def test_large_update_is_validated_off_the_event_loop(tmp_path: Path) -> None:
    with running_server(tmp_path, None, "--offload-update-size", "1000") as server:
        doc: Doc = Doc()
        async with connect(server.ws("big"), doc) as client:
            doc.get("t", type=Text).insert(0, "y" * 50_000)
            await client.flushed(timeout=30)
        bad = encode_message(SyncUpdate(b"\x01\x01" + b"\xff" * 5000))
        async with ws_connect(server.ws("big"), max_size=None) as ws:
            await ws.send(bad)
            assert await closed_code(ws) == 1007
        late: Doc = Doc()
        async with connect(server.ws("big"), late):
            assert len(str(late.get("t", type=Text))) == 50_000


async def test_document_size_limit_refuses_growth(tmp_path: Path) -> None:
    with running_server(
        tmp_path, None, "--max-document-size", "2000", "--snapshot-min-updates", "1"
    ) as server:
        doc: Doc = Doc()
        async with connect(server.ws("full"), doc, reconnect=False) as client:
            doc.get("t", type=Text).insert(0, "z" * 3000)
            await client.flushed()
            doc.get("t", type=Text).insert(0, "more")
            await client.wait_closed(timeout=10)
            assert client.closed_reason is not None and "4413" in client.closed_reason


async def test_awareness_spoofing_and_floods_do_not_reach_others(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        doc: Doc = Doc()
        async with connect(server.ws("aw"), doc) as victim:
            victim.set_awareness({"user": "victim"})
            async with ws_connect(server.ws("aw")) as attacker:
                spoof = AwarenessEntry(victim.client_id, 10_000, '{"user":"mallory"}')
                await attacker.send(encode_message(AwarenessMessage(encode_awareness([spoof]))))
                flood = [AwarenessEntry(i, 1, "{}") for i in range(1, 60)]
                await attacker.send(encode_message(AwarenessMessage(encode_awareness(flood))))
                observer_doc: Doc = Doc()
                async with connect(server.ws("aw"), observer_doc) as observer:
                    await observer.wait_for(lambda: victim.client_id in observer.remote_states)
                    assert observer.remote_states[victim.client_id] == {"user": "victim"}
                    assert len(observer.remote_states) <= 2  # the attacker may claim one id, its own


async def test_update_depth_and_awareness_caps_are_settings_handed_to_every_room() -> None:
    settings = Settings.from_environment(
        {
            "COCREATE_MAX_UPDATE_DEPTH": "7",
            "COCREATE_AWARENESS_MAX_STATE_BYTES": "100",
            "COCREATE_AWARENESS_MAX_ENTRIES": "3",
            "COCREATE_AWARENESS_MAX_CLIENTS": "2",
        }
    )
    registry = RoomRegistry(MemoryStorage(), settings, time.time)
    room = registry.enter("configured")
    assert room.limits == UpdateLimits(max_depth=7) and room.gate.limits is room.limits
    assert room.awareness.limits == AwarenessLimits(
        max_entries=3, max_state_bytes=100, max_clients_per_connection=2
    )
    await registry.close()
    with pytest.raises(ValueError, match="max_update_depth"):
        Settings(max_update_depth=5000)  # deep enough to crash pycrdt: refused at start


async def test_max_update_depth_refuses_a_deeper_update(tmp_path: Path) -> None:
    def nested(depth: int) -> bytes:  # one map entry whose Any value is `depth` arrays deep
        return bytes.fromhex("010101000801016101" + "7501" * depth + "7e00")

    with running_server(tmp_path, None, "--max-update-depth", "8") as server:
        async with ws_connect(server.ws("depth/ok", "acks=1")) as ws:
            await ws.send(encode_message(SyncUpdate(nested(6))))
            async with asyncio.timeout(10):  # accepted: committed and acknowledged
                while True:
                    message = decode_message(await ws.recv())  # type: ignore[arg-type]
                    if isinstance(message, Ack) and message.count >= 1:
                        break
            await ws.send(encode_message(SyncUpdate(nested(9))))
            assert await closed_code(ws) == 1007
