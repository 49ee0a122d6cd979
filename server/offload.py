"""CPU-heavy pure work moved off the event loop: validating very large updates in a worker process."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor

from crdt.validation import UpdateLimits, UpdateSummary, validate_update

_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        # spawn: a fresh interpreter, no copy of the event loop, sockets or pycrdt state of this one
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _pool


async def validate_large_update(
    update: bytes,
    known_state: Mapping[int, int],
    owned_clients: frozenset[int],
    foreign_owned: frozenset[int],
    limits: UpdateLimits,
) -> UpdateSummary:
    """`validate_update` in a worker process; raises what it raises (InvalidUpdate, UpdateAhead)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _executor(), validate_update, update, dict(known_state), owned_clients, foreign_owned, limits
    )


def shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None
