"""Event-loop stall while a room applies one large update (a 5 MB and a 30 MB step 2 of small structs):
before, in one pycrdt call; after, piece by piece (server/chunked.py). In-process, one room, a 5 ms
ticker standing in for every other room. Run: `.venv/bin/python -m benchmarks.chunked_apply_stall`
(to measure another checkout: `PYTHONPATH=<checkout> .venv/bin/python benchmarks/chunked_apply_stall.py`)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.report import environment, loop_stall, table, write_results
from crdt.lib0 import encode_var_string, encode_var_uint
from crdt.messages import Ack, SyncStep2, encode_message
from crdt.sync import UpdateReceived
from persistence.memory import MemoryStorage
from server.offload import shutdown
from server.room import Room
from server.settings import Settings
from tests.server.fakes import FakePeer

CLIENT = 4242


def map_rows(target_bytes: int, pad: int) -> bytes:
    """A v1 update of one client appending maps {"x": i, "name": "user<i>" + pad} to root array
    "a", about `target_bytes` long (rows of a table, cards of a board): 3 structs per row, the
    shape pycrdt encodes such a document in."""
    client = encode_var_uint(CLIENT)
    parts: list[bytes] = []
    size, clock, filler = 0, 0, "." * pad
    while size < target_bytes:
        if clock == 0:  # Type (Y.Map), parent = root "a"
            head = b"\x07\x01" + encode_var_string("a")
        else:  # Type, origin: the previous row's map
            head = b"\x87" + client + encode_var_uint(clock - 3)
        parent = b"\x00" + client + encode_var_uint(clock)  # its entries: parent id and key
        x = b"\x28" + parent + encode_var_string("x") + b"\x01\x7d" + encode_var_uint(clock % 64)
        name = b"\x28" + parent + encode_var_string("name") + b"\x01\x77"
        name += encode_var_string(f"user{clock}{filler}")
        row = head + b"\x01" + x + name
        parts.append(row)
        size += len(row)
        clock += 3
    return b"\x01" + encode_var_uint(clock) + client + b"\x00" + b"".join(parts) + b"\x00"


def acked(peer: FakePeer) -> int:
    return max([m.count for m in peer.received if isinstance(m, Ack)], default=0)


async def measure(update: bytes) -> dict[str, Any]:
    room = Room("bench", MemoryStorage(), Settings(message_rate=0), time.time)
    task = asyncio.create_task(room.run())
    writer = FakePeer()
    room.join(writer)
    await writer.wait_for(lambda: len(writer.received) >= 2)
    event = writer.session.receive_data(encode_message(SyncStep2(update)))
    assert isinstance(event, UpdateReceived)

    async def apply_and_ack() -> None:
        room.submit(writer, event, len(update))
        await writer.wait_for(lambda: acked(writer) == 1 or writer.closed is not None, timeout=600)

    worst, took = await loop_stall(apply_and_ack)
    assert writer.closed is None, writer.closed
    room.leave(writer)
    await asyncio.wait_for(task, 60)
    return {"bytes": len(update), "worst_stall_ms": round(worst, 1), "seconds_to_ack": round(took / 1000, 2)}


async def main() -> None:
    rows = []
    for label, size, pad in (("5 MB", 5 << 20, 0), ("30 MB", 30 << 20, 100)):
        update = map_rows(size, pad)
        row = await measure(update)
        row["case"] = label
        rows.append(row)
        print(json.dumps(row), flush=True)
    shutdown()
    cells = [[r["case"], r["bytes"], r["worst_stall_ms"], r["seconds_to_ack"]] for r in rows]
    print(table(["update", "bytes", "worst loop stall ms", "s to ack"], cells))
    print(f"results: {write_results('chunked-apply', {'environment': environment(), 'rows': rows})}")
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(rows, indent=1))  # noqa: ASYNC240 (once, at the end)


if __name__ == "__main__":
    asyncio.run(main())
