"""What goes in and out of the comment API: checks of bodies, mentions, emoji and anchors; JSON views."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crdt.anchors import Resolution
from crdt.positions import Unit
from persistence.base import DocumentRecord
from persistence.comments import RESOLVED, CommentRecord, Reaction, ThreadRecord

MAX_BODY_CHARS = 10_000
MAX_MENTIONS = 50
MAX_EMOJI_CHARS = 16
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9][A-Za-z0-9_.\-]{0,63})")
_EMOJI_JOINERS = {"\u200d", "\ufe0f", "\ufe0e", "\u20e3"}


class CommentError(Exception):
    """A refused request: HTTP `status`, a machine `code`, and the offending `field` if any."""

    def __init__(self, status: int, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field = status, code, detail, field


@dataclass(frozen=True, slots=True)
class RangeInput:
    start: int
    end: int
    unit: Unit


@dataclass(frozen=True, slots=True)
class PositionsInput:
    start: bytes
    end: bytes


def parse_mentions(body: str) -> list[str]:
    """The distinct user ids written as `@id` in a body (at most MAX_MENTIONS), in order."""
    found = list(dict.fromkeys(m.rstrip(".-") for m in _MENTION.findall(body)))
    return [m for m in found if m][:MAX_MENTIONS]


def check_body(value: object, field: str = "body") -> str:
    if not isinstance(value, str):
        raise CommentError(422, "invalid_body", "must be a string", field)
    if len(value) > MAX_BODY_CHARS:
        raise CommentError(413, "comment_too_long", f"longer than {MAX_BODY_CHARS} characters", field)
    if not value.strip():
        raise CommentError(422, "invalid_body", "must not be empty", field)
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t"), None)
    if bad is not None:
        raise CommentError(422, "invalid_body", f"contains the control character U+{ord(bad):04X}", field)
    return value


def check_emoji(value: str) -> str:
    if not value or len(value) > MAX_EMOJI_CHARS:
        raise CommentError(422, "invalid_emoji", f"must be 1 to {MAX_EMOJI_CHARS} characters", "emoji")
    for char in value:
        category = unicodedata.category(char)
        if char not in _EMOJI_JOINERS and (category[0] in "CZ" or char in "/\\"):
            raise CommentError(422, "invalid_emoji", f"contains U+{ord(char):04X}", "emoji")
    return value


def decode_position(value: object, field: str) -> bytes:
    """Base64 (standard or URL-safe, padding optional) of an encoded Yjs relative position."""
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise CommentError(422, "invalid_anchor", "must be a base64 string of a relative position", field)
    try:
        return base64.b64decode(
            value + "=" * (-len(value) % 4),
            altchars=b"-_" if "-" in value or "_" in value else None,
            validate=True,
        )
    except (binascii.Error, ValueError):
        raise CommentError(422, "invalid_anchor", "is not valid base64", field) from None


# -- views ---------------------------------------------------------------------------------------


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def thread_state(thread: ThreadRecord, found: Resolution) -> str:
    """`resolved` (by a person) wins over `orphaned` (its text is gone) over `open`."""
    if thread.status == RESOLVED:
        return "resolved"
    return "orphaned" if found.orphaned or found.missing else "open"


def thread_view(
    record: DocumentRecord,
    thread: ThreadRecord,
    found: Resolution,
    unit: Unit,
    comments: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """A thread with its current range (in `unit`) and quote, and its comments."""
    return {
        "id": thread.id,
        "document": record.name,
        "root": thread.root,
        "status": thread.status,
        "state": thread_state(thread, found),
        "orphaned": found.orphaned or found.missing,
        "range": None if found.missing else {"start": found.start, "end": found.end, "unit": unit},
        "quote": found.quote,
        "original_quote": thread.quote,
        "anchor": {"start": b64(thread.anchor_start), "end": b64(thread.anchor_end)},
        "created_by": thread.created_by,
        "created_at": iso(thread.created_at),
        "updated_at": iso(thread.updated_at),
        "resolved_by": thread.resolved_by,
        "resolved_at": iso(thread.resolved_at),
        "comments": list(comments),
    }


def comment_view(comment: CommentRecord, reactions: Sequence[Reaction]) -> dict[str, Any]:
    """A comment; reactions grouped by emoji (users in the order they reacted)."""
    grouped: dict[str, list[str]] = {}
    for reaction in reactions:
        grouped.setdefault(reaction.emoji, []).append(reaction.user_id)
    return {
        "id": comment.id,
        "thread": comment.thread_id,
        "author": comment.author,
        "body": comment.body,
        "reply_to": comment.reply_to,
        "mentions": list(comment.mentions),
        "reactions": [{"emoji": e, "users": users, "count": len(users)} for e, users in grouped.items()],
        "created_at": iso(comment.created_at),
        "edited_at": iso(comment.edited_at),
        "deleted": comment.deleted_at is not None,
        "deleted_at": iso(comment.deleted_at),
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
