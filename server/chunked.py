"""Applying a large validated update piece by piece, letting the event loop serve other rooms in between."""

# The room awaits `apply_in_pieces` from its own task, so its inbox waits (items keep their order)
# while every other room and socket runs between two pieces. Each piece is a small valid update
# (`crdt.chunks`): up to 64 KiB of structs cost pycrdt a few milliseconds. Until the last piece is in,
# the document holds part of an update that is not logged yet: the room refuses to snapshot it.

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pycrdt import merge_updates

from crdt.chunks import PIECE_BYTES, Split
from crdt.document import EMPTY_UPDATE, Document
from crdt.type_depth import ReadClient, TypeDepths
from crdt.validation import UpdateSummary
from server.offload import merge_off_loop

GROUP_BYTES = 64 * 1024
"""Struct bytes applied in one pycrdt call when no type-depth check runs (a few milliseconds)."""


async def apply_in_pieces(
    document: Document,
    update: bytes,
    summary: UpdateSummary,
    split: Split,
    known: dict[int, int],
    type_depths: TypeDepths | None,
    read_client: ReadClient,
    stopped: Callable[[], bool],
    merge_off_loop_above: int,
) -> tuple[bytes, bool] | None:
    """Apply `update` (validated, cut by `split`) to `document`, whose clock state is `known`;
    return what changed and whether `known` advanced by exactly the update's runs (then the
    update itself is the change), or None when `stopped()` turned true between two pieces.

    A fresh update (every run starts where `known` ends) is applied without observing, like
    `Document.integrate`; an overlapping one (a reconnecting client's step 2) is observed piece by
    piece, pieces wholly below the known clocks skipped (the last one's delete set still applies),
    and the captured changes merged. With `type_depths`, each piece's shared types are admitted
    before it is applied. Raises InvalidUpdate (a piece nests types too deep) or ApplyFailed
    (pycrdt failed): part of the update may then be in the document, which the owner must rebuild.
    """
    runs = summary.clients
    fresh = all(first == known.get(client, 0) for client, (first, _) in runs.items())
    last = len(split) - 1
    group_bytes = PIECE_BYTES if type_depths is not None else GROUP_BYTES  # its check is pure Python
    deltas: list[bytes] = []
    index = 0
    while index <= last:
        through = split.reach(index, group_bytes)
        skip = not fresh and split.known_already(through, known)
        if skip and through < last:
            index = through + 1
            continue
        piece = split.piece(update, index, structs=not skip, through=through)
        if type_depths is not None and not skip:
            type_depths.admit(piece, read_client)
        if fresh:
            document.apply_fresh(piece)
        else:
            delta = document.apply(piece)
            if delta:
                deltas.append(delta)
        index = through + 1
        if index <= last:
            await asyncio.sleep(0)  # other rooms run; this room's inbox waits
            if stopped():
                return None
    if fresh:
        return (update if (summary.struct_count or summary.deleted) else b""), True
    if not deltas:
        return b"", False
    if len(deltas) == 1:
        return deltas[0], False
    if sum(len(delta) for delta in deltas) > merge_off_loop_above:
        merged = await merge_off_loop(deltas)
    else:
        merged = merge_updates(*deltas)
    return (b"" if merged == EMPTY_UPDATE else merged), False
