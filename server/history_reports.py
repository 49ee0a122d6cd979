"""History as JSON for people and tools: timeline pages, attributed diffs, summaries, replay frames."""

from __future__ import annotations

import base64
import json
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from crdt.history import Change, HistoryFold
from crdt.history_views import Activity, Burst, diff, summarize
from crdt.replay import EVENT, JOIN, LEAVE, STATE, UPDATE, Frame
from persistence.base import DocumentRecord, StoredUpdate
from persistence.history import JOIN as P_JOIN
from persistence.history import LEAVE as P_LEAVE
from persistence.history import HistoryStore
from server.documents import iso
from server.history import HistoryService

EVENT_KINDS = ("edit", "comment", "presence", "session")
MAX_HUNKS = 5000


def window_rows(fold: HistoryFold, after_seq: int, until_seq: int) -> tuple[int, int]:
    """Row indexes [first, end) of the log rows with after_seq < seq <= until_seq."""
    return fold.row_of_seq(after_seq) + 1, fold.row_of_seq(until_seq) + 1


async def comment_activity(
    history: HistoryService, record: DocumentRecord, since: float | None, until: float | None
) -> tuple[list[Activity], list[dict[str, Any]]]:
    """Comments and replies (for summaries) and every comment event (for timelines) in a time span."""
    activity: list[Activity] = []
    entries: list[dict[str, Any]] = []
    for row in await history.comments.read_events(record.id):
        if not row.kind.startswith("comment.") or not _within(row.created_at, since, until):
            continue
        kind = {"comment.thread_created": "comment", "comment.added": "reply"}.get(row.kind)
        if kind is not None:
            activity.append(Activity(row.created_at, row.author, kind))
        data = json.loads(row.data)
        thread = data.get("thread")
        entries.append(
            {
                "kind": row.kind,
                "at": iso(row.created_at),
                "time": row.created_at,
                "author": row.author,
                "thread": thread.get("id") if isinstance(thread, dict) else thread,
            }
        )
    return activity, entries


def _within(moment: float, since: float | None, until: float | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment <= until)


async def timeline(
    history: HistoryService,
    record: DocumentRecord,
    gap: float,
    since: float | None,
    until: float | None,
    kinds: Sequence[str],
    offset: int,
    limit: int,
) -> dict[str, Any]:
    fold, builder = await history.bursts(record, gap)
    entries: list[dict[str, Any]] = []
    authors: dict[str, dict[str, int]] = {}
    for whole in builder.bursts():
        if (since is not None and whole.end < since) or (until is not None and whole.start > until):
            continue
        burst = _clipped(fold, whole, since, until)
        if burst is None:
            continue
        totals = authors.setdefault(burst.author, {"bursts": 0, "updates": 0, "inserted": 0, "deleted": 0})
        totals["bursts"] += 1
        totals["updates"] += burst.updates
        totals["inserted"] += burst.inserted
        totals["deleted"] += burst.deleted
        if "edit" in kinds:
            view = {"kind": "edit", "at": iso(burst.start), "time": burst.start, **asdict(burst)}
            view["start"], view["end"] = iso(burst.start), iso(burst.end)
            view["seconds"] = round(burst.end - burst.start, 3)
            entries.append(view)
    if "comment" in kinds:
        entries.extend((await comment_activity(history, record, since, until))[1])
    if "presence" in kinds:
        for row in await history.store.read_presence(record.id, since, until, kinds=(P_JOIN, P_LEAVE)):
            entries.append(
                {"kind": row.kind, "at": iso(row.created_at), "time": row.created_at, "author": row.author}
                | {"connection": row.connection, "seq": row.log_seq}
            )
    if "session" in kinds:
        for event in await history.store.read_events(record.id):
            if _within(event.created_at, since, until):
                entry = {"kind": event.kind, "at": iso(event.created_at), "time": event.created_at}
                entries.append(entry | {"author": event.author, **json.loads(event.data)})
    entries.sort(key=lambda e: (e["time"], e["kind"] != "edit"))
    span = (fold.times[0], fold.times[-1]) if len(fold) else None
    return {
        "document": record.name,
        "seq": fold.folded_seq,
        "gap": gap,
        "span": {"start": iso(span[0]), "end": iso(span[1])} if span else None,
        "authors": authors,
        "total": len(entries),
        "offset": offset,
        "entries": entries[offset : offset + limit],
        "next": offset + limit if offset + limit < len(entries) else None,
    }


def _clipped(fold: HistoryFold, burst: Burst, since: float | None, until: float | None) -> Burst | None:
    """The part of `burst` within [since, until]: its counts and span from its rows in the window
    (None when none is). Only bursts crossing an end of the window are recounted."""
    if (since is None or burst.start >= since) and (until is None or burst.end <= until):
        return burst
    part: Burst | None = None
    names, seqs, times = fold.authors, fold.seqs, fold.times
    for row in range(fold.row_of_seq(burst.first_seq), fold.row_of_seq(burst.last_seq) + 1):
        moment = times[row]
        if names[fold.row_author[row]] != burst.author or not _within(moment, since, until):
            continue  # the rows of this author between its first and last seq are the burst's own
        if part is None:
            part = Burst(burst.author, seqs[row], seqs[row], moment, moment, 0, 0, 0)
        part.last_seq, part.end = seqs[row], max(part.end, moment)
        part.updates += 1
        part.inserted += fold.inserted[row]
        part.deleted += fold.deleted[row]
    return part


async def diff_view(
    history: HistoryService, record: DocumentRecord, from_seq: int, to_seq: int
) -> dict[str, Any]:
    if to_seq < from_seq:
        raise ValueError("the second moment must not be before the first")
    fold = await history.fold(record)
    base, end = fold.row_of_seq(from_seq), fold.row_of_seq(to_seq)
    hunks = diff(fold, base, end)
    totals: dict[str, dict[str, int]] = {}
    for hunk in hunks:
        if hunk.kind == "added":
            totals.setdefault(hunk.author, _zero())["added"] += len(hunk.text)
        else:
            totals.setdefault(hunk.by, _zero())["removed"] += len(hunk.text)
            totals.setdefault(hunk.author, _zero())["lost"] += len(hunk.text)
    return {
        "document": record.name,
        "from_seq": from_seq,
        "to_seq": to_seq,
        "unit": "codepoint",
        "authors": totals,
        "truncated": len(hunks) > MAX_HUNKS,
        "hunks": [asdict(h) for h in hunks[:MAX_HUNKS]],
    }


def _zero() -> dict[str, int]:
    return {"added": 0, "removed": 0, "lost": 0}


async def summary_view(
    history: HistoryService,
    record: DocumentRecord,
    after_seq: int,
    until_seq: int,
    span: tuple[float | None, float | None] | None = None,
) -> dict[str, Any]:
    """Per participant over log rows (after_seq, until_seq]; comments count within `span` (a
    session's start and end), by default from the window's first row to its last (open ends)."""
    fold = await history.fold(record)
    first, end = window_rows(fold, after_seq, until_seq)
    if span is None:
        since = fold.times[first] if after_seq > 0 and first < end else None
        until = fold.times[end - 1] if end < len(fold) and first < end else None
        span = (since, until)
    activity, _ = await comment_activity(history, record, *span)
    people = summarize(fold, first, end, activity)
    return {
        "document": record.name,
        "after_seq": after_seq,
        "until_seq": until_seq,
        "unit": "codepoint",
        "participants": [
            asdict(p) | {"first": iso(p.first) if p.first else None, "last": iso(p.last) if p.last else None}
            for p in people
        ],
    }


@dataclass(frozen=True, slots=True)
class Recording:
    """What a replay plays: the presence standing when the window opens (STATE frames), then the
    updates of the window and the presence and comment events recorded meanwhile, in time order."""

    initial: list[Frame]
    frames: list[Frame]


async def recording(
    history: HistoryService, record: DocumentRecord, after_seq: int, until_seq: int
) -> Recording:
    """The recording of log rows (after_seq, until_seq]."""
    rows = []
    page = history.hub.settings.load_page_size
    at = after_seq
    while at < until_seq:
        chunk = await history.storage.read_updates(record.id, after_seq=at, until_seq=until_seq, limit=page)
        if not chunk:
            break
        rows.extend(chunk)
        at = chunk[-1].seq
    out = [Frame(r.created_at, r.seq, r.author, UPDATE, update=r.data) for r in rows]
    start = await history.time_of(record, after_seq)
    end = rows[-1].created_at if rows else start
    standing: dict[int, Frame] = {}
    if end is not None:
        for frame in await presence_frames(history.store, record, None, end):
            if start is None or frame.at > start:
                out.append(frame)
            elif frame.kind == STATE and frame.client_id is not None:
                standing[frame.client_id] = frame
            elif frame.kind == LEAVE:
                for client in frame.clients:
                    standing.pop(client, None)
    out.extend(await _event_frames(history, record, after_seq, until_seq, rows))
    out.sort(key=lambda f: (f.at, f.kind != UPDATE, f.seq))
    initial = [f for f in standing.values() if f.state not in (None, "null")]
    return Recording(initial, out)


async def _event_frames(
    history: HistoryService,
    record: DocumentRecord,
    after_seq: int,
    until_seq: int,
    rows: Sequence[StoredUpdate],
) -> list[Frame]:
    """Comment events of log rows (after_seq, until_seq]: an event belongs to the last row logged
    before it (its frame's `seq`), so adjacent windows share none, and one before the first row
    goes with the window from 0. `data` is the object as it went out live (`seq`: the event row)."""
    if after_seq > 0 and not rows:
        return []
    low = rows[0].created_at if after_seq > 0 else None  # the first row of the window
    bound = await history.time_of(record, until_seq + 1) if until_seq < record.last_seq else None
    times = [r.created_at for r in rows]
    found = []
    for row in await history.comments.read_events(record.id):
        if not row.kind.startswith("comment.") or (low is not None and row.created_at < low):
            continue
        if bound is not None and row.created_at >= bound:
            continue
        at = bisect_right(times, row.created_at)
        seq = rows[at - 1].seq if at else after_seq
        data = json.dumps({"seq": row.seq, **json.loads(row.data)}, separators=(",", ":"), ensure_ascii=False)
        found.append(Frame(row.created_at, seq, row.author, EVENT, event=row.kind, data=data))
    return found


async def presence_frames(
    store: HistoryStore, record: DocumentRecord, since: float | None, until: float | None
) -> list[Frame]:
    found = []
    for row in await store.read_presence(record.id, since, until):
        if row.kind == P_JOIN:
            found.append(Frame(row.created_at, row.log_seq, row.author, JOIN, client_id=None, state=row.data))
        elif row.kind == P_LEAVE:
            clients = tuple(int(c) for c in json.loads(row.data).get("clients", ()))
            found.append(Frame(row.created_at, row.log_seq, row.author, LEAVE, clients=clients))
        else:
            found.append(
                Frame(row.created_at, row.log_seq, row.author, STATE, client_id=row.client_id, state=row.data)
            )
    return found


def change_view(change: Change) -> dict[str, Any]:
    """One operation of an update as JSON (positions in code points)."""
    view: dict[str, Any] = {"kind": change.kind, "root": change.root, "position": change.position}
    view |= {"text": change.text, "author": change.author}
    if change.kind == "delete":
        view["owner"] = change.owner
    elif change.kind == "insert" and change.built_on is not None:
        view["built_on"] = change.built_on
    if change.nested:
        view["nested"] = True
    return view


def frame_view(frame: Frame, offset: float, changes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One frame as JSON: `offset` is its wall-clock second in the paced replay."""
    view: dict[str, Any] = {
        "kind": frame.kind,
        "at": iso(frame.at),
        "time": frame.at,
        "offset": round(offset, 6),
        "seq": frame.seq,
        "author": frame.author,
    }
    if frame.kind == UPDATE:
        view["update"] = base64.b64encode(frame.update).decode()
        if changes is not None:
            view["changes"] = changes
    elif frame.kind == STATE:
        view["client"] = frame.client_id
        view["state"] = json.loads(frame.state) if frame.state else None
    elif frame.kind == LEAVE:
        view["clients"] = list(frame.clients)
    elif frame.kind == EVENT:
        view["event"] = frame.event
        view["data"] = json.loads(frame.data)
    return view
