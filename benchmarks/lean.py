"""Lean benchmark clients: the writer (pre-framed pycrdt updates) and receivers that timestamp updates."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks.traces import text_of
from benchmarks.wire import (
    COCREATE_ACK,
    STEP2,
    SYNC,
    UPDATE,
    Dialect,
    RawWebSocket,
    client_frame,
    open_websocket,
    primary_key,
    read_var_uint,
)


class Writer:
    """One connection that writes updates; counts cocreate acks (`?acks=1`) when the server sends them."""

    def __init__(self, dialect: Dialect, updates: list[bytes]) -> None:
        self.dialect = dialect
        self.frames = [client_frame(dialect.update(u)) for u in updates]  # masked before any timing
        self.sent_ns: list[int] = []
        self.synced = asyncio.Event()
        self.acked = 0
        self.update_messages = 0  # update-carrying messages sent (Step2 + Update), what acks count
        self._acks_changed = asyncio.Event()
        self.socket: RawWebSocket | None = None

    async def connect(self, port: int, path: str) -> None:
        self.socket = await open_websocket("127.0.0.1", port, path, self.on_message, bind=self._bind)
        for message in self.dialect.hello():
            self.socket.send(message)
        await asyncio.wait_for(self.synced.wait(), 30)

    def _bind(self, socket: RawWebSocket) -> None:
        self.socket = socket

    def on_message(self, message: bytes) -> None:
        kind, sub, payload = self.dialect.parse(message)
        if kind == COCREATE_ACK and not self.dialect.hocuspocus:
            self.acked = max(self.acked, read_var_uint(payload, 0)[0])
            self._acks_changed.set()
            return
        answers, _ = self.dialect.reply(message)
        for answer in answers:
            assert self.socket is not None
            self.socket.send(answer)
            self.update_messages += 1
        if kind == SYNC and sub == STEP2:
            self.synced.set()

    async def paced(self, rate: float, deadline: float) -> None:
        """Send update i at start + i / rate (bursting to catch up when the loop woke late)."""
        socket = self.socket
        assert socket is not None
        frames, sent = self.frames, self.sent_ns
        total = len(frames)
        start = time.monotonic()
        index = 0
        while index < total and time.monotonic() < deadline:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            while index < due:
                sent.append(time.monotonic_ns())
                socket.write_prebuilt(frames[index])
                index += 1
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
        self.update_messages += index

    async def windowed(
        self, window: int, delivered: Callable[[], int], progress: asyncio.Event, deadline: float
    ) -> None:
        """Keep at most `window` updates sent but not yet seen by the probe receiver (`delivered()`)."""
        socket = self.socket
        assert socket is not None
        frames, sent = self.frames, self.sent_ns
        total = len(frames)
        index = 0
        while index < total:
            while index < total and index - delivered() < window:
                sent.append(time.monotonic_ns())
                socket.write_prebuilt(frames[index])
                index += 1
            progress.clear()
            if index >= total:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(progress.wait(), remaining)
            except TimeoutError:
                break
        self.update_messages += index

    async def wait_acked(self, timeout: float) -> bool:
        """True once the server acknowledged every update-carrying message (cocreate only)."""
        deadline = time.monotonic() + timeout
        while self.acked < self.update_messages:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._acks_changed.clear()
            try:
                await asyncio.wait_for(self._acks_changed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()


@dataclass
class Receiver:
    """One connection to one room: answers SyncStep1, keeps the initial state, records updates."""

    dialect: Dialect
    expect: int
    done: asyncio.Event
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    initial: bytes | None = None
    arrivals: list[int] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    others: int = 0
    socket: RawWebSocket | None = None

    def __post_init__(self) -> None:
        self._prefix = len(self.dialect.prefix)

    def bind(self, socket: RawWebSocket) -> None:
        self.socket = socket

    def on_message(self, message: bytes) -> None:
        now = time.monotonic_ns()
        at = self._prefix
        if len(message) > at + 1 and message[at] == SYNC and message[at + 1] == UPDATE:
            self.arrivals.append(now)
            self.frames.append(message)
            if len(self.arrivals) == self.expect:
                self.done.set()
            return
        answers, payload = self.dialect.reply(message)
        for answer in answers:
            assert self.socket is not None
            self.socket.send(answer)
        if payload is not None and self.initial is None:
            self.initial = payload
            self.synced.set()
        else:
            self.others += 1

    def result(self) -> dict[str, Any]:
        """Keys and text of what arrived (parsed here, outside any timed window)."""
        updates = [self.dialect.parse(frame)[2] for frame in self.frames]
        text = text_of(([self.initial] if self.initial else []) + updates)
        return {
            "arrivals_ns": self.arrivals,
            "keys": [list(k) if k is not None else None for k in map(primary_key, updates)],
            "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "text_chars": len(text),
            "other_messages": self.others,
        }


async def connect_receivers(
    port: int, path: str, count: int, expect: int, dialect: Dialect, concurrency: int = 50
) -> list[Receiver]:
    """Open `count` receivers (at most `concurrency` handshakes at once) and wait until all synced."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Receiver:
        receiver = Receiver(dialect, expect, asyncio.Event())
        async with gate:
            receiver.socket = await open_websocket(
                "127.0.0.1", port, path, receiver.on_message, bind=receiver.bind
            )
            for message in dialect.hello():
                receiver.socket.send(message)
            await asyncio.wait_for(receiver.synced.wait(), 30)
        return receiver

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def wait_all(receivers: list[Receiver], timeout: float) -> bool:
    """True when every receiver got its expected count before `timeout` seconds."""
    try:
        await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in receivers)), timeout)
    except TimeoutError:
        return False
    return True


async def _main(config: dict[str, Any]) -> dict[str, Any]:
    dialect = Dialect(bool(config["hocuspocus"]), str(config["document"]))
    receivers = await connect_receivers(
        int(config["port"]), str(config["path"]), int(config["count"]), int(config["expect"]), dialect
    )
    print("ready", flush=True)
    complete = await wait_all(receivers, float(config["timeout"]))
    print("done" if complete else "timeout", flush=True)
    await asyncio.sleep(float(config.get("grace", 0.3)))  # catch duplicates that arrive late
    results = [r.result() for r in receivers]
    for receiver in receivers:
        if receiver.socket is not None:
            receiver.socket.close()
    return {"complete": complete, "receivers": results}


def main() -> int:
    """Entry point: `python -m benchmarks.lean '<json config>'` (see `fanout._spawn_receivers`)."""
    config = orjson.loads(sys.argv[1])
    results = asyncio.run(_main(config))
    Path(config["out"]).write_bytes(orjson.dumps(results))
    print("written", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
