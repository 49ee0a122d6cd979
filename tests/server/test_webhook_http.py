"""The webhook sender on real sockets: statuses, timeouts, no redirects, SSRF at connect, verified TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest
import trustme

from server.webhook_http import SendFailed, Timeouts, post
from server.webhook_rules import parse_target
from tests.support.receiver import Receiver

QUICK = Timeouts(connect=2.0, total=2.0)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = await Receiver().start()
    yield found
    await found.close()


async def send(url: str, timeouts: Timeouts = QUICK, tls: ssl.SSLContext | None = None) -> int:
    return await post(parse_target(url), b'{"a": 1}', [("X-Test", "yes")], timeouts, True, tls)


async def test_a_post_returns_the_receivers_status_and_sends_headers_and_body(receiver: Receiver) -> None:
    receiver.replies = [204, 500]
    assert await send(receiver.url("/in?x=1")) == 204
    assert await send(receiver.url()) == 500
    first = await receiver.next()
    assert first.target == "/in?x=1" and first.body == b'{"a": 1}'
    assert first.headers["x-test"] == "yes" and first.headers["content-type"] == "application/json"
    assert first.headers["host"] == f"127.0.0.1:{receiver.port}"


async def test_redirects_are_answers_never_followed(receiver: Receiver) -> None:
    receiver.replies = [302]
    assert await send(receiver.url()) == 302
    assert len(receiver.log) == 1


async def test_a_receiver_that_never_answers_times_out(receiver: Receiver) -> None:
    receiver.default = None
    with pytest.raises(SendFailed, match=r"no answer within 0\.3s"):
        await send(receiver.url(), Timeouts(connect=1.0, total=0.3))
    assert receiver.hanging.is_set()


async def test_a_closed_port_fails_without_a_status(receiver: Receiver) -> None:
    port = receiver.port
    await receiver.close()
    with pytest.raises(SendFailed):
        await send(f"http://127.0.0.1:{port}/")


async def test_private_addresses_are_refused_at_connect_unless_allowed(receiver: Receiver) -> None:
    for url in (
        receiver.url(),
        receiver.url(host="localhost"),
    ):  # a literal, then a name resolving to loopback
        with pytest.raises(SendFailed, match="SSRF"):
            await post(parse_target(url), b"{}", [], QUICK, allow_private=False)
    assert receiver.log == []


async def test_https_is_verified_against_the_trust_store() -> None:
    authority = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost", "127.0.0.1").configure_cert(server_tls)
    receiver = await Receiver().start(server_tls)
    try:
        trusting = ssl.create_default_context()
        authority.configure_trust(trusting)
        assert await send(receiver.url(scheme="https", host="localhost"), tls=trusting) == 200
        assert (await receiver.next()).body == b'{"a": 1}'
        with pytest.raises(SendFailed, match=r"(?i)certificate"):  # the system trust store does not know it
            await send(receiver.url(scheme="https", host="localhost"))
        other = trustme.CA()
        wrong_name = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        other.issue_cert("elsewhere.test").configure_cert(wrong_name)
        impostor = await Receiver().start(wrong_name)
        try:
            trusting_other = ssl.create_default_context()
            other.configure_trust(trusting_other)
            with pytest.raises(SendFailed, match=r"(?i)(hostname|certificate|match)"):
                await send(impostor.url(scheme="https", host="localhost"), tls=trusting_other)
        finally:
            await impostor.close()
        assert len(receiver.log) == 1
    finally:
        await receiver.close()


async def test_many_hanging_receivers_do_not_block_the_loop(receiver: Receiver) -> None:
    receiver.default = None
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    results = await asyncio.gather(
        *(send(receiver.url(), Timeouts(1.0, 0.3)) for _ in range(10)), return_exceptions=True
    )
    ticker.cancel()
    assert all(isinstance(r, SendFailed) for r in results)
    assert ticks > 100  # the loop kept turning while ten sends waited
