"""WebSocketConnection's outbox: the frames of one event-loop turn leave in one socket write, in order."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from websockets.protocol import State

from persistence.memory import MemoryStorage
from server.events import EventBus
from server.frames import binary_frame
from server.hub import Hub
from server.rooms import RoomRegistry
from server.settings import Settings
from server.transport import WebSocketConnection
from tests.support.hocuspocus import TokenAuthenticator


class FakeTransport:
    """Records every socket write; `buffered` stands for what the kernel did not take yet."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.closing = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None: ...

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True


def open_connection(**settings: Any) -> tuple[WebSocketConnection, FakeTransport]:
    configured = replace(Settings(), **settings)
    storage = MemoryStorage()
    events = EventBus()
    registry = RoomRegistry(storage, configured, time.time, events)
    hub = Hub(registry, configured, storage, TokenAuthenticator({}), events, time.time)
    connection = WebSocketConnection(hub=hub, channels={})
    transport = FakeTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    connection.protocol.state = State.OPEN  # as after the handshake
    return connection, transport


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_the_first_frame_of_a_turn_leaves_at_once_the_rest_together_at_its_end() -> None:
    connection, transport = open_connection()
    frames = [binary_frame(bytes([i]) * (i + 1)) for i in range(5)]
    for frame in frames:
        connection.write(frame)
    assert transport.writes == [frames[0]]  # no added latency for a lone update ...
    await next_turn()
    assert transport.writes == [frames[0], b"".join(frames[1:])]  # ... one write for the rest of a burst
    connection.write(frames[0])  # a new turn
    assert transport.writes[2:] == [frames[0]]
    await next_turn()
    assert len(transport.writes) == 3
    connection.connection_lost(None)


async def test_written_frames_precede_the_close_frame() -> None:
    connection, transport = open_connection()
    connection.write(binary_frame(b"first"))
    connection.write(binary_frame(b"queued"))
    connection.close(1000, "bye")
    assert transport.writes[:2] == [binary_frame(b"first"), binary_frame(b"queued")]
    assert transport.writes[2][0] == 0x88  # the close frame, after the data
    connection.write(binary_frame(b"late"))  # after the close: dropped
    await next_turn()
    assert len(transport.writes) == 3
    connection.connection_lost(None)


async def test_a_reader_over_its_outbox_limit_is_closed_1013_at_the_flush() -> None:
    connection, transport = open_connection(outbox_limit=1000)
    connection.write(binary_frame(b"a"))
    connection.write(binary_frame(b"x" * 10))
    assert connection.open
    transport.buffered = 5000  # the reader stopped reading
    await next_turn()
    assert transport.writes[1] == binary_frame(b"x" * 10)
    assert not connection.open
    assert connection.protocol.close_sent is None or connection.protocol.close_sent.code == 1013
    assert transport.closing  # backed up: the TCP connection is dropped, not left to drain
    connection.connection_lost(None)
