"""Every tunable of the server as data: name, default, unit and meaning in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_UPDATE_DEPTH = 1000  # pycrdt's recursive decoder overflows the stack (SIGSEGV) far deeper than this


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
    web_dir: str | None = setting(
        None, "built browser app folder (index.html, assets/); default: client/web/dist"
    )
    secret: str | None = field(  # never logged, shown or repr'd; prefer COCREATE_SECRET to --secret
        default=None,
        repr=False,
        metadata={
            "help": "HS256 key signing access tokens; unset: local mode, full rights",
            "sensitive": True,
        },
    )

    max_message_size: int = setting(32 * 1024 * 1024, "largest websocket message accepted (close 1009)")
    outbox_limit: int = setting(8 * 1024 * 1024, "bytes buffered for a slow reader before close 1013")
    inbox_pause_bytes: int = setting(4 * 1024 * 1024, "unprocessed input that pauses reading a socket")
    handshake_timeout: float = setting(10.0, "seconds for a websocket handshake to complete")
    close_timeout: float = setting(5.0, "seconds to flush and close on shutdown")
    idle_timeout: float = setting(90.0, "close a connection that sent nothing (not even a pong) this long")
    ping_interval: float = setting(20.0, "seconds between server pings on quiet connections; 0: off")
    connections_per_address: int = setting(2000, "open websockets per client IP address (HTTP 429)")
    message_rate: float = setting(2000.0, "messages per second per connection before reading is throttled")
    message_burst: int = setting(5000, "messages a connection may send at once before the rate applies")
    byte_rate: float = setting(16 * 1024 * 1024, "input bytes per second per connection before throttling")
    max_document_size: int = setting(
        256 * 1024 * 1024, "approximate stored bytes of a document beyond which inserts are refused"
    )
    max_update_depth: int = setting(
        64, "nesting depth of values (JSON-like Any, embedded objects) inside one update (refused above)"
    )
    awareness_max_state_bytes: int = setting(16 * 1024, "largest awareness state (JSON text) accepted (1009)")
    awareness_max_entries: int = setting(64, "client entries in one awareness update (1009)")
    awareness_max_clients: int = setting(1, "awareness client ids one connection may own (others ignored)")
    awareness_rate: float = setting(
        20.0, "awareness updates per second per connection; over it the newest states are coalesced; 0: off"
    )
    awareness_burst: int = setting(40, "awareness updates a connection may send at once before the rate")
    offload_update_size: int = setting(
        256 * 1024,
        "updates larger than this are validated (snapshots larger than this are test-loaded) in a worker "
        "process, off the event loop",
    )

    hocuspocus_path: str = setting("/hocuspocus", "URL path of the Hocuspocus endpoint; empty: disabled")
    hocuspocus_max_documents: int = setting(256, "documents one Hocuspocus socket may address (close 1008)")
    hocuspocus_pending_documents: int = setting(64, "Hocuspocus documents awaiting auth, per socket (1008)")
    hocuspocus_pending_bytes: int = setting(4 * 1024 * 1024, "bytes queued before auth, per socket (1008)")
    hocuspocus_pending_messages: int = setting(1000, "messages queued before auth, per socket (1008)")
    hocuspocus_ping_interval: float = setting(15.0, "seconds between pings to Hocuspocus 4 providers; 0: off")

    snapshot_min_updates: int = setting(1000, "log rows after the last snapshot that trigger compaction")
    snapshot_log_ratio: float = setting(
        1.0, "compact when log tail bytes exceed snapshot bytes x this (and snapshot_ratio_min_updates)"
    )
    snapshot_ratio_min_updates: int = setting(
        50, "log rows after the last snapshot before the snapshot_log_ratio rule may compact"
    )
    load_page_size: int = setting(5000, "log rows read per query when loading a document")
    log_retention_seconds: float = setting(
        0.0, "delete log rows older than this once a snapshot covers them; 0 keeps all history (default)"
    )
    redis_url: str = setting(
        "",
        "Redis URL (redis://host:port/db) joining a cluster of servers on one database; empty: one process",
    )
    history_checkpoint_rows: int = setting(
        2000, "history seeks store a snapshot every this many log rows they replay; 0: never"
    )

    webhook_allow_private: bool = setting(
        False, "let webhooks target loopback/private/reserved addresses (SSRF protection off; tests only)"
    )
    webhook_connect_timeout: float = setting(5.0, "seconds to connect to a webhook receiver (TLS included)")
    webhook_timeout: float = setting(15.0, "seconds for a whole webhook delivery attempt, answer included")
    webhook_max_attempts: int = setting(8, "attempts of a webhook delivery before it is marked failed")
    webhook_backoff: float = setting(10.0, "seconds before the first retry; doubled per attempt, with jitter")
    webhook_backoff_max: float = setting(3600.0, "longest wait between two attempts of a delivery")
    webhook_concurrency: int = setting(8, "webhook deliveries sent at once (the rest wait in the database)")
    webhook_debounce: float = setting(5.0, "at most one document.changed webhook per document this often")
    log_level: str = setting("info", "debug, info, warning or error")
    log_format: str = setting("text", "text (human) or json (one JSON object per line)")
    readiness_timeout: float = setting(2.0, "seconds each /readyz check (database, ...) may take")
    metrics_token: str | None = field(  # like `secret`: never logged or shown
        default=None,
        repr=False,
        metadata={
            "help": "bearer token that may read /metrics when a secret is set (owners of '*' may too)",
            "sensitive": True,
        },
    )

    def __post_init__(self) -> None:
        if not 1 <= self.max_update_depth <= MAX_UPDATE_DEPTH:
            raise ValueError(
                f"setting 'max_update_depth' must be 1 to {MAX_UPDATE_DEPTH} (deeper values can crash pycrdt)"
            )
        if self.log_format not in LOG_FORMATS:
            raise ValueError(
                f"setting 'log_format' must be one of {', '.join(LOG_FORMATS)}, not {self.log_format!r}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(
                f"setting 'log_level' must be one of {', '.join(LOG_LEVELS).lower()}, not {self.log_level!r}"
            )

    def describe(self) -> dict[str, Any]:
        """Every setting as text; secrets and database passwords replaced by `***`."""
        shown = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.metadata.get("sensitive") and value:
                shown[item.name] = "***"
            elif item.name in ("database_url", "redis_url") and value:
                shown[item.name] = redact_url(value)
            else:
                shown[item.name] = str(value)
        return shown

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
            try:
                converted[name] = convert(getattr(type(self), name, None), known[name].type, value)
            except ValueError as exc:
                raise ValueError(f"setting {name!r}: {exc}") from None
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


def redact_url(url: str) -> str:
    """`url` with the password of its user-info part replaced by `***`."""
    scheme, separator, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not separator or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def setting_fields() -> list[tuple[str, Any, str, str]]:
    """(name, default, type name, help) for every setting, for the CLI and docs."""
    rows = []
    for item in fields(Settings):
        default = item.default if item.default is not MISSING else None
        rows.append((item.name, default, str(item.type), item.metadata.get("help", "")))
    return rows
