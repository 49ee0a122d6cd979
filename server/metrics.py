"""Prometheus metrics of one server: a per-app registry, label children bound once, gauges read at scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ENDPOINTS = ("y-websocket", "hocuspocus", "replay")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)

#: Refused updates and messages, by the class of the error (looked up along the MRO): a fixed set.
REJECTION_REASONS = {
    "UpdateAhead": "ahead",  # refers to state the server has not seen (benign, resent later)
    "StaleCopy": "stale_copy",  # a copy from an older epoch of the document
    "DocumentFull": "document_full",
    "ApplyFailed": "apply_failed",
    "InvalidUpdate": "invalid_update",
    "PermissionDenied": "read_only",
    "MessageTooLarge": "too_large",
    "UnsupportedMessage": "unsupported",
    "DecodeError": "malformed",
}
#: Refused websocket handshakes, by the `Rejection.error` code; anything else counts as "other".
REFUSAL_REASONS = (
    "too_many_connections",
    "unauthorized",
    "forbidden",
    "not_found",
    "invalid_document_name",
    "document_busy",
    "shutting_down",
    "internal_error",
)
STORAGE_OPERATIONS = ("room", "commit", "http")  # room: loading or snapshotting a document

Reading = Callable[[], float | Mapping[str, float]]

# No `*_created` twin per counter and histogram: half the scrape, and no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class _Derived:
    kind: str  # "gauge" or "counter"
    name: str
    help: str
    read: Reading
    label: str | None


class _DerivedCollector(Collector):
    """Values computed by callables when scraped (no cost between scrapes)."""

    def __init__(self) -> None:
        self.entries: list[_Derived] = []

    def collect(self) -> Iterator[Metric]:
        for entry in self.entries:
            family_type = GaugeMetricFamily if entry.kind == "gauge" else CounterMetricFamily
            value = entry.read()
            if isinstance(value, Mapping):
                assert entry.label is not None, f"{entry.name}: a mapping needs a label name"
                family = family_type(entry.name, entry.help, labels=[entry.label])
                for label_value, number in sorted(value.items()):
                    family.add_metric([label_value], float(number))
            else:
                family = family_type(entry.name, entry.help, value=float(value))
            yield family


class Metrics:
    """Every metric of one server process, registered in its own `CollectorRegistry`.

    Hot paths use attributes bound here (`updates_applied`, `fanout_deliveries`, ...): no label
    lookup per message. Labelled families expose their children through small methods whose label
    values come from fixed tuples, so cardinality stays bounded whatever clients send.
    """

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        connections = Gauge(
            "cocreate_connections", "Open websocket connections, by endpoint", ["endpoint"], registry=registry
        )
        self._connections = {endpoint: connections.labels(endpoint) for endpoint in ENDPOINTS}
        self._connection_family = connections
        self.updates_applied = Counter(
            "cocreate_updates_applied", "Updates applied to a loaded document (changed it)", registry=registry
        )
        self.fanout_deliveries = Counter(
            "cocreate_fanout_deliveries", "Frames written to peers by a room's broadcast", registry=registry
        )
        self.ack_latency = Histogram(
            "cocreate_ack_latency_seconds",
            "From receipt of the oldest update an acknowledgement covers to the ack, after commit",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_latency = Histogram(
            "cocreate_commit_latency_seconds",
            "Duration of one group commit (one transaction) to the update log",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_batch = Histogram(
            "cocreate_commit_batch_updates",
            "Updates per group commit",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        rejections = Counter(
            "cocreate_validator_rejections",
            "Refused updates and messages, by reason",
            ["reason"],
            registry=registry,
        )
        self._rejections = {
            reason: rejections.labels(reason) for reason in {*REJECTION_REASONS.values(), "other"}
        }
        self._rejection_by_class: dict[type, Counter] = {}
        self.outbox_overflows = Counter(
            "cocreate_outbox_overflows",
            "Connections closed because they read too slowly (outbox over its limit, close 1013)",
            registry=registry,
        )
        self.claimed_structs_removed = Counter(
            "cocreate_claimed_structs_removed",
            "Struct sections left out of updates: their client id was claimed by another user (token mode)",
            registry=registry,
        )
        refused = Counter(
            "cocreate_connections_refused",
            "Refused websocket handshakes, by reason",
            ["reason"],
            registry=registry,
        )
        self._refused = {reason: refused.labels(reason) for reason in (*REFUSAL_REASONS, "other")}
        storage = Counter(
            "cocreate_storage_errors", "Storage failures, by operation", ["operation"], registry=registry
        )
        self.storage_errors = {operation: storage.labels(operation) for operation in STORAGE_OPERATIONS}
        self._derived = _DerivedCollector()
        registry.register(self._derived)
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, resident memory, open fds

    # -- labelled families, by fixed label values ----------------------------------------------
    def connections(self, endpoint: str) -> Gauge:
        """The open-connections gauge of `endpoint` (one of the channel names)."""
        gauge = self._connections.get(endpoint)
        if gauge is None:  # a channel added later: its name is code, not client input
            gauge = self._connections[endpoint] = self._connection_family.labels(endpoint)
        return gauge

    def rejected(self, error: BaseException) -> None:
        """Count a refused update or message under the reason its error class maps to."""
        kind = type(error)
        child = self._rejection_by_class.get(kind)
        if child is None:
            reason = next(
                (REJECTION_REASONS[c.__name__] for c in kind.__mro__ if c.__name__ in REJECTION_REASONS),
                "other",
            )
            child = self._rejection_by_class[kind] = self._rejections[reason]
        child.inc()

    def refused(self, error_code: str) -> None:
        """Count a refused handshake by its `Rejection.error` code."""
        self._refused.get(error_code, self._refused["other"]).inc()

    # -- extension points: values read when scraped -------------------------------------------
    def gauge_from(self, name: str, help: str, read: Reading, label: str | None = None) -> None:
        """Register a gauge whose value (or {label value: value}) `read()` returns at each scrape,
        e.g. documents loaded, or a cluster's stream lag by document group."""
        self._derived.entries.append(_Derived("gauge", name, help, read, label))

    def counter_from(self, name: str, help: str, read: Reading, label: str | None = None) -> None:
        """Like `gauge_from`, for a monotonic total kept elsewhere (`name` gets the `_total` suffix)."""
        self._derived.entries.append(_Derived("counter", name, help, read, label))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


#: For components built without a server around them (unit tests, tools); never scraped.
UNWIRED = Metrics()
