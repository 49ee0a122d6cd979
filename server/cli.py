"""The `cocreate` command line: `cocreate serve` (more subcommands join as features land)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from server.settings import Settings


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = Settings()
    serve = sub.add_parser("serve", help="run the collaboration server")
    serve.add_argument("--host", default=defaults.host)
    serve.add_argument("--port", type=int, default=defaults.port, help="0 picks a free port")
    serve.add_argument("--data-dir", type=Path, default=defaults.data_dir)
    serve.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy URL, e.g. sqlite+aiosqlite:///data/cocreate.db or postgresql+asyncpg://...; "
        "'memory://' keeps nothing. Default: SQLite file in --data-dir",
    )
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

        settings = Settings(host=args.host, port=args.port, data_dir=args.data_dir, database_url=args.db)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(settings))
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
