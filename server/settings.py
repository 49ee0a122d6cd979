"""Every tunable of the server as data: name, default, unit and meaning in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    """Server settings. Sizes are bytes, durations seconds. Each is a `--flag` and a COCREATE_* variable."""

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(1234, "port to listen on (0 picks a free one)")
    data_dir: Path = setting(Path("data"), "folder for the default SQLite database")  # noqa: RUF009
    database_url: str | None = setting(None, "SQLAlchemy URL; default: SQLite file in data_dir")
    ws_path: str = setting("/ws/", "URL prefix of the y-websocket endpoint")

    max_message_size: int = setting(32 * 1024 * 1024, "largest websocket message accepted (close 1009)")
    outbox_limit: int = setting(8 * 1024 * 1024, "bytes buffered for a slow reader before close 1013")
    inbox_pause_bytes: int = setting(4 * 1024 * 1024, "unprocessed input that pauses reading a socket")
    handshake_timeout: float = setting(10.0, "seconds for a websocket handshake to complete")
    close_timeout: float = setting(5.0, "seconds to flush and close on shutdown")

    snapshot_min_updates: int = setting(1000, "log rows after the last snapshot that trigger compaction")
    snapshot_log_ratio: float = setting(1.0, "compact when log tail bytes exceed snapshot bytes x this")
    load_page_size: int = setting(5000, "log rows read per query when loading a document")
    log_retention_seconds: float = setting(
        0.0, "delete log rows older than this once a snapshot covers them; 0 keeps all history (default)"
    )

    def describe(self) -> dict[str, Any]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'cocreate.db').resolve()}"

    def with_values(self, values: Mapping[str, Any]) -> Settings:
        """A copy with the given fields replaced, each converted to the field's type."""
        known = {f.name: f for f in fields(self)}
        converted = {}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown setting {name!r}")
            converted[name] = convert(getattr(type(self), name, None), known[name].type, value)
        return replace(self, **converted)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        values = {}
        for item in fields(cls):
            variable = f"COCREATE_{item.name.upper()}"
            if variable in environ:
                values[item.name] = environ[variable]
        return cls().with_values(values)


def convert(_default: Any, annotation: Any, value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value
    kind = str(annotation)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "Path":
        return Path(value)
    if kind == "bool":
        return value.lower() in ("1", "true", "yes", "on")
    return value


def setting_fields() -> list[tuple[str, Any, str, str]]:
    """(name, default, type name, help) for every setting, for the CLI and docs."""
    rows = []
    for item in fields(Settings):
        default = item.default if item.default is not MISSING else None
        rows.append((item.name, default, str(item.type), item.metadata.get("help", "")))
    return rows
