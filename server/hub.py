"""Admission of websocket handshakes: which document, with which rights and options, or why not."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from server.names import InvalidName, normalize_name
from server.rooms import RoomRegistry
from server.settings import Settings


@dataclass(frozen=True, slots=True)
class Admission:
    document: str
    read_only: bool
    acks: bool
    author: str


@dataclass(frozen=True, slots=True)
class Rejection:
    status: int
    error: str
    detail: str


class Hub:
    """Everything a websocket connection needs from the server, in one object."""

    def __init__(self, registry: RoomRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.connections = 0

    def admit(self, target: str, connection_id: int) -> Admission | Rejection:
        """Decide on a handshake for request-target `target` (path and query)."""
        parts = urlsplit(target)
        prefix = self.settings.ws_path
        if not parts.path.startswith(prefix):
            return Rejection(404, "not_found", f"websocket endpoint is {prefix}{{document}}")
        try:
            name = normalize_name(unquote(parts.path[len(prefix) :], errors="strict"))
        except (InvalidName, UnicodeDecodeError) as exc:
            return Rejection(400, "invalid_document_name", str(exc))
        query = parse_qs(parts.query)
        acks = query.get("acks", ["0"])[-1] in ("1", "true")
        return Admission(document=name, read_only=False, acks=acks, author=f"anonymous:{connection_id}")
