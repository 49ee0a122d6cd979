"""Make a document's content equal another's by new operations (never by rewriting history)."""

# `converge(work, target)` edits `work` — a replica of the current document — until every text,
# map and array root reads like `target`'s, with small edits where it can (unchanged text keeps its
# identity, so concurrent edits, comment anchors and cursors around it survive), and returns the
# Yjs update of those edits. Restore submits that update to the live room; replay uses it to move a
# viewer's copy backwards. XML roots are left as they are and reported (rebuilding elements would
# drop their formatting marks).

from __future__ import annotations

import difflib
import json
from itertools import accumulate
from typing import Any

from pycrdt import Array, Doc, Map, Text

from crdt.sequence import root_kinds

CHAR_DIFF_LIMIT = 4000  # characters per side below which a changed block of lines is diffed by character


def text_edits(old: str, new: str) -> list[tuple[int, int, str]]:
    """(position in `old`, characters to delete, text to insert), ascending, non-overlapping."""
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    end = 0
    while end < limit - start and old[len(old) - 1 - end] == new[len(new) - 1 - end]:
        end += 1
    a, b = old[start : len(old) - end], new[start : len(new) - end]
    if not a and not b:
        return []
    if not a or not b:
        return [(start, len(a), b)]
    edits: list[tuple[int, int, str]] = []
    a_lines, b_lines = a.splitlines(keepends=True), b.splitlines(keepends=True)
    a_at = [0, *accumulate(len(line) for line in a_lines)]
    b_at = [0, *accumulate(len(line) for line in b_lines)]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        a_part, b_part = a[a_at[i1] : a_at[i2]], b[b_at[j1] : b_at[j2]]
        base = start + a_at[i1]
        if tag == "replace" and len(a_part) <= CHAR_DIFF_LIMIT and len(b_part) <= CHAR_DIFF_LIMIT:
            matcher = difflib.SequenceMatcher(None, a_part, b_part, autojunk=False)
            for ctag, c1, c2, d1, d2 in matcher.get_opcodes():
                if ctag != "equal":
                    edits.append((base + c1, c2 - c1, b_part[d1:d2]))
        else:
            edits.append((base, len(a_part), b_part))
    return edits


def _copy(value: Any) -> Any:
    """A prelim copy of a value read from another document (shared types become new ones)."""
    if isinstance(value, Text):
        return Text(str(value))
    if isinstance(value, Map):
        return Map({key: _copy(item) for key, item in value.items()})
    if isinstance(value, Array):
        return Array([_copy(item) for item in value])
    return value


def _converge_text(doc: Doc[Any], text: Text, old: str, new: str) -> bool:
    edits = text_edits(old, new)
    if not edits:
        return False
    ascii_only = old.isascii()
    offsets = None if ascii_only else [0, *accumulate(len(ch.encode()) for ch in old)]
    for position, length, insert in reversed(edits):  # back to front: earlier offsets stay valid
        begin = position if offsets is None else offsets[position]
        stop = position + length if offsets is None else offsets[position + length]
        with doc.transaction():
            if stop > begin:
                del text[begin:stop]
            if insert:
                text.insert(begin, insert)
    return True


def _converge_map(doc: Doc[Any], work: Map[Any], target: Map[Any] | None) -> bool:
    wanted = dict(target.items()) if target is not None else {}
    current = work.to_py() or {}
    changed = False
    for key in list(work.keys()):
        if key not in wanted:
            with doc.transaction():
                del work[key]
            changed = True
    for key, value in wanted.items():
        plain = value.to_py() if isinstance(value, Text | Map | Array) else value
        if key not in current or current[key] != plain:
            with doc.transaction():
                work[key] = _copy(value)
            changed = True
    return changed


def _converge_array(doc: Doc[Any], work: Array[Any], target: Array[Any] | None) -> bool:
    wanted = list(target) if target is not None else []
    old = [_canonical(item) for item in (work.to_py() or [])]
    new = [_canonical(item.to_py() if isinstance(item, Text | Map | Array) else item) for item in wanted]
    opcodes = [
        op for op in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes() if op[0] != "equal"
    ]
    for _tag, i1, i2, j1, j2 in reversed(opcodes):
        with doc.transaction():
            if i2 > i1:
                del work[i1:i2]
            for offset, item in enumerate(wanted[j1:j2]):
                work.insert(i1 + offset, _copy(item))
    return bool(opcodes)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def converge(work: Doc[Any], target: Doc[Any]) -> tuple[bytes, list[str]]:
    """Edit `work` until its text, map and array roots read like `target`'s. Returns the update of
    the edits (b"" when nothing changed) and the roots left alone (XML)."""
    target_kinds = root_kinds(target.get_update())
    work_kinds = root_kinds(work.get_update())
    before = work.get_state()
    skipped: list[str] = []
    changed = False
    for name in sorted({*target_kinds, *work_kinds}):
        kind = target_kinds.get(name) or work_kinds.get(name)
        present = name in target_kinds
        if kind == "text":
            text = work.get(name, type=Text)
            new = str(target.get(name, type=Text)) if present else ""
            changed |= _converge_text(work, text, str(text), new)
        elif kind == "map":
            changed |= _converge_map(
                work, work.get(name, type=Map), target.get(name, type=Map) if present else None
            )
        elif kind == "array":
            source = target.get(name, type=Array) if present else None
            changed |= _converge_array(work, work.get(name, type=Array), source)
        else:
            skipped.append(name)
    return (work.get_update(before) if changed else b""), skipped
