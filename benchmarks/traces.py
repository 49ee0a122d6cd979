"""Real editing traces: load, convert code-point positions to UTF-8 offsets, and record pycrdt updates."""

from __future__ import annotations

import bisect
import gzip
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pycrdt import Doc, Text, TransactionEvent

TRACE_DIR = Path("/work/shared/traces/sequential")
TEXT_NAME = "text"
Patch = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Trace:
    name: str
    patches: list[Patch]  # flattened, in order; positions and lengths in code points
    end_content: str  # the text after all patches (or after the first `len(patches)` when capped)
    capped: bool


def trace_path(name: str) -> Path:
    for candidate in (TRACE_DIR / f"{name}.json.gz", TRACE_DIR / "ascii_only" / f"{name}.json.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no trace {name!r} under {TRACE_DIR}")


def available_traces() -> list[str]:
    return sorted(p.name.removesuffix(".json.gz") for p in TRACE_DIR.glob("*.json.gz"))


def load_trace(name: str, limit: int | None = None) -> Trace:
    """Read a trace; with `limit`, keep the first `limit` patches and replay them to get the text."""
    data: dict[str, Any] = orjson.loads(gzip.decompress(trace_path(name).read_bytes()))
    patches: list[Patch] = [(int(p[0]), int(p[1]), str(p[2])) for txn in data["txns"] for p in txn["patches"]]
    start = str(data.get("startContent", ""))
    if start:
        raise ValueError(f"trace {name} has a start content; not supported")
    if limit is None or limit >= len(patches):
        return Trace(name, patches, str(data["endContent"]), capped=False)
    patches = patches[:limit]
    return Trace(name, patches, replay_str(patches), capped=True)


def replay_str(patches: list[Patch]) -> str:
    """The text after `patches`, by Python `str` splicing (O(length) per patch: fine for these traces)."""
    text = ""
    for pos, delete, insert in patches:
        text = text[:pos] + insert + text[pos + delete :]
    return text


class ByteOffsets:
    """Maps code-point positions to UTF-8 byte offsets, tracking only the (rare) non-ASCII characters."""

    def __init__(self) -> None:
        self._positions: list[int] = []  # code-point positions of non-ASCII characters, sorted
        self._extra: list[int] = []  # their UTF-8 length minus one

    def offset(self, pos: int) -> int:
        if not self._positions:
            return pos
        at = bisect.bisect_left(self._positions, pos)
        return pos + sum(self._extra[:at])

    def splice(self, pos: int, delete: int, insert: str) -> tuple[int, int, str]:
        """Byte (offset, length) of the patch, then record the text change."""
        start = self.offset(pos)
        length = self.offset(pos + delete) - start
        if self._positions or not insert.isascii():
            self._update(pos, delete, insert)
        return start, length, insert

    def _update(self, pos: int, delete: int, insert: str) -> None:
        lo = bisect.bisect_left(self._positions, pos)
        hi = bisect.bisect_left(self._positions, pos + delete)
        shift = len(insert) - delete
        tail_pos = [p + shift for p in self._positions[hi:]]
        tail_extra = self._extra[hi:]
        new_pos = [pos + i for i, ch in enumerate(insert) if ord(ch) > 0x7F]
        new_extra = [len(insert[i - pos].encode()) - 1 for i in new_pos]
        self._positions[lo:] = new_pos + tail_pos
        self._extra[lo:] = new_extra + tail_extra


@dataclass(frozen=True, slots=True)
class RecordedUpdates:
    updates: list[bytes]  # one Yjs v1 update per patch (one transaction each)
    final_text: str
    client_id: int
    seconds: float  # time taken to make the local edits and capture their updates


def record_updates(trace: Trace, client_id: int | None = None) -> RecordedUpdates:
    """Replay `trace` into a fresh pycrdt Doc, one transaction per patch, capturing every update."""
    doc: Doc[Any] = Doc(client_id=client_id) if client_id is not None else Doc()
    text = doc.get(TEXT_NAME, type=Text)
    updates: list[bytes] = []

    def capture(event: TransactionEvent) -> None:
        updates.append(event.update)

    subscription = doc.observe(capture)
    offsets = ByteOffsets()
    started = time.perf_counter()
    for pos, delete, insert in trace.patches:
        start, length, insert = offsets.splice(pos, delete, insert)
        with doc.transaction():
            if length:
                del text[start : start + length]
            if insert:
                text.insert(start, insert)
    seconds = time.perf_counter() - started
    doc.unobserve(subscription)
    final = str(text)
    if final != trace.end_content:
        raise AssertionError(f"trace {trace.name}: pycrdt replay differs from the expected text")
    return RecordedUpdates(updates, final, int(doc.client_id), seconds)


def text_of(updates: list[bytes]) -> str:
    """Apply `updates` to a fresh document and return its text (for verification, outside timing)."""
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return str(doc.get(TEXT_NAME, type=Text))


CACHE_DIR = Path(__file__).resolve().parent / "results" / "tmp" / "cache"


def recorded_updates(name: str, limit: int | None = None) -> tuple[Trace, RecordedUpdates]:
    """`record_updates` of a trace, cached on disk (recording the largest trace takes minutes)."""
    import pycrdt

    trace = load_trace(name, limit)
    version = getattr(pycrdt, "__version__", "x")
    path = CACHE_DIR / f"{name}-{limit or 'all'}-pycrdt{version}.bin"
    if path.exists():
        cached = _read_cache(path, trace)
        if cached is not None:
            return trace, cached
    recorded = record_updates(trace)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    _write_cache(path, recorded)
    return trace, recorded


def _write_cache(path: Path, recorded: RecordedUpdates) -> None:
    header = orjson.dumps(
        {"count": len(recorded.updates), "client_id": recorded.client_id, "seconds": recorded.seconds}
    )
    parts = [len(header).to_bytes(4, "big"), header]
    for update in recorded.updates:
        parts.append(len(update).to_bytes(4, "big"))
        parts.append(update)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(b"".join(parts))
    tmp.replace(path)


def _read_cache(path: Path, trace: Trace) -> RecordedUpdates | None:
    data = path.read_bytes()
    size = int.from_bytes(data[:4], "big")
    header = orjson.loads(data[4 : 4 + size])
    pos = 4 + size
    updates: list[bytes] = []
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        updates.append(data[pos + 4 : pos + 4 + length])
        pos += 4 + length
    if len(updates) != header["count"] or len(updates) != len(trace.patches):
        return None
    return RecordedUpdates(updates, trace.end_content, header["client_id"], header["seconds"])
