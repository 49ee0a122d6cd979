"""The `cocreate` command line: `cocreate serve` (more subcommands join as features land)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

from server.settings import Settings, setting_fields

_ALIASES = {"database_url": ["--db"]}


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the collaboration server")
    for name, default, kind, help_text in setting_fields():
        flags = [f"--{name.replace('_', '-')}", *_ALIASES.get(name, [])]
        serve.add_argument(*flags, dest=name, default=None, metavar=kind.upper().split(" ")[0],
                           help=f"{help_text} (default: {default})")  # fmt: skip
    serve.add_argument("--log-level", default="info")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cocreate", description="real-time collaborative editing server")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    args = parser.parse_args(argv)
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
