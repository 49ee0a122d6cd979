"""Metrics: bounded labels, scrape-time gauges, and a real server whose counters move when clients edit."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from pycrdt import Doc, Text
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from client import connect
from crdt.errors import DecodeError, InvalidUpdate, MessageTooLarge, UpdateAhead
from server.epochs import StaleCopy
from server.limits import DocumentFull
from server.metrics import Metrics
from tests.support.http import request
from tests.support.server_process import running_server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_rejections_map_error_classes_to_a_fixed_set_of_reasons() -> None:
    metrics = Metrics()
    for error in (
        UpdateAhead(),
        InvalidUpdate("x"),
        StaleCopy(),
        DocumentFull(),
        MessageTooLarge(),
        KeyError(),
    ):
        metrics.rejected(error)
    metrics.rejected(DecodeError("any free text the client controls"))
    samples = parse(metrics.render().decode())
    counted = {
        dict(labels)["reason"]: number
        for (name, labels), number in samples.items()
        if name == "cocreate_validator_rejections_total" and number
    }
    assert counted == {
        "ahead": 1,
        "invalid_update": 1,
        "stale_copy": 1,
        "document_full": 1,
        "too_large": 1,
        "malformed": 1,
        "other": 1,
    }


def test_refusals_outside_the_known_codes_count_as_other() -> None:
    metrics = Metrics()
    metrics.refused("too_many_connections")
    metrics.refused("something new")
    samples = parse(metrics.render().decode())
    assert value(samples, "cocreate_connections_refused_total", reason="too_many_connections") == 1
    assert value(samples, "cocreate_connections_refused_total", reason="other") == 1
    assert not any("something" in str(labels) for _, labels in samples)


def test_gauges_and_counters_read_at_scrape_time() -> None:
    metrics = Metrics()
    lag = {"a": 3.0}
    metrics.gauge_from("cocreate_test_lag", "a lag", lambda: dict(lag), label="stream")
    metrics.gauge_from("cocreate_test_single", "one value", lambda: 7)
    metrics.counter_from("cocreate_test_events", "events", lambda: 4)
    first = parse(metrics.render().decode())
    lag["a"] = 5.0
    second = parse(metrics.render().decode())
    assert value(first, "cocreate_test_lag", stream="a") == 3.0
    assert value(second, "cocreate_test_lag", stream="a") == 5.0
    assert value(second, "cocreate_test_single") == 7
    assert value(second, "cocreate_test_events_total") == 4


def test_each_metrics_object_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.updates_applied.inc(5)
    assert value(parse(one.render().decode()), "cocreate_updates_applied_total") == 5
    assert value(parse(two.render().decode()), "cocreate_updates_applied_total") == 0


async def scrape(port: int) -> Samples:
    reply = await asyncio.to_thread(request, port, "GET", "/metrics")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("text/plain")
    return parse(reply.body.decode())


async def test_a_real_server_counts_edits_fanout_acks_and_commits(tmp_path: Path) -> None:
    with running_server(tmp_path, None, "--connections-per-address", "3") as server:
        before = await scrape(server.port)
        assert value(before, "cocreate_updates_applied_total") == 0
        writer_doc, reader_doc = Doc(), Doc()
        async with (
            connect(server.ws("m/doc"), writer_doc) as writer,
            connect(server.ws("m/doc"), reader_doc) as reader,
        ):
            during = await scrape(server.port)
            assert value(during, "cocreate_connections", endpoint="y-websocket") == 2
            assert value(during, "cocreate_documents_loaded") == 1
            text = writer_doc.get("t", type=Text)
            for i in range(20):
                text.insert(len(text), f"{i},")
                await writer.flushed()
            reader_text = reader_doc.get("t", type=Text)
            await reader.wait_for(lambda: str(reader_text) == str(text))
            after = await scrape(server.port)
            third = await ws_connect(server.ws("m/other"))
            await third.send(b"\x00\x02\xff")  # a sync update whose length varint is cut short
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(third.recv(), 10)
            assert third.close_code == 1002
            third = await ws_connect(server.ws("m/other"))
            try:
                try:
                    await ws_connect(server.ws("m/refused"))
                    raise AssertionError("the per-address cap should refuse a fourth socket")
                except InvalidStatus as exc:
                    assert exc.response.status_code == 429
            finally:
                await third.close()
        refused = await scrape(server.port)
    assert value(after, "cocreate_updates_applied_total") >= 20
    assert value(after, "cocreate_fanout_deliveries_total") >= 20  # each edit reached the reader
    assert value(after, "cocreate_ack_latency_seconds_count") >= 20  # one ack per flushed edit
    assert value(after, "cocreate_ack_latency_seconds_sum") > 0
    assert value(after, "cocreate_commit_latency_seconds_count") >= 1
    assert value(after, "cocreate_commit_batch_updates_sum") >= 20
    assert value(refused, "cocreate_connections_refused_total", reason="too_many_connections") == 1
    assert value(refused, "cocreate_limit_triggered_total", limit="connections_per_address") == 1
    assert value(refused, "cocreate_outbox_overflows_total") == 0
    assert value(refused, "cocreate_validator_rejections_total", reason="malformed") == 1


async def test_an_oversized_frame_and_a_silent_connection_are_counted_as_limits(tmp_path: Path) -> None:
    args = ("--max-message-size", "4096", "--handshake-timeout", "0.5")
    with running_server(tmp_path, None, *args) as server:
        async with ws_connect(server.ws("m/big"), max_size=None) as ws:
            await ws.send(b"\x00" * 10_000)
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1009
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)  # never sends a request
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        samples = await scrape(server.port)
        assert server.wait_for_log(r"limit handshake_timeout triggered: no HTTP request", 1)
    assert value(samples, "cocreate_limit_triggered_total", limit="max_message_size") == 1
    assert value(samples, "cocreate_limit_triggered_total", limit="handshake_timeout") == 1
