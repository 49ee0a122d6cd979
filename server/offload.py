"""CPU-heavy pure work moved off the event loop, into a worker process: validating (and filtering)
very large updates and finding where to cut them for a chunked apply, merging large deltas,
checking that a large snapshot loads again.

A process, not a thread: pycrdt holds the GIL while it applies an update (a thread would stall the
loop just the same), and a native crash there takes the worker down, not the server."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pycrdt import Doc, merge_updates

from crdt.chunks import Split, split_update
from crdt.document import is_native_failure
from crdt.strip import strip_clients
from crdt.validation import UpdateLimits, UpdateSummary

log = logging.getLogger("cocreate.offload")

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
) -> tuple[UpdateSummary, Split]:
    """`validate_update` in a worker process, and where to cut the update into pieces
    (`crdt.chunks`); raises what it raises (InvalidUpdate, UpdateAhead)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _executor(), split_update, update, dict(known_state), owned_clients, foreign_owned, limits
    )


async def strip_large_update(
    update: bytes,
    clients: frozenset[int],
    known_state: Mapping[int, int],
    owned_clients: frozenset[int],
    foreign_owned: frozenset[int],
    limits: UpdateLimits,
) -> tuple[bytes, UpdateSummary, Split]:
    """`crdt.strip.strip_clients`, then `validate_update` of the result and where to cut it, in a
    worker process."""
    loop = asyncio.get_running_loop()
    known = dict(known_state)
    return await loop.run_in_executor(
        _executor(), _strip_and_validate, update, clients, known, owned_clients, foreign_owned, limits
    )


def _strip_and_validate(
    update: bytes,
    clients: frozenset[int],
    known: dict[int, int],
    owned: frozenset[int],
    foreign: frozenset[int],
    limits: UpdateLimits,
) -> tuple[bytes, UpdateSummary, Split]:
    stripped = strip_clients(update, clients, known, limits)
    return stripped, *split_update(stripped, known, owned, foreign, limits)


async def merge_off_loop(updates: list[bytes]) -> bytes:
    """`pycrdt.merge_updates` in the worker process (many large deltas take a while to merge)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), _merge, updates)


def _merge(updates: list[bytes]) -> bytes:
    return merge_updates(*updates)


def reloads(state: bytes) -> bool:
    """Whether an encoded document state loads into a fresh document (pycrdt can encode states it
    cannot load again)."""
    try:
        Doc().apply_update(state)
    except BaseException as exc:
        if not is_native_failure(exc):
            raise
        return False
    return True


async def reloads_off_loop(state: bytes) -> bool:
    """`reloads` in the worker process; False when the worker died on it (a fresh one is started
    next time)."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_executor(), reloads, state)
    except BrokenProcessPool:
        log.error(
            "the worker process died test-loading a %d-byte state; a new one starts next time", len(state)
        )
        shutdown()
        return False


def shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None
