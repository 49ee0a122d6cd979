"""The `cocreate` command line: `serve`, `token`, and `history`/`export`/`replay` (more as features land)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence

from server import history_cli
from server.settings import Settings, setting_fields

_ALIASES = {"database_url": ["--db"], "redis_url": ["--redis"]}


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the collaboration server")
    for name, default, kind, help_text in setting_fields():
        flags = [f"--{name.replace('_', '-')}", *_ALIASES.get(name, [])]
        serve.add_argument(*flags, dest=name, default=None, metavar=kind.upper().split(" ")[0],
                           help=f"{help_text} (default: {default})")  # fmt: skip
    serve.add_argument("--log-level", default="info")


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
    args = parser.parse_args(argv)
    if args.command == "token":
        return _print_token(args, parser)
    if args.command in history_cli.COMMANDS:
        return history_cli.run(args, parser)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "serve":
        from server.app import serve

        given = {
            name: getattr(args, name) for name, *_ in setting_fields() if getattr(args, name) is not None
        }
        try:
            settings = Settings.from_environment().with_values(given)
        except ValueError as exc:
            parser.error(str(exc))
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(settings))
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
