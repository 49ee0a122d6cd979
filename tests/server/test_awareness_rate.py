"""The awareness rate cap: a burst passes, a flood is coalesced to the newest state per client id."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from crdt.awareness import NULL_STATE, AwarenessEntry, AwarenessLimits, decode_awareness, encode_awareness
from crdt.errors import MessageTooLarge
from crdt.messages import AwarenessMessage, decode_message, encode_message
from server.awareness_rate import AwarenessThrottle
from tests.support.server_process import running_server

ME = "me"


def update(*entries: tuple[int, int, Any]) -> bytes:
    return encode_awareness(AwarenessEntry(c, k, json.dumps(s)) for c, k, s in entries)


def throttle(owners: dict[int, str] | None = None, max_entries: int = 64) -> AwarenessThrottle:
    owners = owners or {}
    limits = AwarenessLimits(max_entries=max_entries)
    return AwarenessThrottle(rate=10, burst=3, limits=limits, owner_of=owners.get, me=ME)


def test_a_burst_passes_unchanged_then_updates_are_held() -> None:
    pacing = throttle()
    sent = [update((1, k, {"n": k})) for k in range(1, 6)]
    assert [pacing.offer(p, now=0.0) for p in sent[:3]] == [(p, 0.0) for p in sent[:3]]
    relayed, wait = pacing.offer(sent[3], now=0.0)
    assert relayed is None and wait == pytest.approx(0.1)
    assert pacing.offer(sent[4], now=0.05) == (None, pytest.approx(0.05))
    assert pacing.dropped == 2
    assert pacing.release(now=0.06)[0] is None  # no token yet
    relayed, wait = pacing.release(now=0.1)
    assert relayed is not None and wait == 0
    assert decode_awareness(relayed) == [AwarenessEntry(1, 5, '{"n": 5}')]  # the newest only
    assert pacing.release(now=1.0) == (None, 0.0)  # nothing held


def test_held_entries_go_with_the_next_update_that_finds_a_token() -> None:
    pacing = throttle()
    for k in range(1, 4):
        pacing.offer(update((1, k, {"n": k})), now=0.0)
    pacing.offer(update((1, 4, {"n": 4}), (2, 1, {"other": True})), now=0.0)
    relayed, _ = pacing.offer(update((1, 6, {"n": 6})), now=1.0)
    assert relayed is not None
    assert decode_awareness(relayed) == [
        AwarenessEntry(1, 6, '{"n": 6}'),
        AwarenessEntry(2, 1, '{"other": true}'),
    ]


def test_an_older_clock_never_replaces_a_newer_held_state_and_removals_are_kept() -> None:
    pacing = throttle()
    for k in range(1, 4):
        pacing.offer(update((1, k, {})), now=0.0)
    pacing.offer(update((1, 9, {"n": 9})), now=0.0)
    pacing.offer(update((1, 7, {"n": 7})), now=0.0)  # reordered echo: older
    pacing.offer(encode_awareness([AwarenessEntry(1, 10, NULL_STATE)]), now=0.0)
    relayed, _ = pacing.release(now=1.0)
    assert relayed is not None and decode_awareness(relayed) == [AwarenessEntry(1, 10, NULL_STATE)]


def test_echoes_of_other_connections_ids_are_not_held_and_held_ids_are_capped() -> None:
    pacing = throttle(owners={5: "someone else", 1: ME}, max_entries=3)
    for k in range(1, 4):
        pacing.offer(update((1, k, {})), now=0.0)
    pacing.offer(update((5, 1, {"echo": 1}), (1, 4, {"mine": 4})), now=0.0)
    pacing.offer(update(*((100 + i, 1, {}) for i in range(3))), now=0.0)  # only 2 more ids fit
    relayed, _ = pacing.release(now=1.0)
    assert relayed is not None
    assert [e.client_id for e in decode_awareness(relayed)] == [1, 100, 101]


def test_rate_zero_is_unlimited() -> None:
    pacing = AwarenessThrottle(0, 0, AwarenessLimits(), {}.get, ME)
    assert all(pacing.offer(b"\x00", now=0.0) == (b"\x00", 0.0) for _ in range(1000))


def test_every_update_is_checked_against_the_configured_caps() -> None:
    pacing = throttle(max_entries=2)
    with pytest.raises(MessageTooLarge):
        pacing.offer(update((1, 1, {}), (2, 1, {}), (3, 1, {})), now=0.0)  # even with tokens left


class Watcher:
    """A raw y-websocket connection counting the relayed awareness entries of one client id."""

    def __init__(self, ws: ClientConnection, client_id: int) -> None:
        self.ws = ws
        self.client_id = client_id
        self.relays = 0
        self.state: Any = None
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        limits = AwarenessLimits(max_entries=1 << 20)
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                if not isinstance(message, bytes) or message[:1] != b"\x01":
                    continue
                decoded = decode_message(message)
                assert isinstance(decoded, AwarenessMessage)
                for entry in decode_awareness(decoded.payload, limits):
                    if entry.client_id == self.client_id:
                        self.relays += 1
                        self.state = json.loads(entry.state)
                async with self._changed:
                    self._changed.notify_all()

    async def wait_state(self, expected: Any, timeout: float = 15.0) -> None:
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self.state == expected)
        except TimeoutError:
            raise AssertionError(f"state {self.state!r} never became {expected!r}") from None

    async def close(self) -> None:
        await self.ws.close()
        await self._task


async def test_an_awareness_flood_is_coalesced_and_the_last_state_wins_everywhere(tmp_path: Path) -> None:
    flooder_id, count = 4242, 3000
    with running_server(tmp_path, None) as server:
        url = server.ws("presence/flood")
        watcher = Watcher(await ws_connect(url, max_queue=None), flooder_id)
        flooder = Watcher(await ws_connect(url, max_queue=None), flooder_id)  # the sender hears relays too
        try:
            for clock in range(1, count + 1):
                payload = update((flooder_id, clock, {"cursor": clock}))
                await flooder.ws.send(encode_message(AwarenessMessage(payload)))
            last = {"cursor": count}
            await watcher.wait_state(last)
            await flooder.wait_state(last)
            late = Watcher(await ws_connect(url, max_queue=None), flooder_id)
            await late.wait_state(last)  # the room holds the final state too
            await late.close()
            assert watcher.relays < count // 10, f"{watcher.relays} of {count} updates relayed"
            pattern = r"limit awareness_rate triggered: conn=\d+ doc='presence/flood'"
            assert await asyncio.to_thread(server.wait_for_log, pattern, 5.0)
            assert server.log_text().count("limit awareness_rate triggered") == 1  # once per connection
        finally:
            await flooder.close()
            await watcher.close()
