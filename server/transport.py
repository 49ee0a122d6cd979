"""The websocket edge: an asyncio protocol (plugged into uvicorn as its websocket implementation) that
runs websockets' sans-I/O handshake and framing and hands binary messages to a protocol channel."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from http import HTTPStatus
from typing import Any, Protocol, cast

import orjson
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from server.frames import binary_frame
from server.hub import Admission, Hub, Rejection
from server.limits import TokenBucket

log = logging.getLogger("cocreate.ws")
_protocol_log = logging.getLogger("cocreate.ws.frames")
_protocol_log.setLevel(logging.WARNING)  # we log opens and closes ourselves, once each

_ids = itertools.count(1)
FRAMES_PER_TURN = 64
PARSE_PER_TURN = 16 * 1024


class Channel(Protocol):
    """A wire protocol spoken over one websocket (y-websocket, Hocuspocus)."""

    def receive(self, data: bytes) -> None:
        """One binary websocket message."""

    def closed(self) -> None:
        """The connection is gone; release everything."""

    def describe(self) -> str:
        """For the close log line, e.g. `doc='team/a' user=ana`."""


class ChannelFactory(Protocol):
    def __call__(self, connection: WebSocketConnection, admission: Admission) -> Channel: ...


class WebSocketConnection(asyncio.Protocol):
    """One websocket. uvicorn hands it the socket (and the request bytes) after the HTTP upgrade."""

    def __init__(
        self,
        config: Any = None,
        server_state: Any = None,
        app_state: Any = None,
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        hub: Hub,
        channels: dict[str, ChannelFactory],
    ) -> None:
        self.hub = hub
        self.channels = channels
        self.id = next(_ids)
        self.protocol = ServerProtocol(max_size=hub.settings.max_message_size, logger=_protocol_log)
        self.transport: asyncio.Transport | None = None
        self.channel: Channel | None = None
        self.peer_address = "-"
        self._server_connections: set[Any] | None = getattr(server_state, "connections", None)
        self._loop = _loop or asyncio.get_event_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._close_deadlines: list[asyncio.TimerHandle] = []  # abort if the close does not finish
        self._pending_input = 0
        self._closing = False
        self._finished = False  # the TCP connection is being closed
        self._close_code: int | None = None
        self._early_frames: deque[Frame] = deque()
        self._fragments: list[bytes] | None = None  # a fragmented message being reassembled
        self._unparsed: deque[bytes] = deque()  # bytes read but not yet fed to websockets
        self._unparsed_bytes = 0
        self._eof_pending = False
        settings = hub.settings
        self.peer_ip = "-"
        self._counted = False
        self._pause_reasons: set[str] = set()
        self._last_input = self._loop.time()
        self._ping_outstanding = False
        self._message_bucket = TokenBucket(settings.message_rate, settings.message_burst)
        byte_burst = max(settings.byte_rate, settings.max_message_size)
        self._byte_bucket = TokenBucket(settings.byte_rate, byte_burst)
        self._throttled_once = False
        self._too_big = False
        self._big_frame = 0  # the largest message over `outbox_limit` still draining (see write)
        self._opened_at = 0.0
        self._gauge = hub.metrics.connections("y-websocket")  # replaced by the admitted endpoint's

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's TCPTransport is no subclass
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_address = f"{peer[0]}:{peer[1]}"
            self.peer_ip = str(peer[0])
        if self._server_connections is not None:
            self._server_connections.add(self)
        self._timer = self._loop.call_later(self.hub.settings.handshake_timeout, self._handshake_timed_out)

    def data_received(self, data: bytes) -> None:
        self._last_input = self._loop.time()
        self._ping_outstanding = False
        self._unparsed.append(data)
        self._unparsed_bytes += len(data)
        if self._unparsed_bytes > PARSE_PER_TURN * 4:
            self._pause("parse")  # parsed in bounded turns: a read of tiny frames is thousands of them
        if len(self._unparsed) == 1:
            self._parse()

    def _parse(self) -> None:
        """Feed websockets at most PARSE_PER_TURN bytes per event-loop turn, then handle the events."""
        if not self._unparsed:
            return
        chunk = self._unparsed.popleft()
        if len(chunk) > PARSE_PER_TURN:
            self._unparsed.appendleft(chunk[PARSE_PER_TURN:])
            chunk = chunk[:PARSE_PER_TURN]
        self._unparsed_bytes -= len(chunk)
        protocol = self.protocol
        protocol.receive_data(chunk)
        if protocol.close_sent is not None and protocol.close_sent.code == 1009 and not self._too_big:
            self._too_big = True  # websockets refused a frame over `max_message_size` and closes 1009
            limit = self.hub.settings.max_message_size
            self.hub.limits.hit(
                "max_message_size", f"conn={self.id} peer={self.peer_address} over {limit} bytes"
            )
        try:
            for event in protocol.events_received():
                if isinstance(event, Request):
                    self._handshake(event)
                elif isinstance(event, Frame):
                    self._early_frames.append(event)  # handled in bounded turns by _drain
            if self.channel is not None:
                self._drain()
        except Exception:
            log.exception("conn=%d: internal error while handling input", self.id)
            self._unparsed.clear()
            if self.channel is None:
                self._reject(500, "internal_error", "the server failed to handle the handshake")
            else:
                self.close(1011, "internal error")
            return
        self._write_protocol_output()
        if self._unparsed:
            self._loop.call_soon(self._parse)
            return
        if "parse" in self._pause_reasons:
            self._resume("parse")
        if self._eof_pending:
            self._eof_pending = False
            self.eof_received()

    def eof_received(self) -> bool | None:
        if self._unparsed:
            self._eof_pending = True  # after the bytes still waiting to be parsed
            return None
        self.protocol.receive_eof()
        self._write_protocol_output()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for deadline in self._close_deadlines:  # else each keeps the closed transport for `close_timeout`
            deadline.cancel()
        self._close_deadlines.clear()
        if self._server_connections is not None:
            self._server_connections.discard(self)
        if self._counted:
            self._counted = False
            self.hub.closed(self.peer_ip, self)
        self._closing = True
        channel = self.channel
        if channel is not None:
            self.channel = None
            self.hub.connections -= 1
            self._gauge.dec()
            sent, received = self.protocol.close_sent, self.protocol.close_rcvd
            close = sent if sent is not None else received  # ours, also when websockets failed it
            code = self._close_code or (close.code if close is not None else 1006)
            duration = round(self._loop.time() - self._opened_at, 3)
            log.info(
                "close conn=%d %s peer=%s code=%s",
                self.id,
                channel.describe(),
                self.peer_address,
                code,
                extra={"conn": self.id, "peer": self.peer_address, "code": code, "duration": duration},
            )
            channel.closed()

    # -- uvicorn shutdown hook -------------------------------------------------------
    def stop_reading(self) -> None:
        """Shutdown, first step: take no more input (what was received is still committed and acked)."""
        self._pause("shutdown")

    def shutdown(self) -> None:
        if self.channel is None:
            if self.transport is not None:
                self.transport.close()
            return
        self.close(1012, "server restarting")

    # -- handshake -------------------------------------------------------------------
    def _handshake(self, request: Request) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.pause_reading()
        self.hub.track(asyncio.ensure_future(self._admit(request)))

    async def _admit(self, request: Request) -> None:
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        try:
            decision = self.hub.check_address(self.peer_ip) or await self.hub.admit(request.path, headers)
        except Exception:
            log.exception("conn=%d: admission failed", self.id)
            decision = Rejection(500, "internal_error", "the server failed to admit the connection")
        if self.transport is None or self.transport.is_closing():
            return
        if isinstance(decision, Rejection):
            self._reject(decision.status, decision.error, decision.detail)
            return
        response = self.protocol.accept(request)
        self.protocol.send_response(response)
        self._write_protocol_output()
        if response.status_code != 101:
            self._finish_after_flush()
            return
        self.hub.connections += 1
        self.hub.opened(self.peer_ip, self)
        self._counted = True
        self.channel = self.channels[decision.endpoint](self, decision)
        self._gauge = self.hub.metrics.connections(decision.endpoint)
        self._gauge.inc()
        self._opened_at = self._loop.time()
        log.info(
            "open conn=%d %s peer=%s",
            self.id,
            self.channel.describe(),
            self.peer_address,
            extra={
                "conn": self.id,
                "peer": self.peer_address,
                "endpoint": decision.endpoint,
                "document": decision.document or None,
                "user": decision.author or None,
            },
        )
        self.transport.resume_reading()
        self._drain()  # frames that came with the handshake, parsed before admission
        self._write_protocol_output()

    def _reject(self, status: int, error: str, detail: str) -> None:
        body = orjson.dumps({"error": error, "detail": detail})
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        self.protocol.send_response(Response(status, HTTPStatus(status).phrase, headers, body))
        self.hub.metrics.refused(error)
        log.info(
            "refused handshake peer=%s status=%d: %s",
            self.peer_address,
            status,
            detail,
            extra={"conn": self.id, "peer": self.peer_address, "status": status, "error": error},
        )
        self._write_protocol_output()
        self._finish_after_flush()

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self.channel is None and self.transport is not None:
            self.hub.limits.hit("handshake_timeout", f"websocket handshake peer={self.peer_address}")
            self.transport.abort()

    # -- frames ------------------------------------------------------------------------
    def _drain(self) -> None:
        """Handle queued frames, at most FRAMES_PER_TURN per event-loop turn and never while throttled,
        so one socket's flood cannot hold the loop (one read can carry thousands of small frames)."""
        frames = self._early_frames
        handled = 0
        while frames and self.channel is not None and not self._closing and "rate" not in self._pause_reasons:
            if handled == FRAMES_PER_TURN:
                self._loop.call_soon(self._drain)
                return
            self._frame(frames.popleft())
            handled += 1
        if self._closing:
            frames.clear()
        self._write_protocol_output()

    def _frame(self, frame: Frame) -> None:
        if self._closing or self.channel is None:
            return
        data = frame.data
        self._throttle(len(data))  # every frame counts: pings and fragments too
        opcode = frame.opcode
        if opcode is Opcode.TEXT or (opcode is Opcode.CONT and self._fragments is None):
            self.close(1003, "text frames are not supported; send binary messages")
            return
        if opcode is Opcode.BINARY or opcode is Opcode.CONT:
            chunk = data if isinstance(data, bytes) else bytes(data)
            if opcode is Opcode.BINARY and frame.fin:
                self.channel.receive(chunk)
                return
            parts = self._fragments if opcode is Opcode.CONT else None
            if parts is None:
                parts = self._fragments = []
            parts.append(chunk)
            if frame.fin:
                self._fragments = None
                self.channel.receive(b"".join(parts))

    # -- used by channels -----------------------------------------------------------------
    @property
    def open(self) -> bool:
        return not self._closing and self.protocol.state is State.OPEN

    def write(self, frame: bytes) -> None:
        """Write pre-encoded websocket frame(s); a reader over its outbox limit is closed (1013)."""
        transport = self.transport
        if transport is None or self._closing:
            return
        transport.write(frame)
        if len(frame) > self.hub.settings.outbox_limit:
            self._big_frame = max(self._big_frame, len(frame))
        if self._over_outbox_limit():
            log.warning("conn=%d: reader too slow, closing (outbox over limit)", self.id)
            self.hub.metrics.outbox_overflows.inc()
            self.close(1013, "too slow: reconnect to resync")

    def write_messages(self, payloads: list[bytes]) -> None:
        if payloads:
            self.write(b"".join(binary_frame(p) for p in payloads))

    def received(self, nbytes: int) -> None:
        """`nbytes` of input were queued for processing: stop reading when too much is pending."""
        self._pending_input += nbytes
        if self._pending_input > self.hub.settings.inbox_pause_bytes:
            self._pause("backlog")

    def processed(self, nbytes: int) -> None:
        self._pending_input -= nbytes
        if self._pending_input <= self.hub.settings.inbox_pause_bytes // 4:
            self._resume("backlog")

    def sweep(self, now: float) -> None:
        """Called every few seconds by the hub: ping a quiet peer, close an idle one."""
        if self.channel is None or self._closing or self._pause_reasons:
            return
        settings = self.hub.settings
        quiet = now - self._last_input
        if quiet > settings.idle_timeout:
            self.hub.limits.hit("idle_timeout", f"conn={self.id} quiet {quiet:.0f}s", quiet=True)
            self.close(1001, "idle timeout")
        elif settings.ping_interval > 0 and quiet > settings.ping_interval and not self._ping_outstanding:
            self._ping_outstanding = True
            self.protocol.send_ping(b"cocreate")
            self._write_protocol_output()

    def _throttle(self, nbytes: int) -> None:
        """Token buckets on messages and bytes: over the rate, stop reading for as long as it takes."""
        now = self._loop.time()
        wait = max(self._message_bucket.take(1, now), self._byte_bucket.take(nbytes, now))
        if wait <= 0 or "rate" in self._pause_reasons:
            return
        self.hub.limits.hit("message_rate", f"conn={self.id} throttled", quiet=self._throttled_once)
        self._throttled_once = True
        self._pause("rate")
        self._loop.call_later(wait, self._resume, "rate")

    def _pause(self, reason: str) -> None:
        if not self._pause_reasons and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self._pause_reasons.add(reason)

    def _resume(self, reason: str) -> None:
        if reason not in self._pause_reasons:
            return
        self._pause_reasons.discard(reason)
        if not self._pause_reasons and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        if reason == "rate" and self._early_frames:
            self._drain()

    def close(self, code: int, reason: str) -> None:
        transport = self.transport
        if self._closing or transport is None:
            return
        self._closing = True
        self._close_code = code
        backed_up = transport.get_write_buffer_size() > self.hub.settings.outbox_limit
        if self.protocol.state is not State.OPEN or backed_up:
            self._write_protocol_output()  # a close frame websockets queued after a protocol error
            self._finish_after_flush()
            return
        self.protocol.send_close(code, reason)
        self._write_protocol_output()
        # Keep reading (and discarding) until the peer's close frame: closing the socket while it is
        # still sending would reset the connection and destroy our close frame in flight.
        self._pause_reasons.clear()
        if not transport.is_closing():
            transport.resume_reading()
        self._abort_later(transport)

    # -- helpers ------------------------------------------------------------------------
    def _over_outbox_limit(self) -> bool:
        """Whether the unsent output exceeds `outbox_limit` beyond the largest single message still
        draining: one message bigger than the limit (a large document's step 2) always goes out, and
        the reader keeps receiving while it downloads; only a backlog on top of it is a slow reader."""
        assert self.transport is not None
        buffered = self.transport.get_write_buffer_size()
        limit = self.hub.settings.outbox_limit
        if buffered <= limit:
            self._big_frame = 0  # the big message drained
        return buffered > limit + self._big_frame

    def _write_protocol_output(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            elif not transport.is_closing():
                transport.write_eof() if transport.can_write_eof() else transport.close()
        if not self._finished and self._over_outbox_limit():
            log.warning("conn=%d: peer does not read its control frames, closing", self.id)
            if not self._closing:  # not already counted by `write`
                self.hub.metrics.outbox_overflows.inc()
            self._closing = True
            self._finish_after_flush()  # over the limit: abort
        protocol = self.protocol
        if protocol.close_expected() and not self._finished and (protocol.close_rcvd or protocol.eof_sent):
            # The closing handshake is over (or failed). After a close we started, keep reading until
            # the peer's close frame instead: closing a socket with unread input resets the connection,
            # and the reset destroys our close frame before the peer reads it (it would see 1006).
            self._closing = True
            if protocol.close_rcvd is None and self._unread_input_possible():
                self._linger()  # we failed the connection: the peer may still be sending
            else:
                self._finish_after_flush()

    def _unread_input_possible(self) -> bool:
        transport = self.transport
        return transport is not None and not transport.is_closing() and not self.protocol.reader.eof

    def _linger(self) -> None:
        """After failing the connection (our close frame and EOF are sent): read and discard (websockets
        does) until the peer's EOF, when asyncio closes the socket, or abort after the close timeout.
        Closing now, with the rest of an oversized message still arriving, would reset the connection,
        and the reset destroys our close frame before the peer reads it (it would see 1006)."""
        transport = self.transport
        if transport is None or self._finished:
            return
        self._finished = True
        self._pause_reasons.clear()
        transport.resume_reading()
        self._loop.call_later(self.hub.settings.close_timeout, _abort_if_open, transport)

    def _finish_after_flush(self) -> None:
        """Close the TCP connection once written out, or abort it after the close timeout."""
        transport = self.transport
        if transport is None or self._finished:
            return
        self._finished = True
        if transport.get_write_buffer_size() > self.hub.settings.outbox_limit:
            transport.abort()
            return
        transport.close()
        self._abort_later(transport)

    def _abort_later(self, transport: asyncio.Transport) -> None:
        timeout = self.hub.settings.close_timeout
        self._close_deadlines.append(self._loop.call_later(timeout, _abort_if_open, transport))


def _abort_if_open(transport: asyncio.Transport) -> None:
    if not transport.is_closing() or transport.get_write_buffer_size():
        transport.abort()
