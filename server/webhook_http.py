"""The I/O edge that sends one webhook request: HTTP/1.1 POST (h11) over asyncio, TLS verified, no redirects.

Names are resolved here and every address is checked against the SSRF rule before connecting; the
connection goes to the checked address (a name cannot re-resolve elsewhere in between).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass

import h11

from server.webhook_rules import Target, TargetRefused, check_address, literal_address

MAX_RESPONSE_BYTES = 64 * 1024  # what we read of an answer (its status is all that counts)
USER_AGENT = "cocreate-webhooks/1"


class SendFailed(Exception):
    """No HTTP status came back: refused address, DNS, connect, TLS, timeout, broken response."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float
    total: float


_TLS: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """The system's trust store with hostname checks (created once)."""
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


async def post(
    target: Target,
    body: bytes,
    headers: list[tuple[str, str]],
    timeouts: Timeouts,
    allow_private: bool,
    tls: ssl.SSLContext | None = None,
) -> int:
    """POST `body` to `target`; the response status. `SendFailed` when there is none.
    `tls`: the trust to verify https receivers with (default: the system's, `tls_context()`)."""
    try:
        async with asyncio.timeout(timeouts.total):
            reader, writer = await _connect(target, timeouts.connect, allow_private, tls or tls_context())
            try:
                return await _exchange(reader, writer, target, body, headers)
            finally:
                writer.close()
    except TimeoutError:
        raise SendFailed(f"no answer within {timeouts.total:g}s") from None
    except TargetRefused as exc:
        raise SendFailed(str(exc)) from None
    except ssl.SSLError as exc:
        raise SendFailed(f"TLS: {exc.reason or exc}") from None
    except (OSError, h11.ProtocolError) as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}") from None


async def _addresses(host: str, port: int, allow_private: bool) -> list[str]:
    literal = literal_address(host)
    if literal is not None:
        check_address(str(literal), allow_private)
        return [str(literal)]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SendFailed(f"cannot resolve {host!r}: {exc.strerror}") from None
    found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in found:  # every address must pass: a name may not mix public and private ones
        check_address(address, allow_private)
    return found


async def _connect(
    target: Target, connect_timeout: float, allow_private: bool, trust: ssl.SSLContext
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    addresses = await _addresses(target.host, target.port, allow_private)
    tls = trust if target.scheme == "https" else None
    last: Exception | None = None
    for address in addresses:
        try:
            async with asyncio.timeout(connect_timeout):
                return await asyncio.open_connection(
                    address,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls is not None else None,
                    limit=MAX_RESPONSE_BYTES,
                )
        except TimeoutError:
            last = SendFailed(f"connecting to {address} took over {connect_timeout:g}s")
        except OSError as exc:
            last = exc
    assert last is not None
    if isinstance(last, SendFailed):
        raise last
    raise last


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    target: Target,
    body: bytes,
    headers: list[tuple[str, str]],
) -> int:
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="POST",
        target=target.target,
        headers=[
            ("Host", target.host_header),
            ("User-Agent", USER_AGENT),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            *headers,
        ],
    )
    writer.write(
        connection.send(request) + connection.send(h11.Data(data=body)) + connection.send(h11.EndOfMessage())
    )
    await writer.drain()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(MAX_RESPONSE_BYTES)
            connection.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            return int(event.status_code)  # redirects are answers too: never followed
        if isinstance(event, h11.ConnectionClosed):
            raise SendFailed("the connection closed before a response")
        # h11.InformationalResponse (100 Continue, ...): keep reading
