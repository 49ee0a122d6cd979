"""Rate limits as pure logic (token buckets with an injected clock) and the counters limits report to."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from crdt.errors import CoreError

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
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, amount: float, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        if self.tokens < 0:  # first use: start full
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= amount
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self.rate


@dataclass
class LimitCounters:
    """How often each limit triggered, by name (exported as metrics)."""

    counts: Counter[str] = field(default_factory=Counter)

    def hit(self, name: str, detail: str = "", *, quiet: bool = False) -> None:
        self.counts[name] += 1
        if not quiet:
            log.warning("limit %s triggered%s", name, f": {detail}" if detail else "")
