"""The one exception tree raised by the sans-I/O core, each error carrying its websocket close code."""

from __future__ import annotations


class CoreError(Exception):
    """Base class of every error the core raises on untrusted input."""

    close_code: int = 1002
    reason: str = "protocol error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.reason)
        self.detail = detail or self.reason


class DecodeError(CoreError):
    """Bytes that do not follow the lib0 / y-protocols grammar (truncated, bad varint, bad UTF-8)."""

    close_code = 1002
    reason = "malformed message"


class MessageTooLarge(DecodeError):
    """A message or one of its length prefixes is larger than the configured cap."""

    close_code = 1009
    reason = "message too big"


class UnsupportedMessage(DecodeError):
    """A message type or sub-type this endpoint does not accept."""

    close_code = 1003
    reason = "unsupported message"


class InvalidUpdate(CoreError):
    """A Yjs update refused by the validator before pycrdt saw it."""

    close_code = 1007
    reason = "invalid update"


class UpdateAhead(InvalidUpdate):
    """A well-formed update that refers to state the server has not seen yet (refused, not fatal:
    the sender's next sync step 2 carries it again)."""

    reason = "update refers to unknown state"


class ApplyFailed(CoreError):
    """pycrdt raised while integrating an update; the document may be partly changed."""

    close_code = 1011
    reason = "update could not be applied"


class PermissionDenied(CoreError):
    """A write from a connection that may only read."""

    close_code = 4403
    reason = "read-only connection"
