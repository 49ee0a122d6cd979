"""Rate limits as pure logic (token buckets with an injected clock) and the counters limits report to."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from crdt.awareness import AwarenessLimits
from crdt.errors import CoreError
from crdt.validation import UpdateLimits
from server.settings import Settings

log = logging.getLogger("cocreate.limits")


class DocumentFull(CoreError):
    """The document reached `max_document_size`: a write that adds content is refused."""

    close_code = 4413
    reason = "the document reached its size limit; only deletions are accepted"


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. `take` answers how long to wait (0: go)."""

    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = 0.0
    started: bool = False

    def take(self, amount: float, now: float) -> float:
        """Take `amount` even when it is not there (a debt the rate pays back before the next take)."""
        if self.rate <= 0:
            return 0.0
        self._refill(now)
        self.tokens -= amount
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate

    def try_take(self, amount: float, now: float) -> float:
        """Like `take`, but a refused take costs nothing (no debt): answers the wait, 0 when taken."""
        if self.rate <= 0:
            return 0.0
        self._refill(now)
        if self.tokens >= amount:
            self.tokens -= amount
            return 0.0
        return (amount - self.tokens) / self.rate

    def _refill(self, now: float) -> None:
        if not self.started:  # first use: start full
            self.started, self.tokens, self.stamp = True, self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now


@dataclass
class LimitCounters:
    """How often each limit triggered, by name (exported as metrics)."""

    counts: Counter[str] = field(default_factory=Counter)

    def hit(self, name: str, detail: str = "", *, quiet: bool = False) -> None:
        self.counts[name] += 1
        if not quiet:
            log.warning("limit %s triggered%s", name, f": {detail}" if detail else "")


def update_limits(settings: Settings) -> UpdateLimits:
    """The bounds every update is validated against, as configured."""
    return UpdateLimits(max_depth=settings.max_update_depth)


def awareness_limits(settings: Settings) -> AwarenessLimits:
    """The caps of awareness updates and of the client ids one connection may own, as configured."""
    return AwarenessLimits(
        max_entries=settings.awareness_max_entries,
        max_state_bytes=settings.awareness_max_state_bytes,
        max_clients_per_connection=settings.awareness_max_clients,
    )
