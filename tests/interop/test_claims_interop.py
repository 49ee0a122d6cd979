"""Client-id claims with a stock y-websocket provider (Node) through a real `cocreate serve --secret`:
a provider's awareness id is claimed for its user, and another user's forged range under that id
cannot swallow the provider's offline edits (docs/PROTOCOL.md, "Client ids are claimed by their user")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from crdt.lib0 import encode_var_uint as u
from crdt.messages import SyncUpdate, encode_message
from server.auth import Role as Access
from server.tokens import issue
from tests.interop.conftest import Peers
from tests.interop.py_peer import python_peer
from tests.support.server_process import ServerProcess, running_server

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

SECRET = "interop-claims-secret-0123456789abcdef"
EMPTY = {"t": "", "m": {}, "a": [], "barrier": {}}


def tok(user: str) -> str:
    return issue(user, user.title(), {"*": Access.EDITOR}, now=time.time(), ttl=600, secret=SECRET)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """Overrides the interop `server` fixture: this module's server has a secret."""
    with running_server(tmp_path, None, "--secret", SECRET) as process:
        yield process


async def wait_ack(ws: ClientConnection, count: int) -> None:
    """Read until the server acknowledged `count` update-carrying messages (message 100)."""
    while True:
        message = await ws.recv()
        if isinstance(message, bytes) and message[:1] == b"\x64" and message[1] >= count:
            return


async def test_a_providers_offline_edits_survive_a_forged_range_under_its_id(peers: Peers) -> None:
    server = peers.server
    ana = await peers.node(name="ana", params={"token": tok("ana")})
    async with python_peer(peers.url(query=f"token={tok('bo')}")) as bo:
        await ana.insert_text("t", "abc")
        await bo.wait_content({**EMPTY, "t": "abc"})
        await ana.disconnect()
        await ana.insert_text("t", "def")  # offline: clocks 3..5 of ana's client id
        assert ana.client_id is not None
        forged = u(1) + u(1) + u(ana.client_id) + u(3) + b"\x00" + u(1000) + u(0)  # GC 3..1003
        async with connect(peers.url(query=f"token={tok('mallory')}&acks=1")) as mallory:
            await mallory.send(encode_message(SyncUpdate(forged)))
            await wait_ack(mallory, 1)  # acknowledged, not closed: the range was left out
        assert server.wait_for_log(rf"left out structs of client {ana.client_id}, claimed by user 'ana'")
        await ana.connect()
        await bo.wait_content({**EMPTY, "t": "abcdef"})
    async with python_peer(peers.url(query=f"token={tok('carol')}")) as late:
        await late.wait_content({**EMPTY, "t": "abcdef"})
