"""`cocreate diff`, `cocreate sessions`, `cocreate summary`: the history reports of the HTTP API, printed."""

# Same JSON as the routes (`--json`), or a short text form for people. They read the database like
# the other history commands (server/history_cli.py does the set-up and the checks).

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persistence.base import DocumentRecord
    from server.history import HistoryService
    from server.history_cli import Progress

COMMANDS = ("diff", "sessions", "summary")


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    diff = sub.add_parser("diff", help="text added and removed between two moments, with authors")
    common(diff)
    diff.add_argument("--from", dest="start", default=None, help="the earlier moment (default: the start)")
    diff.add_argument("--to", dest="end", default=None, help="the later moment (default: now)")
    diff.add_argument("--json", action="store_true", help="print the diff as JSON")

    sessions = sub.add_parser("sessions", help="the facilitated sessions and bookmarks of a document")
    common(sessions)
    sessions.add_argument("--json", action="store_true", help="print the sessions as JSON")

    summary = sub.add_parser("summary", help="per participant: written, kept, deleted, comments, minutes")
    common(summary)
    summary.add_argument("--session", default=None, help="a session id (see `cocreate sessions`)")
    summary.add_argument("--from", dest="start", default=None, help="after this moment (default: the start)")
    summary.add_argument("--to", dest="end", default=None, help="up to this moment (default: now)")
    summary.add_argument("--json", action="store_true", help="print the summary as JSON")


async def run(
    args: argparse.Namespace, history: HistoryService, record: DocumentRecord, progress: Progress
) -> None:
    from server.history import HistoryProblem
    from server.history_reports import diff_view, summary_view
    from server.sessions import Sessions

    sessions = Sessions(history)
    if args.command == "sessions":
        found, loose = await sessions.list(record)
        view: dict[str, Any] = {
            "document": record.name,
            "sessions": [s.view() for s in found],
            "bookmarks": [b.view() for b in loose],
        }
        _print(view, args.json, _sessions_text)
        return
    await history.fold(record, progress.update)
    progress.done()
    if args.command == "summary" and args.session is not None:
        if args.start is not None or args.end is not None:
            raise HistoryProblem(2, "invalid_parameter", "give --session or --from/--to, not both")
        session = await sessions.get(record, args.session)
        until = session.end_seq if session.end_seq is not None else record.last_seq
        span = (session.started_at, session.ended_at)
        view = {"session": session.view()} | await summary_view(
            history, record, session.start_seq, until, span
        )
        _print(view, args.json, _summary_text)
        return
    after, until = await _window(history, record, args.start, args.end)
    if args.command == "diff":
        _print(await diff_view(history, record, after, until), args.json, _diff_text)
    else:
        _print(await summary_view(history, record, after, until), args.json, _summary_text)


async def _window(
    history: HistoryService, record: DocumentRecord, start: str | None, end: str | None
) -> tuple[int, int]:
    from server.history import HistoryProblem
    from server.history_cli import moment_parts

    after = await history.resolve(record, *moment_parts(start)) if start is not None else 0
    until = await history.resolve(record, *moment_parts(end)) if end is not None else record.last_seq
    if until < after:
        raise HistoryProblem(2, "invalid_parameter", f"--to (seq {until}) is before --from (seq {after})")
    return after, until


def _print(view: dict[str, Any], as_json: bool, text: Callable[[dict[str, Any]], list[str]]) -> None:
    print(json.dumps(view, indent=2, ensure_ascii=False) if as_json else "\n".join(text(view)))


def _diff_text(view: dict[str, Any]) -> list[str]:
    lines = [f"{view['document']}: seq {view['from_seq']} -> {view['to_seq']}"]
    for author, totals in sorted(view["authors"].items()):
        lines.append(
            f"  {author or '(unknown)'}: +{totals['added']} -{totals['removed']} "
            f"(lost {totals['lost']} to others)"
        )
    for hunk in view["hunks"]:
        if hunk["kind"] == "added":
            lines.append(f"+ {hunk['root']}@{hunk['at']} {hunk['author']}: {hunk['text']!r}")
        else:
            lines.append(
                f"- {hunk['root']}@{hunk['at']} {hunk['author']} (deleted by {hunk['by']}): {hunk['text']!r}"
            )
    if view["truncated"]:
        lines.append("... (more hunks: use --json or a shorter window)")
    return lines


def _sessions_text(view: dict[str, Any]) -> list[str]:
    lines = [f"{view['document']}: {len(view['sessions'])} sessions"]
    for session in view["sessions"]:
        end = session["ended_at"] or "(open)"
        lines.append(
            f"{session['id']}  {session['name']!r}  {session['started_at']} .. {end}  "
            f"seq {session['start_seq']}..{session['end_seq'] if session['end_seq'] is not None else ''}"
        )
        for mark in session["bookmarks"]:
            lines.append(f"    {mark['at']}  seq {mark['seq']}  {mark['label']!r} ({mark['author']})")
    for mark in view["bookmarks"]:
        lines.append(f"{mark['at']}  seq {mark['seq']}  {mark['label']!r} ({mark['author']}, no session)")
    return lines


def _summary_text(view: dict[str, Any]) -> list[str]:
    lines = [f"{view['document']}: seq {view['after_seq']}..{view['until_seq']} (code points)"]
    for p in view["participants"]:
        built = ", ".join(f"{who} {count}" for who, count in sorted(p["built_on"].items())) or "-"
        lines.append(
            f"  {p['author'] or '(unknown)'}: {p['updates']} updates, wrote {p['written']}, "
            f"kept {p['kept']}, deleted own {p['deleted_own']} / others' {p['deleted_others']}, "
            f"lost {p['lost_to_others']}, {p['comments']} comments {p['replies']} replies, "
            f"{p['active_minutes']} active min, built on: {built}"
        )
    return lines
