"""Every tunable of the server as data: defaults, units and meaning in one place."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Settings:
    """Server settings. Sizes are bytes, durations seconds."""

    host: str = "127.0.0.1"
    port: int = 1234
    data_dir: Path = field(default_factory=lambda: Path("data"))
    database_url: str | None = None  # None: SQLite file `cocreate.db` in data_dir
    ws_path: str = "/ws/"

    max_message_size: int = 32 * 1024 * 1024  # one websocket message (a first sync of a big doc)
    outbox_limit: int = 8 * 1024 * 1024  # bytes buffered for one slow reader before close 1013
    inbox_pause_bytes: int = 4 * 1024 * 1024  # stop reading a connection with this much unprocessed
    handshake_timeout: float = 10.0
    close_timeout: float = 5.0
    unload_delay: float = 0.0  # keep an empty room loaded this long before unloading it

    snapshot_min_updates: int = 1000  # compact when this many log rows follow the last snapshot ...
    snapshot_log_ratio: float = 1.0  # ... or when their bytes exceed the snapshot's bytes x this
    load_page_size: int = 5000

    def describe(self) -> dict[str, Any]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'cocreate.db').resolve()}"
