"""`cocreate restore`: ask a running server to make an earlier moment current (its HTTP restore route)."""

# Restore writes: the restoring change must be computed against the live room's document, applied
# and logged by the room that owns the document (one writer per log) and broadcast to whoever is
# connected. A CLI writing to the database beside a running server would be a second writer, so
# this command does not open the database: it calls `POST /api/documents/{name}/-/history/restore`
# of a running server with a token of an editor or owner (`--token` or $COCREATE_TOKEN), which
# runs the same code path (server/restore.py) and records the restorer as the author.

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

COMMANDS = ("restore",)
TIMEOUT = 60.0  # the route waits up to 30 s for the room to commit


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    restore = sub.add_parser(
        "restore", help="make an earlier moment the current content (a new change), via a running server"
    )
    restore.add_argument("document", help="document name, e.g. team/notes")
    restore.add_argument("--at", required=True, help="a seq, @unix-seconds or an ISO 8601 time")
    restore.add_argument(
        "--server", required=True, help="the running server's base URL, e.g. http://host:8000"
    )
    restore.add_argument(
        "--token", default=None, help="an editor's or owner's token (default: $COCREATE_TOKEN)"
    )
    restore.add_argument("--json", action="store_true", help="print the server's answer as JSON")


def moment_body(raw: str) -> dict[str, Any]:
    """The route's body for a moment: {"seq": n} for an integer, {"at": ...} for a time."""
    text = raw.strip()
    if text.isdigit():
        return {"seq": int(text)}
    return {"at": text[1:] if text.startswith("@") else text}


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    token = args.token or os.environ.get("COCREATE_TOKEN", "")
    if not token:
        parser.error("no token: pass --token or set COCREATE_TOKEN (an editor's or owner's token)")
    base = args.server.rstrip("/")
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        parser.error(f"--server must be an http(s) URL, not {args.server!r}")
    path = f"/api/documents/{urllib.parse.quote(args.document, safe='/')}/-/history/restore"
    request = urllib.request.Request(
        base + path,
        data=json.dumps(moment_body(args.at)).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:  # http(s) only: checked above
            view = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        print(f"cocreate restore: {exc.code} {_problem(exc.read())}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        print(f"cocreate restore: cannot reach {base}: {reason}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(view, indent=2, ensure_ascii=False))
    elif view.get("changed"):
        print(f"{view['document']}: restored to seq {view['restored_to_seq']} as seq {view['seq']}")
    else:
        print(f"{view['document']}: already reads as at seq {view['restored_to_seq']}; nothing changed")
    return 0


def _problem(body: bytes) -> str:
    """The server's JSON error as `code: detail` (or the raw text)."""
    try:
        found = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:300]
    if isinstance(found, dict) and "error" in found:
        return f"{found['error']}: {found.get('detail', '')}"
    return str(found)[:300]
