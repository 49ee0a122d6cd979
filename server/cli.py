"""The `cocreate` command line: serve, settings, token, the history commands, restore, backups and epochs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from persistence.base import SchemaMismatch, StorageError
from server import backup_cli, history_cli, logs, restore_cli
from server.config import CONFIG_VARIABLE, render, resolve
from server.settings import setting_fields

EXIT_UNUSABLE_DATABASE = 2  # `serve` on a database of an unknown schema version (nothing was changed)
_ALIASES = {"database_url": ["--db"], "redis_url": ["--redis"]}


def _setting_flags(parser: argparse.ArgumentParser) -> None:
    """A `--flag` per setting, and `--config FILE.toml`; precedence: flag > environment > file > default."""
    parser.add_argument("--config", type=Path, default=None, metavar="FILE.toml",
                        help=f"settings file with the flags' keys (default: ${CONFIG_VARIABLE})")  # fmt: skip
    for name, default, kind, help_text in setting_fields():
        flags = [f"--{name.replace('_', '-')}", *_ALIASES.get(name, [])]
        switch: dict[str, Any] = {"nargs": "?", "const": "true"} if kind == "bool" else {}  # `--flag`: on
        parser.add_argument(*flags, dest=name, default=None, metavar=kind.upper().split(" ")[0],
                            help=f"{help_text} (default: {default})", **switch)  # fmt: skip


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _setting_flags(sub.add_parser("serve", help="run the collaboration server"))
    _setting_flags(
        sub.add_parser("settings", help="print the effective settings and where each came from (redacted)")
    )


def _token_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="print a signed access token (last line of the output)")
    token.add_argument("--user", required=True, help="user id (the author recorded in the log)")
    token.add_argument("--name", default=None, help="display name shown to others (default: the user id)")
    token.add_argument("--grant", action="append", default=[], metavar="PATTERN=ROLE",
                       help="e.g. 'team/*=editor', 'notes/plan=viewer', '*=owner'; repeatable")  # fmt: skip
    token.add_argument("--ttl", default="8h", help="lifetime: 90s, 15m, 8h, 7d (default: 8h)")
    token.add_argument("--secret", default=None, help="signing secret (default: $COCREATE_SECRET)")


def _print_token(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from server.tokens import issue, parse_duration, parse_grant

    secret = args.secret or os.environ.get("COCREATE_SECRET", "")
    if not secret:
        parser.error("no secret: pass --secret or set COCREATE_SECRET (the server's secret)")
    try:
        grants = dict(parse_grant(text) for text in args.grant)
        ttl = parse_duration(args.ttl)
        token = issue(args.user, args.name or args.user, grants, now=time.time(), ttl=ttl, secret=secret)
    except ValueError as exc:
        parser.error(str(exc))
    summary = ", ".join(f"{p}={r.name.lower()}" for p, r in grants.items()) or "no grants"
    print(f"token for {args.user!r} ({summary}), valid {args.ttl}:", file=sys.stderr)
    print(token)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cocreate", description="real-time collaborative editing server")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _token_parser(sub)
    history_cli.add_parsers(sub)
    restore_cli.add_parsers(sub)
    backup_cli.add_parsers(sub)
    args = parser.parse_args(argv)
    if args.command == "token":
        return _print_token(args, parser)
    if args.command in history_cli.COMMANDS:
        return history_cli.run(args, parser)
    if args.command in restore_cli.COMMANDS:
        return restore_cli.run(args, parser)
    if args.command in backup_cli.COMMANDS:
        return backup_cli.run(args, parser)
    if args.command in ("serve", "settings"):
        given = {
            name: getattr(args, name) for name, *_ in setting_fields() if getattr(args, name) is not None
        }
        try:
            settings, sources = resolve(given, os.environ, args.config)
        except ValueError as exc:
            parser.error(str(exc))
        if args.command == "settings":
            print(render(settings, sources))
            return 0
        from server.app import serve

        logs.configure(settings.log_level, settings.log_format)
        # uvicorn re-raises the signal that stopped it once shut down: make SIGTERM end like SIGINT
        # (a KeyboardInterrupt, suppressed below), so a graceful stop exits with status 0.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve(settings))
        except SchemaMismatch as exc:  # before listening: one line, not a traceback
            print(f"cocreate serve: {exc}", file=sys.stderr, flush=True)
            return EXIT_UNUSABLE_DATABASE
        except StorageError as exc:
            print(f"cocreate serve: cannot open the database: {exc}", file=sys.stderr, flush=True)
            return 1
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
