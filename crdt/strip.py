"""Rewriting a Yjs v1 update without some clients' new structs (client ids claimed by another user)."""

# The room filters instead of refusing (docs/PROTOCOL.md, "Client ids are claimed by their user"):
# an update carrying structs of a client id that another user claimed is applied without that
# client's struct section, and without its delete ranges past the clock the server knows (those
# could only delete the structs just removed, or clocks nobody has seen yet). Everything else is
# copied byte for byte: the other clients' sections keep their encoding, the delete set is
# re-encoded from its parsed ranges. Items of other clients whose origins were removed stay pending
# in yrs until the owner of the removed client sends them itself.

from __future__ import annotations

from collections.abc import Container, Mapping

from crdt.errors import DecodeError, InvalidUpdate
from crdt.lib0 import encode_var_uint
from crdt.validation import UpdateLimits, _Parser


def strip_clients(
    data: bytes, clients: Container[int], known: Mapping[int, int], limits: UpdateLimits | None = None
) -> bytes:
    """`data` without the struct sections of `clients` and their delete ranges beyond `known`
    (client -> next clock the server expects). Returns `data` itself when nothing is removed.
    Raises InvalidUpdate for an update the validator would refuse structurally."""
    parser = _Parser(data, limits or UpdateLimits(), record=True)
    try:
        summary = parser.parse(None, (), ())
    except DecodeError as exc:
        raise InvalidUpdate(f"malformed update at byte {parser.dec.pos}: {exc.detail}") from exc
    kept = [(start, end) for client, start, end in parser.sections if client not in clients]
    deleted: list[tuple[int, list[tuple[int, int]]]] = []
    clipped = False
    for client, ranges in summary.deleted.items():
        if client in clients:
            ceiling = known.get(client, 0)
            inside = [(clock, min(length, ceiling - clock)) for clock, length in ranges if clock < ceiling]
            clipped = clipped or inside != ranges
            ranges = inside
        if ranges:
            deleted.append((client, ranges))
    if len(kept) == len(parser.sections) and not clipped:
        return data
    parts = [encode_var_uint(len(kept))]
    parts += [data[start:end] for start, end in kept]
    parts.append(encode_var_uint(len(deleted)))
    for client, ranges in deleted:
        parts.append(encode_var_uint(client))
        parts.append(encode_var_uint(len(ranges)))
        for clock, length in ranges:
            parts.append(encode_var_uint(clock))
            parts.append(encode_var_uint(length))
    return b"".join(parts)
