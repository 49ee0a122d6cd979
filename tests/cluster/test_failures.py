"""Cluster mode under failures (SIGKILL of a server, a Redis restart): nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pycrdt import Text

from client.client import connect
from tests.cluster.redis_server import RedisServer
from tests.cluster.test_cluster import DOC, assert_each_once, converged, nodes, type_into
from tests.support.http import request
from tests.support.server_process import ServerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


async def test_sigkill_of_one_process_loses_no_acknowledged_edit(
    pg_url: str, redis_server: RedisServer, tmp_path: object
) -> None:
    with nodes(3, pg_url, redis_server.url, tmp_path) as servers:  # type: ignore[arg-type]
        async with contextlib.AsyncExitStack() as stack:
            victim_connection = connect(servers[0].ws(DOC))
            victim = await victim_connection.__aenter__()
            clients = [victim, *[await stack.enter_async_context(connect(s.ws(DOC))) for s in servers[1:]]]
            await asyncio.gather(*(type_into(c, f"a{i}", 20) for i, c in enumerate(clients)))
            text = victim.doc.get("t", type=Text)
            for index in range(10):  # mid-editing: some of these are acknowledged, some may not be
                text.insert(len(text), f"<k.{index}>")
                await asyncio.sleep(0.002)
            others = asyncio.gather(*(type_into(c, f"b{i}", 20) for i, c in enumerate(clients[1:], 1)))
            servers[0].kill()
            await others
            # before the victim's replica comes back (it would resend anything lost), the
            # survivors already hold every edit the killed process acknowledged
            async with connect(servers[2].ws(DOC)) as witness:
                assert_each_once(str(witness.doc.get("t", type=Text)), [f"a0.{k}" for k in range(20)])
            # the victim's replica (with whatever was not acknowledged) reconnects to another process
            await victim_connection.__aexit__(None, None, None)
            moved = await stack.enter_async_context(connect(servers[1].ws(DOC), victim.doc))
            await type_into(moved, "c0", 10)
            survivors = [moved, *clients[1:]]
            await asyncio.gather(*(c.flushed() for c in survivors))
            tokens = [f"a{i}.{k}" for i in range(3) for k in range(20)]
            tokens += [f"b{i}.{k}" for i in (1, 2) for k in range(20)]
            tokens += [f"k.{k}" for k in range(10)] + [f"c0.{k}" for k in range(10)]
            final = await converged(survivors, len(tokens))
            assert_each_once(final, tokens)
        async with connect(servers[2].ws(DOC)) as fresh:
            assert str(fresh.doc.get("t", type=Text)) == final


async def test_a_restarted_redis_loses_and_duplicates_nothing(
    pg_url: str, redis_server: RedisServer, tmp_path: object
) -> None:
    with nodes(2, pg_url, redis_server.url, tmp_path) as (a, b):  # type: ignore[arg-type]
        async with connect(a.ws(DOC)) as left, connect(b.ws(DOC)) as right:
            await asyncio.gather(type_into(left, "l1", 15), type_into(right, "r1", 15))
            await converged([left, right], 30)
            assert (await _ready(a)) == (200, "ok")
            redis_server.stop()
            assert (await _ready(a)) == (
                503,
                "ConnectionError: redis does not answer",
            )  # /readyz flips at once
            # Redis is down: both nodes keep accepting and committing (and poll the shared log);
            # a document loaded during the outage joins its stream once Redis is back
            async with connect(a.ws("team/new")) as new_left, connect(b.ws("team/new")) as new_right:
                await asyncio.gather(type_into(left, "l2", 15), type_into(right, "r2", 15))
                await asyncio.gather(type_into(new_left, "nl", 10), type_into(new_right, "nr", 10))
                redis_server.start()
                await asyncio.wait_for(_wait_log(a, "redis is reachable again"), 15)
                await asyncio.wait_for(_wait_log(b, "redis is reachable again"), 15)
                assert (await _ready(b)) == (200, "ok")
                await asyncio.gather(type_into(left, "l3", 15), type_into(right, "r3", 15))
                await asyncio.gather(type_into(new_left, "ml", 10), type_into(new_right, "mr", 10))
                tokens = [f"{side}{phase}.{k}" for side in "lr" for phase in (1, 2, 3) for k in range(15)]
                final = await converged([left, right], len(tokens))
                assert_each_once(final, tokens)
                new_tokens = [f"{p}{side}.{k}" for p in "nm" for side in "lr" for k in range(10)]
                assert_each_once(await converged([new_left, new_right], len(new_tokens)), new_tokens)
        # edits flow live again: a change on one process reaches a client on the other quickly
        async with connect(a.ws(DOC)) as writer, connect(b.ws(DOC)) as reader:
            writer.doc.get("t", type=Text).insert(0, "<live>")
            # well within the 3 s safety poll: this came through the stream
            await reader.wait_for(lambda: "<live>" in str(reader.doc.get("t", type=Text)), 1.0)
        for server in (a, b):  # the outage was noticed and logged once, not per message
            assert server.log_text().count("redis unavailable") == 1
            scraped = await asyncio.to_thread(request, server.port, "GET", "/metrics")
            samples = {
                sample.name: sample.value
                for family in text_string_to_metric_families(scraped.body.decode())
                for sample in family.samples
            }
            assert samples["cocreate_redis_outages_total"] >= 1
            assert (
                samples["cocreate_redis_received_total"] > 0 and samples["cocreate_redis_published_total"] > 0
            )
            assert "cocreate_redis_lag_seconds" in samples


async def _ready(server: ServerProcess) -> tuple[int, str]:
    reply = await asyncio.to_thread(request, server.port, "GET", "/readyz")
    return reply.status, reply.json["checks"]["redis"]


async def _wait_log(server: ServerProcess, pattern: str) -> None:
    await asyncio.to_thread(server.wait_for_log, pattern, 15.0)
