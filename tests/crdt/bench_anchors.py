"""Cost of anchoring and resolving comment ranges: `python -m tests.crdt.bench_anchors [chars] [threads]`.

Builds a document edited by three replicas in short bursts (many blocks, accents and emoji,
deletions), anchors threads at random ranges, then times: the first (cold) sync of the ASCII
twin, a warm resolution of every anchor, the incremental twin sync after one keystroke, making
one anchor, and validating client positions. Prints one JSON object.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, Text

from crdt.anchors import anchor_positions, anchor_range, resolve
from crdt.shadow import Shadow

WORDS = [
    "caf\u00e9",
    "na\u00efve",
    "\U0001f600",
    "r\u00e9sum\u00e9",
    "text",
    "comment",
    "\u4e2d\u6587",
    "anchor",
    "yjs",
]


def build(chars: int, seed: int = 7) -> Doc[Any]:
    rng = random.Random(seed)
    replicas: list[Doc[Any]] = [Doc() for _ in range(3)]
    while len(str(replicas[0].get("t", type=Text))) < chars:
        for doc in replicas:
            text = doc.get("t", type=Text)
            content = str(text)
            for _ in range(rng.randint(1, 4)):
                at = rng.randint(0, len(content))
                burst = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8))) + " "
                text.insert(len(content[:at].encode()), burst)
                content = str(text)
            if content and rng.random() < 0.2:
                at = rng.randrange(len(content))
                end = min(len(content), at + rng.randint(1, 6))
                del text[len(content[:at].encode()) : len(content[:end].encode())]
        for a in replicas:
            for b in replicas:
                if a is not b:
                    b.apply_update(a.get_update(b.get_state()))
    return replicas[0]


def timed(action: Callable[[], object], repeat: int = 1) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - started) / repeat


def main(chars: int = 100_000, threads: int = 200) -> dict[str, Any]:
    doc = build(chars)
    text = doc.get("t", type=Text)
    content = str(text)
    rng = random.Random(1)
    twin = Shadow()
    cold = timed(lambda: twin.sync(doc))
    anchors = []
    for _ in range(threads):
        start = rng.randrange(len(content) - 40)
        anchors.append(anchor_range(doc, "t", start, start + rng.randint(1, 40), "codepoint", twin).anchor)
    warm = timed(lambda: resolve(doc, anchors, "utf16", twin), repeat=5)
    one = timed(lambda: resolve(doc, anchors[:1], "utf16", twin), repeat=20)

    def keystroke_then_resolve() -> None:
        text.insert(len(content[:10].encode()), "x")
        resolve(doc, anchors, "utf16", twin)

    after_edit = timed(keystroke_then_resolve, repeat=5)
    make = timed(lambda: anchor_range(doc, "t", 100, 120, "codepoint", twin), repeat=20)
    validate = timed(lambda: anchor_positions(doc, "t", anchors[0].start, anchors[0].end, twin), repeat=20)
    update_bytes = len(doc.get_update())
    return {
        "chars": len(str(text)),
        "update_bytes": update_bytes,
        "threads": threads,
        "twin_cold_sync_ms": round(cold * 1e3, 2),
        "resolve_all_ms": round(warm * 1e3, 2),
        "resolve_per_thread_us": round(warm / threads * 1e6, 1),
        "resolve_one_thread_ms": round(one * 1e3, 2),
        "keystroke_then_resolve_all_ms": round(after_edit * 1e3, 2),
        "anchor_one_range_ms": round(make * 1e3, 2),
        "validate_client_positions_ms": round(validate * 1e3, 2),
    }


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(main(*arguments), indent=2))
