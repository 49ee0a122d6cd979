"""`cocreate history|export|replay|diff|sessions|summary`: read a document's history from the database."""

# These talk to the database directly (`--db URL`, default: the server's own settings and data
# directory), not to a running server: history is read-only and the log is the source of truth,
# so they work with the server stopped, need no token, and do the heavy folding in their own
# process. They never write, unless `--save-checkpoints` lets seeks leave snapshots behind.
# Moments: an integer is a log seq, `@1700000000.5` Unix seconds, anything else ISO 8601.
# A SQLite file that does not exist is refused (a mistyped `--db` must not create a database).
# `cocreate restore` writes, so it is not here: it asks a running server (server/restore_cli.py).

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from server import history_cli_reports
from server.settings import Settings

if TYPE_CHECKING:  # the commands import the history machinery when they run: `cocreate token` stays light
    from persistence.base import DocumentRecord
    from server.history import HistoryService

COMMANDS = ("history", "export", "replay", "diff", "sessions", "summary")
PROGRESS_FROM = 20_000  # rows: longer jobs draw a progress bar on stderr (when it is a terminal)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("document", help="document name, e.g. team/notes")
        parser.add_argument("--db", dest="database_url", default=None, help="SQLAlchemy URL of the database")
        parser.add_argument("--data-dir", default=None, help="data folder of the default SQLite database")
        parser.add_argument("--save-checkpoints", action="store_true", help="let seeks store snapshots")
        parser.add_argument("--progress", choices=("auto", "always", "never"), default="auto")

    history = sub.add_parser("history", help="the timeline of a document: edit bursts per author, events")
    common(history)
    history.add_argument("--gap", type=float, default=60.0, help="seconds between an author's bursts")
    history.add_argument("--from", dest="start", default=None, help="from this moment (seq or time)")
    history.add_argument("--to", dest="end", default=None, help="up to this moment (seq or time)")
    history.add_argument("--json", action="store_true", help="print the timeline as JSON")

    export = sub.add_parser("export", help="the document as it was at a moment")
    common(export)
    export.add_argument("--at", required=True, help="a seq, @unix-seconds or an ISO 8601 time")
    export.add_argument("--format", choices=("text", "json", "update"), default="text")
    export.add_argument("--root", default=None, help="text root to print (default: the first one)")

    replay = sub.add_parser("replay", help="the frames of a stretch of history, as NDJSON on stdout")
    common(replay)
    replay.add_argument("--from", dest="start", default=None, help="after this moment (default: the start)")
    replay.add_argument("--to", dest="end", default=None, help="up to this moment (default: now)")
    replay.add_argument("--speed", type=float, default=1.0, help="pace: real time x this")
    replay.add_argument("--max-gap", type=float, default=5.0, help="idle gaps are cut to this many seconds")
    replay.add_argument("--changes", action="store_true", help="add each update's changes (code points)")
    replay.add_argument("--realtime", action="store_true", help="print each frame when it is due")
    history_cli_reports.add_parsers(sub, common)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from server.history import HistoryProblem

    given = {k: getattr(args, k) for k in ("database_url", "data_dir") if getattr(args, k) is not None}
    try:
        settings = Settings.from_environment().with_values(given)
        check_values(args)
        check_database(settings.resolved_database_url())
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return asyncio.run(_run(args, settings))
    except HistoryProblem as exc:
        print(f"cocreate {args.command}: {exc.detail}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - interpreter exit flushes stdout once more
        return 0


def check_values(args: argparse.Namespace) -> None:
    """Refuse numbers out of range (`ValueError`), as the HTTP routes do."""
    from crdt.replay import check_speed

    if args.command == "history" and not 0 <= args.gap <= 86400:
        raise ValueError(f"--gap must be in [0, 86400] seconds, not {args.gap:g}")
    if args.command == "replay":
        try:
            check_speed(args.speed)
        except ValueError as exc:
            raise ValueError(f"--{exc}, not {args.speed:g}") from None
        if not 0 <= args.max_gap <= 86400:
            raise ValueError(f"--max-gap must be in [0, 86400] seconds, not {args.max_gap:g}")


def check_database(url: str) -> None:
    """A SQLite URL must name an existing file (`ValueError` otherwise): the CLI never creates one."""
    if not url.lower().startswith("sqlite"):
        return
    from persistence.sql.engine import normalize_url, sqlite_path

    path = sqlite_path(normalize_url(url))
    if path is not None and not path.expanduser().is_file():
        raise ValueError(f"no SQLite database at {str(path)!r} (check --db / --data-dir)")


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from persistence.factory import open_storage
    from server.auth import LocalAuthenticator
    from server.events import EventBus
    from server.history import HistoryService
    from server.history_reports import EVENT_KINDS, timeline
    from server.hub import Hub
    from server.rooms import RoomRegistry

    storage = open_storage(settings.resolved_database_url())
    await storage.open()
    try:
        registry = RoomRegistry(storage, settings, time.time)
        hub = Hub(registry, settings, storage, LocalAuthenticator(), EventBus(), time.time)
        history = HistoryService(hub, save_checkpoints=args.save_checkpoints)
        record = await history.record(args.document)
        progress = Progress(sys.stderr, args.progress, record.last_seq)
        if args.command == "history":
            await history.fold(record, progress.update)
            progress.done()
            since, until = await _time(history, record, args.start), await _time(history, record, args.end)
            view = await timeline(history, record, args.gap, since, until, EVENT_KINDS, 0, 10**9)
            if args.json:
                print(json.dumps(view, indent=2, ensure_ascii=False))
            else:
                _print_timeline(view)
        elif args.command in history_cli_reports.COMMANDS:
            await history_cli_reports.run(args, history, record, progress)
        elif args.command == "export":
            seq = await history.resolve(record, *moment_parts(args.at))
            update = await history.update_at(record, seq, progress.update)
            progress.done()
            _print_export(update, args.format, args.root, seq)
        else:
            after = await history.resolve(record, *moment_parts(args.start)) if args.start else 0
            until = await history.resolve(record, *moment_parts(args.end)) if args.end else record.last_seq
            await _print_frames(history, record, after, until, args, progress)
    finally:
        await storage.close()
    return 0


def moment_parts(raw: str) -> tuple[int | None, float | None]:
    """(seq, None) for an integer, (None, unix seconds) for @seconds or an ISO time."""
    from server.history import HistoryProblem, parse_moment

    text = raw.strip()
    if text.isdigit():
        return int(text), None
    try:
        return None, float(text[1:]) if text.startswith("@") else parse_moment(text)
    except ValueError:
        raise HistoryProblem(
            2, "invalid_moment", f"{raw!r}: give a seq, @unix-seconds or an ISO 8601 time"
        ) from None


async def _time(history: HistoryService, record: DocumentRecord, raw: str | None) -> float | None:
    """A moment as a time (a seq stands for the time its row was logged)."""
    if raw is None:
        return None
    seq, moment = moment_parts(raw)
    return moment if seq is None else await history.time_of(record, seq)


def _print_export(update: bytes, fmt: str, root: str | None, seq: int) -> None:
    from crdt.sequence import root_kinds
    from server.documents import content_of
    from server.history import HistoryProblem

    if fmt == "update":
        sys.stdout.buffer.write(update)
        return
    roots = content_of(update, root_kinds(update))
    if fmt == "json":
        print(json.dumps({"seq": seq, "roots": roots}, indent=2, ensure_ascii=False))
        return
    texts = [name for name, value in roots.items() if value["type"] == "text"]
    name = root or (texts[0] if texts else None)
    if name is None or roots.get(name, {}).get("type") != "text":
        raise HistoryProblem(
            2, "root_not_found", f"no text root {name!r} at seq {seq} (roots: {sorted(roots)})"
        )
    sys.stdout.write(roots[name]["value"])


def _print_timeline(view: dict[str, Any]) -> None:
    span = view["span"] or {}
    print(f"{view['document']}: {view['seq']} updates, {span.get('start')} .. {span.get('end')}")
    for author, totals in sorted(view["authors"].items()):
        print(f"  {author or '(unknown)'}: {totals['bursts']} bursts, {totals['updates']} updates, "
              f"+{totals['inserted']} -{totals['deleted']} characters")  # fmt: skip
    for entry in view["entries"]:
        if entry["kind"] == "edit":
            seqs = f"seq {entry['first_seq']}..{entry['last_seq']}"
            change = f"+{entry['inserted']} -{entry['deleted']}"
            print(f"{entry['start']}  {entry['author']:<16} edit {entry['seconds']:>8.1f}s  {change}  {seqs}")
        else:
            print(f"{entry['at']}  {entry.get('author', ''):<16} {entry['kind']}")


async def _print_frames(
    history: HistoryService,
    record: DocumentRecord,
    after: int,
    until: int,
    args: argparse.Namespace,
    progress: Progress,
) -> None:
    import orjson

    from crdt.replay import story_times
    from server.history_reports import change_view, frame_view, recording

    fold = await history.fold(record, progress.update) if args.changes else None
    recorded = await recording(history, record, after, until)
    offsets = [s / args.speed for s in story_times([f.at for f in recorded.frames], args.max_gap)]
    out = sys.stdout.buffer
    for frame in recorded.initial:
        out.write(orjson.dumps(frame_view(frame, 0.0) | {"initial": True}) + b"\n")
    progress.total = len(recorded.frames)
    started = time.monotonic()
    for i, (frame, offset) in enumerate(zip(recorded.frames, offsets, strict=True)):
        if args.realtime and offset > time.monotonic() - started:
            out.flush()
            await asyncio.sleep(offset - (time.monotonic() - started))  # pacing, not waiting for anything
        changes = None
        if fold is not None and frame.kind == "update":
            changes = [change_view(c) for c in fold.changes(fold.row_of_seq(frame.seq))]
        out.write(orjson.dumps(frame_view(frame, offset, changes)) + b"\n")
        progress.update(i + 1, len(recorded.frames))
    out.flush()
    progress.done()


class Progress:
    """A progress bar on stderr, redrawn at most ten times a second. `auto`: only on a terminal and
    for jobs of at least PROGRESS_FROM rows (decided by the first total it hears)."""

    def __init__(self, stream: TextIO, mode: str, total: int) -> None:
        self.stream = stream
        self.total = total
        self.mode = mode
        self.enabled = mode == "always" or (mode == "auto" and stream.isatty() and total >= PROGRESS_FROM)
        self._drawn = 0.0
        self._shown = False

    def update(self, done: int, total: int) -> None:
        self.total = max(total, 1)
        if self.mode == "auto" and not self._shown:  # a job's own size decides (a seek near a checkpoint
            self.enabled = self.stream.isatty() and total >= PROGRESS_FROM  # is short however long the log)
        now = time.monotonic()
        if not self.enabled or (now - self._drawn < 0.1 and done < total):
            return
        self._drawn = now
        self._shown = True
        share = min(1.0, done / self.total)
        bar = "#" * int(share * 30)
        self.stream.write(f"\r[{bar:<30}] {share:6.1%} {done}/{self.total}")
        self.stream.flush()

    def done(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
        self._shown = False
